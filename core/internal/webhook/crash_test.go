package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
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
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/webhook"
	"github.com/porticohq/portico/hostapi"
)

// TestCrashLosesNoDelivery runs the real gateway binary: a hook is created
// over its API, plugin events are caused while the receiver is down, the
// process is killed with SIGKILL while those deliveries are pending, and a
// second process on the same data dir, with the receiver up, delivers every
// one of them, signed.
func TestCrashLosesNoDelivery(t *testing.T) {
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
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, key := t.TempDir(), auth.NewSecret()
	env := append(os.Environ(),
		"PORTICO_ADMIN_KEY="+key, "PORTICO_PLUGIN__CACHE_DIR="+cache,
		"PORTICO_STORAGE__MEMTABLE_BYTES=1048576", "PORTICO_STORAGE__CACHE_BYTES=1048576",
		"PORTICO_RATELIMIT__DEFAULT__RATE=100000", "PORTICO_RATELIMIT__DEFAULT__BURST=100000",
		"PORTICO_WEBHOOKS__ALLOW_PRIVATE=true", "PORTICO_WEBHOOKS__MAX_ATTEMPTS=100",
		"PORTICO_WEBHOOKS__INITIAL_BACKOFF=20ms", "PORTICO_WEBHOOKS__MAX_BACKOFF=200ms",
	)
	c := &client{t: t, key: key}

	// First run: the receiver is down.
	addr := downAddr(t)
	first, _ := startGateway(t, bin, dir, env)
	c.url = waitServing(t, dir)
	var created struct {
		ID, Secret string
	}
	c.do("POST", "/api/v1/hooks", `{"url":"http://`+addr+`/in","events":["plugin.disabled","plugin.enabled"]}`, http.StatusCreated, &created)
	const rounds = 5
	for range rounds {
		c.do("POST", "/api/v1/plugins/echo/disable", "", http.StatusOK, nil)
		c.do("POST", "/api/v1/plugins/echo/enable", "", http.StatusOK, nil)
	}
	var pending struct {
		Total      int
		Deliveries []webhook.Delivery
	}
	eventually(t, "every delivery queued and tried at least once", func() bool {
		c.do("GET", "/api/v1/hooks/"+created.ID+"/deliveries?status=pending", "", http.StatusOK, &pending)
		if pending.Total != 2*rounds {
			return false
		}
		for _, d := range pending.Deliveries {
			if d.Attempts == 0 {
				return false
			}
		}
		return true
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	os.Remove(filepath.Join(dir, core.AddrFile)) // a killed process leaves its address behind

	// Second run on the same data dir: the receiver is up.
	recv := newReceiver(t, addr, created.Secret)
	startGateway(t, bin, dir, env)
	c.url = waitServing(t, dir)
	eventually(t, "every pending delivery delivered after the restart", func() bool {
		var done struct{ Total int }
		c.do("GET", "/api/v1/hooks/"+created.ID+"/deliveries?status=delivered", "", http.StatusOK, &done)
		return done.Total == 2*rounds
	})
	got := recv.signed()
	events := map[string]int{}
	for _, d := range pending.Deliveries {
		if got[d.ID] == "" {
			t.Errorf("delivery %s (%s) pending at the crash never arrived signed", d.ID, d.Event)
		}
		events[got[d.ID]]++
	}
	if events["plugin.disabled"] != rounds || events["plugin.enabled"] != rounds {
		t.Errorf("events delivered: %v", events)
	}
	if bad := recv.unsigned(); bad > 0 {
		t.Errorf("%d requests with a bad signature", bad)
	}
}

func startGateway(t *testing.T, bin, dir string, env []string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env, cmd.Stderr = env, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return cmd, logs
}

// waitServing waits until the gateway in dir records its address and
// answers ready.
func waitServing(t *testing.T, dir string) string {
	t.Helper()
	var url string
	eventually(t, "the gateway to serve", func() bool {
		if url = core.LocalURL(dir); url == "" {
			return false
		}
		resp, err := http.Get(url + "/api/v1/status/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

type client struct {
	t        *testing.T
	url, key string
}

func (c *client) do(method, path, body string, want int, out any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", c.key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// receiver records which deliveries arrived with a valid signature.
type receiver struct {
	secret string
	mu     sync.Mutex
	ok     map[string]string // delivery id -> event type
	bad    int
}

func newReceiver(t *testing.T, addr, secret string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{secret: secret, ok: map[string]string{}}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body) {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.ok[req.Header.Get(webhook.HeaderDelivery)] = req.Header.Get(webhook.HeaderEvent)
}

func (r *receiver) signed() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.ok))
	for k, v := range r.ok {
		out[k] = v
	}
	return out
}

func (r *receiver) unsigned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func downAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
