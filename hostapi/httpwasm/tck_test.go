package httpwasm_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/http-wasm/http-wasm-host-go/tck"

	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// TestMiddlewareTCK runs the http-wasm conformance kit against Portico's
// host, over HTTP/1.1 and HTTP/2, the way the reference host runs it.
func TestMiddlewareTCK(t *testing.T) {
	r := newRuntime(t)
	m, err := httpwasm.Load(context.Background(), r, tck.GuestWASM, httpwasm.Options{Name: "tck"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s := m.Stats(); s.Errors != 0 || s.Calls == 0 {
			t.Errorf("stats: %+v, want calls and no errors", s)
		}
		m.Close(context.Background())
	})
	h := nethttp.Handler(m, tck.BackendHandler(), nethttp.Options{})

	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1", false}, {"HTTP/2.0", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewUnstartedServer(h)
			if tc.http2 {
				ts.EnableHTTP2 = true
				ts.StartTLS()
			} else {
				ts.Start()
			}
			t.Cleanup(ts.Close)
			tck.Run(t, ts.Client(), ts.URL)
		})
	}
}
