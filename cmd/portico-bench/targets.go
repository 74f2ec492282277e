package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	nethttp "github.com/http-wasm/http-wasm-host-go/handler/nethttp"

	"github.com/porticohq/portico/core"
)

// target is a server process under load.
type target struct {
	name    string
	cmd     *exec.Cmd
	url     string
	key     string
	dataDir string
	// alsoCPU, when set, is CPU spent for the target outside its process
	// (its database server's).
	alsoCPU func() time.Duration
}

// hello is the baseline's one JSON handler on a bare chi router.
func hello() http.Handler {
	r := chi.NewRouter()
	r.Get("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"hello":"world"}` + "\n"))
	})
	return r
}

// serveChi is the baseline: a bare chi router with one JSON handler, in
// its own process like Portico.
func serveChi(listen string) error {
	return serve(listen, hello())
}

// serveRef puts n copies of an http-wasm guest, run by the reference
// host's net/http middleware (github.com/http-wasm/http-wasm-host-go, as
// it ships: its default runtime, no deadline), in front of the same bare
// chi handler.
func serveRef(listen, wasmFile string, n int) error {
	ctx := context.Background()
	wasm, err := os.ReadFile(wasmFile)
	if err != nil {
		return err
	}
	h := hello()
	for range n {
		mw, err := nethttp.NewMiddleware(ctx, wasm)
		if err != nil {
			return err
		}
		defer mw.Close(ctx)
		h = mw.NewHandler(ctx, h)
	}
	return serve(listen, h)
}

func serve(listen string, h http.Handler) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, h)
}

// subcommand runs the servers the harness starts as its own executable
// (serve-chi ADDR, serve-ref ADDR WASM N); it reports whether args named
// one.
func subcommand(args []string) (bool, error) {
	switch {
	case len(args) == 2 && args[0] == "serve-chi":
		return true, serveChi(args[1])
	case len(args) == 4 && args[0] == "serve-ref":
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return true, err
		}
		return true, serveRef(args[1], args[2], n)
	}
	return false, nil
}

// startSelf runs this executable's subcommand args (serve-chi, serve-ref)
// and waits for the address it prints.
func startSelf(ctx context.Context, name string, args ...string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s did not start: %w", name, err)
	}
	return &target{name: name, cmd: cmd, url: "http://" + strings.TrimSpace(line)}, nil
}

func startChi(ctx context.Context) (*target, error) {
	return startSelf(ctx, "bare chi", "serve-chi", "127.0.0.1:0")
}

// startPortico runs the portico binary on a data dir with the given config
// file and waits until it is ready.
func startPortico(ctx context.Context, bin, dataDir, config string, extraArgs ...string) (*target, time.Duration, error) {
	key := "pk_" + strings.Repeat("A", 43)
	args := append([]string{"--data-dir", dataDir, "--listen", "127.0.0.1:0"}, extraArgs...)
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PORTICO_ADMIN_KEY="+key)
	logf, err := os.Create(filepath.Join(dataDir, "bench.log"))
	if err != nil {
		return nil, 0, err
	}
	cmd.Stderr = logf
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	t := &target{name: "portico", cmd: cmd, key: key, dataDir: dataDir}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if u := core.LocalURL(dataDir); u != "" {
			resp, err := http.Get(u + "/api/v1/status/ready")
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					t.url = u
					return t, time.Since(began), nil
				case http.StatusBadGateway: // a pre_auth middleware failed: it will not recover
					t.stop()
					return nil, 0, fmt.Errorf("portico answered %s: %s (see bench.log in %s)", resp.Status, bytes.TrimSpace(body), dataDir)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.stop()
	return nil, 0, errors.New("portico did not become ready within 2 minutes; see bench.log in " + dataDir)
}

// stop ends the process gracefully (SIGTERM, so profiles are written).
func (t *target) stop() {
	if t.cmd.Process == nil {
		return
	}
	t.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.cmd.Process.Kill()
	}
}

// cpu returns the process's user+system CPU time so far (Linux), and
// alsoCPU's, or -1.
func (t *target) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", t.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	d := statCPU(s[strings.LastIndexByte(s, ')')+2:])
	if d >= 0 && t.alsoCPU != nil {
		more := t.alsoCPU()
		if more < 0 {
			return -1
		}
		d += more
	}
	return d
}

// statCPU reads utime+stime from the fields of /proc/PID/stat after the
// command name, or -1.
func statCPU(fields string) time.Duration {
	f := strings.Fields(fields)
	if len(f) < 13 {
		return -1
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}
