package httpwasm_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/harness"
	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
	"github.com/porticohq/portico/internal/testtool"

	"github.com/coder/websocket"
)

// loadMW loads a middleware fixture from testdata/wasm (name may include
// a subdirectory, e.g. httpwasm/e2e_uri.wasm) and closes it after the test.
func loadMW(t testing.TB, r *hostapi.Runtime, file string, o httpwasm.Options) *httpwasm.Middleware {
	t.Helper()
	m, err := loadMWErr(t, r, file, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadMWErr(t testing.TB, r *hostapi.Runtime, file string, o httpwasm.Options) (*httpwasm.Middleware, error) {
	t.Helper()
	if o.Name == "" {
		o.Name = strings.TrimSuffix(filepath.Base(file), ".wasm")
	}
	m, err := httpwasm.Load(context.Background(), r, fixture(t, file), o)
	if err == nil {
		t.Cleanup(func() { m.Close(context.Background()) })
	}
	return m, err
}

// errorLog collects what OnError receives and answers 502 like the
// gateway.
type errorLog struct {
	mu   sync.Mutex
	errs []*httpwasm.Error
}

func (l *errorLog) onError(w http.ResponseWriter, r *http.Request, err error) {
	var me *httpwasm.Error
	if !errors.As(err, &me) {
		panic(fmt.Sprintf("OnError got %T, want *httpwasm.Error", err))
	}
	l.mu.Lock()
	l.errs = append(l.errs, me)
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, `{"error":{"code":"plugin_error","message":%q}}`, me.Middleware)
}

func (l *errorLog) all() []*httpwasm.Error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*httpwasm.Error{}, l.errs...)
}

// echoBackend shows what the request looked like when it reached the
// route: method, URI and request headers as X-Echo-* response headers,
// the body after "backend saw: ".
var echoBackend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Echo-Method", r.Method)
	w.Header().Set("X-Echo-Uri", r.RequestURI)
	for k, vs := range r.Header {
		w.Header()["X-Echo-H-"+k] = vs
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("backend saw: " + string(body)))
})

