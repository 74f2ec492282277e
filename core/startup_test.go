package core_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/internal/auth"
)

// startupConfig keeps three embedded plugins (echo and guard are Go
// guests, reverse is WAT) and puts guard before authentication on /admin.
func startupConfig(readyAfterLoad bool) string {
	// small's [plugin] table is replaced: a call timeout long enough for
	// a cold compile under -race, which is what the first calls wait for.
	c := strings.Replace(small, "[plugin]\nready_after_load = true\n", "", 1) +
		"[plugin]\ncall_timeout = \"2m\"\nready_after_load = " + map[bool]string{true: "true", false: "false"}[readyAfterLoad] + "\n" +
		"[[middleware.pre_auth]]\nname = \"admin\"\npaths = [\"/admin/\"]\nplugins = [\"guard\"]\n" +
		"[[plugins]]\nname = \"guard\"\n[plugins.config]\npaths = \"/admin/**\"\nstatus = \"451\"\n"
	for _, off := range []string{"assistant", "audit", "headers", "httpget", "jsonhook", "notes", "redact", "summarize", "telegram"} {
		c += "[[plugins]]\nname = \"" + off + "\"\nenabled = false\n"
	}
	return c
}

// TestReadyBeforeCompiles: with an empty compilation cache (a first
// start; a warm one under -race) the gateway turns ready while its Go plugins still compile, and
// the first requests to a skill and through a middleware still loading
// are answered, never refused; plugin.ready_after_load = true turns ready
// only once every plugin has loaded.
func TestReadyBeforeCompiles(t *testing.T) {
	t.Parallel()
	for _, after := range []bool{true, false} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "portico.toml"), []byte(startupConfig(after)), 0o600); err != nil {
			t.Fatal(err)
		}
		key := auth.NewSecret()
		// A cache of its own, empty: every Go guest compiles (for
		// seconds; under -race, for minutes, so the shared one then).
		cache := filepath.Join(dir, "cache")
		if raceEnabled {
			cache = sharedCache(t)
		}
		g, err := core.New(core.Options{
			ConfigFile: filepath.Join(dir, "portico.toml"),
			Environ:    []string{"PORTICO_ADMIN_KEY=" + key, "PORTICO_PLUGIN__CACHE_DIR=" + cache},
			Settings:   map[string]string{"data_dir": dir, "listen": "127.0.0.1:0"},
			LogOutput:  io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		url := "http://" + g.Addr()
		if r := do(t, "GET", url+"/api/v1/status/ready", ""); r.status != 200 {
			t.Fatalf("ready_after_load = %v: ready right after Start: %d %s", after, r.status, r.body)
		}
		states := map[string]any{}
		list, _ := do(t, "GET", url+"/api/v1/plugins", "", "X-API-Key", key).json(t)["plugins"].([]any)
		for _, p := range list {
			states[p.(map[string]any)["name"].(string)] = p.(map[string]any)["status"]
		}
		loading := states["echo"] == "loading" || states["guard"] == "loading"
		switch {
		case after && (states["echo"] != "active" || states["guard"] != "active" || states["reverse"] != "active"):
			t.Errorf("ready_after_load = true: plugins right after Start: %v", states)
		case !after && !loading:
			// Loading a Go guest takes tens of milliseconds from the
			// cache, hundreds compiling it; the list is asked for a
			// millisecond after Start returns.
			t.Errorf("ready_after_load = false: no Go guest still loading right after Start: %v", states)
		}
		// The first requests wait for their plugin's load.
		if r := do(t, "GET", url+"/admin/panel", ""); r.status != 451 {
			t.Errorf("ready_after_load = %v: first request through guard: %d %s", after, r.status, r.body)
		}
		r := do(t, "POST", url+"/api/v1/skills/echo/invoke", `{"input":{"text":"first"}}`, "X-API-Key", key)
		if r.status != 200 || !strings.Contains(string(r.body), `"first"`) {
			t.Errorf("ready_after_load = %v: first call to echo: %d %s", after, r.status, r.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := g.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}
