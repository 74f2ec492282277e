package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porticohq/portico/hostapi"
)

func TestMain(m *testing.M) {
	if dir, err := hostapi.TestCacheDir(); err == nil {
		CacheDir = dir
	}
	os.Exit(m.Run())
}

func module(t *testing.T, path string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNotesOnTheHarness(t *testing.T) {
	ctx := context.Background()
	h := NewHost()
	p, err := Load(ctx, "notes", module(t, "plugins/notes/notes.wasm"), h, []string{"skill"}, []string{"kv"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if out, err := p.Invoke(ctx, "remember", []byte(`{"key":"a","text":"b"}`)); err != nil || string(out) != `{"remembered":"a"}` {
		t.Fatalf("remember: %s %v", out, err)
	}
	if string(h.KV["note/a"]) != "b" {
		t.Errorf("kv = %v", h.KV)
	}
	if _, err := p.Invoke(ctx, "recall", []byte(`{"key":"zz"}`)); !errors.Is(err, hostapi.ErrBadInput) {
		t.Errorf("bad input: %v", err)
	}
	// Without the grant the plugin is refused kv and says so.
	h2 := NewHost()
	p2, err := Load(ctx, "notes", module(t, "plugins/notes/notes.wasm"), h2, []string{"skill"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	if _, err := p2.Invoke(ctx, "remember", []byte(`{"key":"a","text":"b"}`)); !errors.Is(err, hostapi.ErrGuest) || !strings.Contains(err.Error(), "kv") {
		t.Errorf("denied kv: %v", err)
	}
	if len(h2.Refused) == 0 || h2.Refused[0] != "kv" {
		t.Errorf("refused = %v", h2.Refused)
	}
}

func TestCannedHTTP(t *testing.T) {
	ctx := context.Background()
	h := NewHost()
	h.Responses["https://api.example.com/x"] = Response{Status: 200, Body: []byte("canned")}
	p, err := Load(ctx, "fetch", module(t, "testdata/wasm/fetch.wasm"), h, []string{"skill"}, []string{"http"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	out, err := p.Invoke(ctx, "fetch", []byte("GET https://api.example.com/x\n\n"))
	if err != nil || !strings.HasSuffix(string(out), "canned") || out[0] != 200 {
		t.Errorf("canned response: %q %v", out, err)
	}
}
