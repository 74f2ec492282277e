package httpwasm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/http-wasm/http-wasm-host-go/handler"
	refnethttp "github.com/http-wasm/http-wasm-host-go/handler/nethttp"
	"github.com/http-wasm/http-wasm-host-go/tck"
	"github.com/tetratelabs/wazero"

	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// benchWriter is a ResponseWriter that keeps one header map and drops the
// rest, so a benchmark measures the middleware, not the writer.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int) {
	if code >= 500 {
		panic(code) // a benchmark guest failed
	}
}

// BenchmarkMiddleware is the per-request cost of one middleware on the
// same small guests: a bare net/http handler (the baseline), the reference
// host's net/http middleware (no deadline), Portico's host with its
// per-phase deadline, and Portico's trusted tier (no deadline). Subtract
// "bare" for the cost added per middleware.
//
//	go test -run '^$' -bench Middleware -benchmem ./hostapi/...
func BenchmarkMiddleware(b *testing.B) {
	ctx := context.Background()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok"))
	})
	guests := []struct {
		name string
		wasm []byte
		req  func() *http.Request
	}{
		{"wat-headers", fixture(b, "mw_headers.wasm"), func() *http.Request { return httptest.NewRequest("GET", "/v1/hi", nil) }},
		{"tck-get_method", tck.GuestWASM, func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/hi", nil)
			r.Header.Set("x-httpwasm-tck-testid", "get_method/GET")
			return r
		}},
		{"wat-rewrite", fixture(b, "mw_rewrite.wasm"), func() *http.Request { return httptest.NewRequest("GET", "/v1/hi", nil) }},
	}
	run := func(b *testing.B, h http.Handler, req *http.Request) {
		w := &benchWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			h.ServeHTTP(w, req)
		}
	}
	b.Run("bare", func(b *testing.B) {
		run(b, next, httptest.NewRequest("GET", "/v1/hi", nil))
	})
	r := newRuntime(b)
	for _, g := range guests {
		b.Run(g.name+"/reference", func(b *testing.B) {
			mw, err := refnethttp.NewMiddleware(ctx, g.wasm, referenceRuntime(b))
			if err != nil {
				b.Fatal(err)
			}
			defer mw.Close(ctx)
			run(b, mw.NewHandler(ctx, next), g.req())
		})
		// The reference host on a runtime with close-on-context-done, the
		// wazero setting deadlines need (no deadline set): the price of
		// that setting alone, on the same host code.
		b.Run(g.name+"/reference-closeondone", func(b *testing.B) {
			mw, err := refnethttp.NewMiddleware(ctx, g.wasm, handler.Runtime(func(ctx context.Context) (wazero.Runtime, error) {
				return wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true)), nil
			}))
			if err != nil {
				b.Fatal(err)
			}
			defer mw.Close(ctx)
			run(b, mw.NewHandler(ctx, next), g.req())
		})
		for _, tier := range []struct {
			name    string
			timeout time.Duration
		}{{"portico", 0}, {"portico-trusted", -1}} {
			b.Run(g.name+"/"+tier.name, func(b *testing.B) {
				m, err := httpwasm.Load(ctx, r, g.wasm, httpwasm.Options{Name: g.name, CallTimeout: tier.timeout})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close(ctx)
				run(b, nethttp.Handler(m, next, nethttp.Options{}), g.req())
			})
		}
	}
}
