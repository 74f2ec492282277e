package nethttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

func TestStreaming(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		want   bool
	}{
		{"plain GET", http.Header{"Accept": {"application/json"}}, false},
		{"no headers", http.Header{}, false},
		{"WebSocket upgrade", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, true},
		{"SSE", http.Header{"Accept": {"text/event-stream"}}, true},
		{"MCP streamable HTTP", http.Header{"Accept": {"application/json, text/event-stream"}}, true},
		{"SSE in a second Accept line", http.Header{"Accept": {"application/json", "text/event-stream"}}, true},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header = tc.header
		if got := nethttp.Streaming(r); got != tc.want {
			t.Errorf("%s: Streaming = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestOptionsStreaming: Options.Streaming, when set, decides instead of
// Streaming: the response of a request it calls a stream is not buffered
// (mw_rewrite upper-cases a body it buffers, and cannot touch one it
// streams).
func TestOptionsStreaming(t *testing.T) {
	r := newRuntime(t)
	m, err := httpwasm.Load(context.Background(), r, fixture(t, "mw_rewrite.wasm"), httpwasm.Options{Name: "rw"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("quiet")) })
	for stream, want := range map[bool]string{false: "QUIET", true: "quiet"} {
		h := nethttp.Handler(m, next, nethttp.Options{Streaming: func(*http.Request) bool { return stream }})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Body.String() != want {
			t.Errorf("Streaming said %v: body %q, want %q", stream, w.Body, want)
		}
	}
}

func newRuntime(t testing.TB) *hostapi.Runtime {
	t.Helper()
	dir, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	r, err := hostapi.NewRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSlotSwapUnderLoad: reload-style swaps of a MiddlewareSlot
// while clients hammer it drop no request; every old version's instances
// are closed once its last request ends.
func TestSlotSwapUnderLoad(t *testing.T) {
	r := newRuntime(t)
	var errs atomic.Int64
	wasm := fixture(t, "mw_headers.wasm")
	var slot nethttp.Slot
	load := func() *httpwasm.Middleware {
		m, err := httpwasm.Load(context.Background(), r, wasm, httpwasm.Options{Name: "headers", PoolOptions: hostapi.PoolOptions{MaxInstances: 4, AcquireTimeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	slot.Swap(load())
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Microsecond) // in flight across swaps
		w.Write([]byte("ok"))
	})
	h := slot.Handler(backend, nethttp.Options{OnError: func(w http.ResponseWriter, r *http.Request, err error) {
		errs.Add(1)
		http.Error(w, err.Error(), http.StatusBadGateway)
	}})

	var served, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				served.Add(1)
				if rec.Code != 200 || rec.Body.String() != "ok" || rec.Header().Get("X-Frame-Options") != "DENY" && rec.Header().Get("X-Frame-Options") != "" {
					bad.Add(1)
				}
			}
		}()
	}
	var old []*httpwasm.Middleware
	for i := range 20 {
		var next *httpwasm.Middleware
		if i%5 != 4 {
			next = load()
		} // else disable for a moment
		prev := slot.Swap(next)
		if prev != nil {
			if err := prev.Close(context.Background()); err != nil {
				t.Error(err)
			}
			old = append(old, prev)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if m := slot.Swap(nil); m != nil {
		m.Close(context.Background())
		old = append(old, m)
	}
	if bad.Load() != 0 || errs.Load() != 0 || served.Load() < 100 {
		t.Fatalf("served %d, bad %d, errors %d", served.Load(), bad.Load(), errs.Load())
	}
	for _, m := range old {
		if m.Live() != 0 {
			t.Fatalf("a closed middleware still has %d instances", m.Live())
		}
	}
}
