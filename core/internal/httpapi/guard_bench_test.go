package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkGuard measures authentication + role check + rate limit (with
// its headers) through ServeHTTP against the same handler bare, in one run.
func BenchmarkGuard(b *testing.B) {
	// Buckets large enough never to refuse during the run.
	a := newAPI(b, "[ratelimit.default]\nrate = 1e12\nburst = 1000000000\n")
	key := adminKey(b, a)
	ok := func(w http.ResponseWriter, r *http.Request) error { return nil }
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	guarded := a.adapt(a.guard(route{method: "GET", pattern: "/x", role: RoleOperator, group: "default", h: ok}, ok))
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"auth+ratelimit", guarded}} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Authorization", "Bearer "+key)
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, r)
				if w.status != 0 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

type discard struct {
	h      http.Header
	status int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(p []byte) (int, error) { return len(p), nil }
func (w *discard) WriteHeader(s int)           { w.status = s }

// Credentials never reach the logs: not from headers, not from ?token=.
func TestCredentialsNotLogged(t *testing.T) {
	a := newAPI(t, generous)
	key := adminKey(t, a)
	var logs bytes.Buffer
	a.d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a.handler = a.router()
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/api/v1/status?token="+key, nil),
		httptest.NewRequest("GET", "/api/v1/nope?token="+key, nil),
		httptest.NewRequest("GET", "/api/v1/status", nil),
		httptest.NewRequest("GET", "/api/v1/config", nil),
	} {
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Authorization", "Bearer "+key[:len(key)-1]+"x") // a failing near-miss
		a.ServeHTTP(httptest.NewRecorder(), r)
		r.Header.Set("Authorization", "Bearer "+key)
		a.ServeHTTP(httptest.NewRecorder(), r)
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the test would prove nothing")
	}
	if s := logs.String(); strings.Contains(s, key[3:20]) || strings.Contains(s, "token=") {
		t.Errorf("credential in logs:\n%s", s)
	}
	// Nor in the audit trail.
	entries, _, _ := a.d.Audit.List(t.Context(), auditQuery())
	for _, e := range entries {
		if strings.Contains(e.Target+e.Actor, key[3:20]) || strings.Contains(e.Target, "token=") {
			t.Errorf("credential in audit entry %+v", e)
		}
	}
}
