package plugin

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/tracing"
)

// Skill calls and hook deliveries are spans, below the caller's span.
func TestPluginSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(sdktrace.NewSimpleSpanProcessor(exp), 1, "test", "v0")
	f := newFixture(t, nil)
	f.m.d.Tracer = tr
	dir := filepath.Join(t.TempDir(), "hook")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte("name = \"hook\"\nversion = \"1.0.0\"\nkinds = [\"hook\"]\n[hooks]\nevents = [\"session.created\"]\n[capabilities]\noptional = [\"kv\"]\n"), 0o600)
	wasm, _ := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", "hook.wasm"))
	os.WriteFile(filepath.Join(dir, "hook.wasm"), wasm, 0o600)
	f.m.LoadAll(context.Background(), cfg(config.PluginEntry{Name: "hook", Path: dir, Grants: []string{"kv"}}))
	ctx, end := tr.Start(context.Background(), "caller")
	if _, _, err := f.m.Invoke(ctx, "echo", []byte(`{"text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	end(nil)
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "skill echo" || spans[0].Parent.SpanID() != spans[1].SpanContext.SpanID() {
		t.Fatalf("spans %v", spans)
	}
	f.bus.Publish(events.Event{Type: "session.created", Data: map[string]any{"session_id": "s"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range exp.GetSpans() {
			if s.Name == "hook session.created" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hook span: %v", exp.GetSpans())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
