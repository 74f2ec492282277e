// Package gatewaytest runs the real gateway binary for tests that must
// kill it: build it once per test, start it on a data dir, wait until it
// serves, call its API, and stop it with SIGKILL.
package gatewaytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porticohq/portico/core"
)

// Build builds cmd/portico into a temporary directory, or skips the test
// in -short mode and where SIGKILL is not Unix's.
func Build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and kills the gateway binary; skipped in -short mode")
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics are Unix's")
	}
	bin := filepath.Join(t.TempDir(), "portico")
	build := exec.Command("go", "build", "-o", bin, "github.com/porticohq/portico/cmd/portico")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Process is one running gateway.
type Process struct {
	Cmd  *exec.Cmd
	Logs *SyncBuffer
	URL  string
	dir  string
}

// Start runs bin on dir with env and waits until it answers ready; the
// process is killed when the test ends (its logs shown if it failed).
func Start(t *testing.T, bin, dir string, env []string) *Process {
	t.Helper()
	p := &Process{Logs: &SyncBuffer{}, dir: dir}
	p.Cmd = exec.Command(bin, "--data-dir", dir, "--listen", "127.0.0.1:0")
	p.Cmd.Env, p.Cmd.Stderr = env, p.Logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		p.Cmd.Wait()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", p.Logs.String())
		}
	})
	Eventually(t, "the gateway to serve", func() bool {
		if p.URL = core.LocalURL(dir); p.URL == "" {
			return false
		}
		resp, err := http.Get(p.URL + "/api/v1/status/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// Kill ends the process with SIGKILL, as a crash would, and removes the
// address file it leaves behind.
func (p *Process) Kill(t *testing.T) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Cmd.Wait()
	os.Remove(filepath.Join(p.dir, core.AddrFile))
}

// Client calls a gateway's API with an API key.
type Client struct {
	T        *testing.T
	URL, Key string
}

// Do sends a request and fails the test unless the answer has status
// want; out, when set, receives the JSON body.
func (c *Client) Do(method, path, body string, want int, out any) {
	c.T.Helper()
	req, err := http.NewRequest(method, c.URL+path, strings.NewReader(body))
	if err != nil {
		c.T.Fatal(err)
	}
	req.Header.Set("X-API-Key", c.Key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.T.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.T.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// Eventually polls cond until it holds, for at most a minute.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for a process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