func do(t testing.TB, h http.Handler, req *http.Request) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMiddlewareLoadErrors(t *testing.T) {
	r := newRuntime(t)
	for _, tc := range []struct{ file, want string }{
		{"notwasm.bin", "not a WebAssembly module"},
		{"ok.wasm", "missing export handle_request; is this an http-wasm handler"},
		{"mw_badsig.wasm", "export handle_request has signature () -> (i32), want () -> (i64)"},
		{"mw_badimport.wasm", "imports http_handler.get_cookie, which the http-wasm handler ABI does not define"},
		{"mw_envimport.wasm", "imports env.abort; this host provides only http_handler, portico and wasi_snapshot_preview1"},
		{"mw_nomemory.wasm", `does not export its memory as "memory"`},
		{"httpwasm/error_panic_on_start.wasm", "start: plugin trapped"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := loadMWErr(t, r, tc.file, httpwasm.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestMiddlewarePhases(t *testing.T) {
	r := newRuntime(t)
	var errs errorLog
	o := nethttp.Options{OnError: errs.onError}

	t.Run("headers both ways", func(t *testing.T) {
		h := nethttp.Handler(loadMW(t, r, "mw_headers.wasm", httpwasm.Options{}), echoBackend, o)
		resp := do(t, h, httptest.NewRequest("GET", "/x", nil))
		if resp.StatusCode != 200 || resp.Header.Get("X-Echo-H-X-Portico-Mw") != "on" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("guest answers 403", func(t *testing.T) {
		ran := false
		h := nethttp.Handler(loadMW(t, r, "mw_deny.wasm", httpwasm.Options{}), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }), o)
		resp := do(t, h, httptest.NewRequest("GET", "/", nil))
		if body := readAll(t, resp.Body); resp.StatusCode != 403 || body != "denied by middleware\n" || resp.Header.Get("Content-Type") != "text/plain" || ran {
			t.Fatalf("%d %q %v ran=%v", resp.StatusCode, body, resp.Header, ran)
		}
	})
	t.Run("response body rewritten", func(t *testing.T) {
		m := loadMW(t, r, "mw_rewrite.wasm", httpwasm.Options{})
		h := nethttp.Handler(m, echoBackend, o)
		resp := do(t, h, httptest.NewRequest("POST", "/", strings.NewReader("hello")))
		body := readAll(t, resp.Body)
		if resp.StatusCode != 200 || body != "BACKEND SAW: HELLO" || resp.Header.Get("X-Rewritten") != "upper" || resp.Header.Get("Content-Length") != "18" {
			t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
		}
		if s := m.Stats(); s.Calls != 1 || s.Errors != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("portico module with and without the kv grant", func(t *testing.T) {
		for _, granted := range []bool{true, false} {
			host := harness.NewHost()
			var grants []string
			if granted {
				grants = []string{hostapi.CapKV}
			}
			h := nethttp.Handler(loadMW(t, r, "mw_portico.wasm", httpwasm.Options{Host: host, Grants: grants}), echoBackend, o)
			if resp := do(t, h, httptest.NewRequest("GET", "/", nil)); resp.StatusCode != 200 {
				t.Fatal(resp.StatusCode)
			}
			_, stored := host.KV["seen"]
			if stored != granted || len(host.Logs) != 1 || host.Logs[0] != "hello from middleware" || (len(host.Refused) == 1) == granted {
				t.Errorf("granted=%v: kv %v logs %q denied %v", granted, host.KV, host.Logs, host.Refused)
			}
		}
	})
	if e := errs.all(); len(e) != 0 {
		t.Fatalf("errors: %v", e)
	}
}

// TestMiddlewareHostile: every failure fails closed through OnError with
// the right kind, the trapped instance is discarded, and nothing panics.
func TestMiddlewareHostile(t *testing.T) {
	r := newRuntime(t)
	big := strings.Repeat("x", 4096)
	for _, tc := range []struct {
		name, file string
		opts       httpwasm.Options
		backend    http.Handler
		body       string
		kind       error
		phase      string
	}{
		{name: "trap in handle_request", file: "httpwasm/error_panic_on_handle_request.wasm", kind: hostapi.ErrTrap, phase: "request"},
		{name: "trap in handle_response", file: "httpwasm/error_panic_on_handle_response.wasm", kind: hostapi.ErrTrap, phase: "response"},
		{name: "request header after next", file: "httpwasm/error_set_request_header_after_next.wasm", kind: hostapi.ErrABI, phase: "response"},
		{name: "endless loop in handle_request", file: "mw_loop.wasm", opts: httpwasm.Options{GuestConfig: []byte("request"), CallTimeout: 50 * time.Millisecond}, kind: hostapi.ErrTimeout, phase: "request"},
		{name: "endless loop in handle_response", file: "mw_loop.wasm", opts: httpwasm.Options{CallTimeout: 50 * time.Millisecond}, kind: hostapi.ErrTimeout, phase: "response"},
		{name: "huge header", file: "mw_hugeheader.wasm", kind: httpwasm.ErrBodyLimit, phase: "request"},
		{name: "buffered response over the limit", file: "mw_rewrite.wasm", opts: httpwasm.Options{MaxBodyBytes: 1024}, backend: echoBackend, body: big, kind: httpwasm.ErrBodyLimit, phase: "response"},
		{name: "buffered request over the limit", file: "httpwasm/example_redact.wasm", opts: httpwasm.Options{MaxBodyBytes: 1024, GuestConfig: []byte("open sesame")}, backend: echoBackend, body: big, kind: httpwasm.ErrBodyLimit, phase: "request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs errorLog
			tc.opts.MaxInstances = 2
			m := loadMW(t, r, tc.file, tc.opts)
			backend := tc.backend
			if backend == nil {
				backend = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
			}
			h := nethttp.Handler(m, backend, nethttp.Options{OnError: errs.onError})
			for range 3 { // the pool heals: each failure discards its instance
				resp := do(t, h, httptest.NewRequest("POST", "/", strings.NewReader(tc.body)))
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Length") != "" && resp.ContentLength != int64(len(readAll(t, resp.Body))) {
					t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
				}
			}
			e := errs.all()
			if len(e) != 3 {
				t.Fatalf("%d errors, want 3", len(e))
			}
			for _, me := range e {
				if !errors.Is(me, tc.kind) || me.Phase != tc.phase || me.Middleware != m.Name() || me.Committed {
					t.Fatalf("got %v (phase %s, committed %v), want %v in the %s phase", me, me.Phase, me.Committed, tc.kind, tc.phase)
				}
			}
			if s := m.Stats(); s.Calls != 3 || s.Errors != 3 || s.Instances > 2 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestMiddlewareErrorAfterCommit: a failure once the response has gone
// out (an unbuffered next wrote it) is still reported, as committed, and
// OnError's writes are discarded.
func TestMiddlewareErrorAfterCommit(t *testing.T) {
	r := newRuntime(t)
	var errs errorLog
	m := loadMW(t, r, "httpwasm/error_panic_on_handle_response.wasm", httpwasm.Options{})
	resp := do(t, nethttp.Handler(m, echoBackend, nethttp.Options{OnError: errs.onError}), httptest.NewRequest("GET", "/", nil))
	if body := readAll(t, resp.Body); resp.StatusCode != 200 || body != "backend saw: " {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if e := errs.all(); len(e) != 1 || !e[0].Committed || !errors.Is(e[0], hostapi.ErrTrap) {
		t.Fatalf("errors %v", e)
	}
}

func TestMiddlewareBusy(t *testing.T) {
	r := newRuntime(t)
	var errs errorLog
	m := loadMW(t, r, "mw_headers.wasm", httpwasm.Options{PoolOptions: hostapi.PoolOptions{MaxInstances: 1, AcquireTimeout: 20 * time.Millisecond}})
	entered, leave := make(chan struct{}), make(chan struct{})
	h := nethttp.Handler(m, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-leave
	}), nethttp.Options{OnError: errs.onError})
	go do(t, h, httptest.NewRequest("GET", "/", nil))
	<-entered // the only instance is pinned to that request until it ends
	if resp := do(t, h, httptest.NewRequest("GET", "/", nil)); resp.StatusCode != http.StatusBadGateway {
		t.Fatal(resp.StatusCode)
	}
	close(leave)
	if e := errs.all(); len(e) != 1 || !errors.Is(e[0], hostapi.ErrBusy) {
		t.Fatalf("errors %v", e)
	}
}

// TestMiddlewareSSE: an SSE handler behind a middleware (mw_rewrite asks
// for buffer_response, which a streaming request declines) flushes each
// event to the client as it is written.
func TestMiddlewareSSE(t *testing.T) {
	r := newRuntime(t)
	var errs errorLog
	m := loadMW(t, r, "mw_headers.wasm", httpwasm.Options{})
	next := make(chan struct{})
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			if err := rc.Flush(); err != nil {
				t.Error(err)
				return
			}
			<-next // the client must have read this event before the next is written
		}
	})
	// Both a header-setting middleware and a buffering one, outermost first.
	rw := loadMW(t, r, "mw_rewrite.wasm", httpwasm.Options{})
	h := nethttp.Handler(rw, nethttp.Handler(m, sse, nethttp.Options{OnError: errs.onError}), nethttp.Options{OnError: errs.onError})
	ts := httptest.NewServer(h)
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v", resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
	io.Copy(io.Discard, br)
	// The buffering guest's handle_response then reads the body it could
	// not buffer: an ABI error, reported as committed.
	e := errs.all()
	if len(e) != 1 || !e[0].Committed || !errors.Is(e[0], hostapi.ErrABI) || e[0].Middleware != rw.Name() {
		t.Fatalf("errors %v", e)
	}
}

// TestMiddlewareWebSocket: a WebSocket upgrade works through a middleware
// (Hijacker kept) and messages flow both ways.
func TestMiddlewareWebSocket(t *testing.T) {
	r := newRuntime(t)
	var errs errorLog
	m := loadMW(t, r, "mw_headers.wasm", httpwasm.Options{})
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Portico-Mw") != "on" {
			t.Error("the request phase did not run")
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, bytes.ToUpper(b))
		}
	})
	ts := httptest.NewServer(nethttp.Handler(m, ws, nethttp.Options{OnError: errs.onError}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("upgrade response headers %v", resp.Header)
	}
	for _, msg := range []string{"hello", "world"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil || string(b) != strings.ToUpper(msg) {
			t.Fatalf("%q %v", b, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(2 * time.Second)
	for m.Stats().Calls != 1 || httpwasm.InFlight(m) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the request did not finish: %+v", m.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e := errs.all(); len(e) != 0 {
		t.Fatalf("errors %v", e)
	}
}

// TestMiddlewareCloseWaits: Close waits for a request in flight, which
// finishes normally on its pinned instance; a request after Close fails
// with ErrClosed.
func TestMiddlewareCloseWaits(t *testing.T) {
	r := newRuntime(t)
	var errs errorLog
	m := loadMW(t, r, "mw_rewrite.wasm", httpwasm.Options{})
	entered, leave := make(chan struct{}), make(chan struct{})
	h := nethttp.Handler(m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-leave
		w.Write([]byte("late"))
	}), nethttp.Options{OnError: errs.onError})
	got := make(chan *http.Response)
	go func() { got <- do(t, h, httptest.NewRequest("GET", "/", nil)) }()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a request in flight: %v", err)
	}
	if resp := do(t, h, httptest.NewRequest("GET", "/", nil)); resp.StatusCode != http.StatusBadGateway {
		t.Fatal("a request after Close was served")
	}
	close(leave)
	if resp := <-got; readAll(t, resp.Body) != "LATE" {
		t.Fatal("the request in flight did not finish on its instance")
	}
	deadline := time.Now().Add(2 * time.Second)
	for m.Live() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d instances left after the last request", m.Live())
		}
		time.Sleep(time.Millisecond)
	}
	if e := errs.all(); len(e) != 1 || !errors.Is(e[0], hostapi.ErrClosed) {
		t.Fatalf("errors %v", e)
	}
}

