package core_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer collects a gateway's logs across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pluginStates maps each listed plugin to its status.
func pluginStates(t *testing.T, g *gw) map[string]map[string]any {
	t.Helper()
	r := g.do(t, "GET", g.url+"/api/v1/plugins", "")
	if r.status != 200 {
		t.Fatalf("GET /api/v1/plugins: %d %s", r.status, r.body)
	}
	out := map[string]map[string]any{}
	for _, p := range r.json(t)["plugins"].([]any) {
		m := p.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// TestPluginTablesOverHTTP follows docs/plugin-authoring.md's first step on
// a live gateway: a [[plugins]] table for a plugin not installed yet must
// neither undo the built-in tables (notes and audit keep their kv grant)
// nor log an error, and PATCH of plugins merges the same way and writes a
// file the next start reads.
func TestPluginTablesOverHTTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.toml")
	if err := os.WriteFile(file, []byte(small+"[[plugins]]\nname = \"counter\"\ngrants = [\"kv\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	g := startIn(t, dir, logs).loaded(t)
	states := pluginStates(t, g)
	for _, name := range []string{"notes", "audit", "echo"} {
		if st := states[name]["status"]; st != "active" {
			t.Errorf("plugin %s is %v (%v), want active", name, st, states[name]["last_error"])
		}
	}
	if _, listed := states["counter"]; listed {
		t.Errorf("counter, not installed, is listed: %v", states["counter"])
	}
	if l := logs.String(); strings.Contains(l, "level=ERROR") {
		t.Errorf("a table for a plugin not installed yet logged an error:\n%s", l)
	}

	// The PATCH of the issue: an integer inside a table.
	for range 2 {
		if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"plugins":[{"name":"echo","max_instances":8}]}`); r.status != 200 {
			t.Fatalf("PATCH plugins: %d %s", r.status, r.body)
		}
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "max_instances = 8") || !strings.Contains(string(b), "counter") {
		t.Errorf("file after PATCH:\n%s", b)
	}
	if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"log.level":"debug"}`); r.status != 200 {
		t.Fatalf("a later PATCH: %d %s", r.status, r.body)
	}

	// enabled = false keeps a plugin off and says so; the API cannot undo it.
	if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"plugins":[{"name":"audit","enabled":false}]}`); r.status != 200 {
		t.Fatalf("PATCH enabled=false: %d %s", r.status, r.body)
	}
	eventually(t, "audit disabled by the config", func() bool {
		a := pluginStates(t, g)["audit"]
		return a["status"] == "disabled" && a["disabled_by"] == "config"
	})
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/audit/enable", ""); r.status != 409 || !strings.Contains(string(r.body), "enabled = false") {
		t.Errorf("enable of a plugin the config disables: %d %s", r.status, r.body)
	}
	if st := pluginStates(t, g)["notes"]["status"]; st != "active" {
		t.Errorf("notes is %v after audit was disabled", st)
	}

	// A path that holds no plugin says what to fix.
	b, _ = os.ReadFile(file)
	if err := os.WriteFile(file, append(b, []byte("[[plugins]]\nname = \"ghost\"\npath = \"/nowhere/ghost\"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ghost listed as failed", func() bool { return pluginStates(t, g)["ghost"]["status"] == "failed" })
	if msg, _ := pluginStates(t, g)["ghost"]["last_error"].(string); !strings.Contains(msg, "no plugin at /nowhere/ghost") || !strings.Contains(msg, "[[plugins]] table named \"ghost\"") {
		t.Errorf("last_error = %q", msg)
	}

	// The file PATCH wrote starts a gateway again.
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	g2 := startIn(t, dir, logs)
	g2.key = g.key // the store keeps the first start's admin key
	g2.loaded(t)
	states = pluginStates(t, g2)
	if states["notes"]["status"] != "active" || states["audit"]["status"] != "disabled" {
		t.Errorf("after a restart: notes %v, audit %v", states["notes"]["status"], states["audit"]["status"])
	}
}
