package plugins

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/porticohq/portico/hostapi/harness"
)

// BenchmarkFirstParty is what the embedded plugins cost per call on the
// real runtime (the test harness's host: an in-memory key-value store):
// the audit hook storing a message event, the echo skill, and each
// first-party middleware on a GET with a small JSON answer.
//
//	go test -run '^$' -bench FirstParty -benchmem ./plugins
func BenchmarkFirstParty(b *testing.B) {
	ctx := context.Background()
	module := func(b *testing.B, name string) []byte {
		wasm, err := FS.ReadFile(name + "/" + name + ".wasm")
		if err != nil {
			b.Fatal(err)
		}
		return wasm
	}
	event := []byte(`{"session_id":"ses_7edae6b500af7b7483343f56","message_id":"msg_99a5168d498ab0cc555da758","channel":"api","user_id":"usr_75eecddcaea017197e63","owner":"usr_75eecddcaea017197e63","role":"user","text":"/echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`)
	b.Run("audit-hook", func(b *testing.B) {
		p, err := harness.Load(ctx, "audit", module(b, "audit"), harness.NewHost(), []string{"hook", "skill"}, []string{"kv"})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Deliver(ctx, "message.received", event); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("echo-skill", func(b *testing.B) {
		p, err := harness.Load(ctx, "echo", module(b, "echo"), harness.NewHost(), []string{"skill"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Invoke(ctx, "echo", event); err != nil {
				b.Fatal(err)
			}
		}
	})
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"healthy","version":"dev","uptime_seconds":12.345}`))
	})
	// The configs of the load harness's first-party chain (cmd/portico-bench).
	for _, mw := range []struct{ name, config string }{
		{"headers", `{"response.set.X-Bench":"1","request.set.X-Bench-headers":"1"}`},
		{"guard", `{"paths":"/never/**"}`},
		{"redact", `{}`},
	} {
		name := mw.name
		b.Run(name+"-middleware", func(b *testing.B) {
			m, err := harness.LoadMiddleware(ctx, name, module(b, name), harness.NewHost(), nil, []byte(mw.config))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if w := m.Serve(httptest.NewRequest("GET", "/health", nil), route); w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