// TestMiddlewareNoLeak: many loads, requests and closes leave no
// instances, goroutines or timers behind.
func TestMiddlewareNoLeak(t *testing.T) {
	r := newRuntime(t)
	wasm := fixture(t, "mw_rewrite.wasm")
	run := func() {
		m, err := httpwasm.Load(context.Background(), r, wasm, httpwasm.Options{Name: "rw", PoolOptions: hostapi.PoolOptions{MinInstances: 2, MaxInstances: 4}})
		if err != nil {
			t.Fatal(err)
		}
		h := nethttp.Handler(m, echoBackend, nethttp.Options{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				do(t, h, httptest.NewRequest("GET", "/", nil))
			}()
		}
		wg.Wait()
		if err := m.Close(context.Background()); err != nil || m.Live() != 0 {
			t.Fatalf("close: %v, %d live", err, m.Live())
		}
	}
	run() // warm the runtime tier and the cache
	testtool.NoLeak(t, 200, 32<<20, run)
}

// TestMiddlewareFixturesMatchSource rebuilds the hand-written middleware
// fixtures with wat2wasm and checks them byte for byte.
func TestMiddlewareFixturesMatchSource(t *testing.T) {
	testtool.Need(t, "Debian's wabt", "wat2wasm")
	srcs, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "wasm", "mw_*.wat"))
	if len(srcs) == 0 {
		t.Fatal("no fixtures")
	}
	for _, src := range srcs {
		out := filepath.Join(t.TempDir(), "m.wasm")
		if b, err := exec.Command("wat2wasm", src, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", src, err, b)
		}
		fresh, _ := os.ReadFile(out)
		committed, _ := os.ReadFile(strings.TrimSuffix(src, ".wat") + ".wasm")
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s differs from a fresh build; rebuild it with wat2wasm", src)
		}
	}
}

func TestInspectMiddleware(t *testing.T) {
	rep, err := hostapi.Inspect(context.Background(), "rw", fixture(t, "mw_rewrite.wasm"), harness.NewHost(), "")
	if err != nil || rep.LoadError != "" || !slicesEqual(rep.ExportedKinds, []string{hostapi.KindMiddleware}) || rep.ABI != "http-wasm" || rep.Start != "_start" || rep.MemoryUsed == 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	rep, err = hostapi.Inspect(context.Background(), "bad", fixture(t, "mw_badimport.wasm"), harness.NewHost(), "")
	if err != nil || !strings.Contains(rep.LoadError, "get_cookie") {
		t.Fatalf("%+v %v", rep, err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }
