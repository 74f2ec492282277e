package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
)

// liveGateway is a real gateway in-process on a loopback port.
type liveGateway struct {
	*core.Gateway
	url, key, dir string
}

func startGateway(t *testing.T) *liveGateway {
	t.Helper()
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := core.NewKey()
	env := append([]string{"PORTICO_ADMIN_KEY=" + key, "PORTICO_PLUGIN__CACHE_DIR=" + cache,
		"PORTICO_RATELIMIT__DEFAULT__RATE=10000", "PORTICO_RATELIMIT__DEFAULT__BURST=10000",
		// The CLI is what is tested: its listings see every plugin loaded.
		"PORTICO_PLUGIN__READY_AFTER_LOAD=true"}, smallEnv...)
	g, err := core.New(core.Options{
		Environ: env, Settings: map[string]string{"data_dir": dir, "listen": "127.0.0.1:0"},
		LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	return &liveGateway{Gateway: g, url: "http://" + g.Addr(), key: key, dir: dir}
}

// request sends one API request with the admin key.
func (g *liveGateway) request(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, g.url+path, strings.NewReader(body))
	req.Header.Set("X-API-Key", g.key)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// cli runs the CLI in-process against g and returns stdout, stderr and the
// error.
func (g *liveGateway) cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, append([]string{"PORTICO_URL=" + g.url, "PORTICO_KEY=" + g.key}, smallEnv...))
	root.SetArgs(append([]string{"--data-dir", t.TempDir()}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestAdminCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway with its embedded plugins; skipped in -short mode")
	}
	g := startGateway(t)
	must := func(args ...string) string {
		t.Helper()
		out, _, err := g.cli(t, args...)
		if err != nil {
			t.Fatalf("portico %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	contains := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", what, w, out)
			}
		}
	}

	t.Run("status", func(t *testing.T) {
		contains("status", must("status"), "version", "ready", "yes", "plugins", "active", g.url)
		var s map[string]any
		if err := json.Unmarshal([]byte(must("status", "--json")), &s); err != nil || s["version"] == nil {
			t.Errorf("status --json: %v %v", s, err)
		}
	})

	t.Run("plugins", func(t *testing.T) {
		out := must("plugins", "list")
		contains("plugins list", out, "NAME", "STATUS", "echo", "active", "embedded")
		var list struct {
			Plugins []struct{ Name, Status string } `json:"plugins"`
			Total   int                             `json:"total"`
		}
		if err := json.Unmarshal([]byte(must("plugins", "list", "--json")), &list); err != nil || list.Total == 0 || list.Total != len(list.Plugins) {
			t.Errorf("plugins list --json: %+v %v", list, err)
		}

		contains("disable", must("plugins", "disable", "echo"), "echo 1.0.0: disabled")
		if st, b := g.request(t, "POST", "/api/v1/skills/echo/invoke", `{"input":"x"}`); st != http.StatusConflict || !strings.Contains(string(b), "plugin_disabled") {
			t.Errorf("echo while disabled: %d %s", st, b)
		}
		contains("list while disabled", must("plugins", "list"), "disabled")
		contains("enable", must("plugins", "enable", "echo"), "echo 1.0.0: active")
		if st, b := g.request(t, "POST", "/api/v1/skills/echo/invoke", `{"input":"x"}`); st != http.StatusOK {
			t.Errorf("echo after enable: %d %s", st, b)
		}
		contains("reload", must("plugins", "reload", "reverse"), "reverse 1.0.0: active")

		_, _, err := g.cli(t, "plugins", "disable", "nosuch")
		if err == nil || !strings.Contains(err.Error(), "nosuch") || !strings.Contains(err.Error(), "404 not_found") {
			t.Errorf("unknown plugin: %v", err)
		}
	})

	t.Run("install and remove", func(t *testing.T) {
		dir := t.TempDir()
		wasm, err := os.ReadFile("../../testdata/wasm/ok.wasm")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "memo.wasm"), wasm, 0o600)
		os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"memo\"\nversion = \"1.2.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"memo\"\ndescription = \"n\"\n"), 0o600)
		out, progress, err := g.cli(t, "plugins", "install", dir)
		if err != nil {
			t.Fatal(err)
		}
		contains("install", out, "installed memo 1.2.0: active", "skills: memo")
		contains("install progress", progress, "uploading memo", "compiling", "done in")
		if st, b := g.request(t, "POST", "/api/v1/skills/memo/invoke", `{"input":"x"}`); st != http.StatusOK {
			t.Errorf("installed skill: %d %s", st, b)
		}
		contains("remove", must("plugins", "remove", "memo", "--purge"), "removed memo")
		if _, _, err := g.cli(t, "plugins", "remove", "echo"); err == nil || !strings.Contains(err.Error(), "409") {
			t.Errorf("remove an embedded plugin: %v", err)
		}
		// A directory without a module is refused before anything is sent.
		os.Remove(filepath.Join(dir, "memo.wasm"))
		if _, _, err := g.cli(t, "plugins", "install", dir); err == nil || !strings.Contains(err.Error(), "memo.wasm") {
			t.Errorf("install without a module: %v", err)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		st, b := g.request(t, "POST", "/api/v1/chat", `{"text":"/echo hello from the cli test"}`)
		if st != http.StatusCreated && st != http.StatusOK {
			t.Fatalf("chat: %d %s", st, b)
		}
		var turn struct {
			SessionID string `json:"session_id"`
		}
		json.Unmarshal(b, &turn)
		contains("sessions list", must("sessions", "list"), turn.SessionID, "api", "active")
		contains("sessions show", must("sessions", "show", turn.SessionID), "session "+turn.SessionID, "user: /echo hello from the cli test", "assistant (echo):")
		var shown struct {
			Session  map[string]any `json:"session"`
			Messages struct {
				Total int `json:"total"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(must("sessions", "show", turn.SessionID, "--json")), &shown); err != nil || shown.Messages.Total != 2 {
			t.Errorf("sessions show --json: %+v %v", shown, err)
		}
		if _, _, err := g.cli(t, "sessions", "show", "nosuch"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("unknown session: %v", err)
		}
		if _, _, err := g.cli(t, "sessions", "list", "--limit", "0"); err == nil || !strings.Contains(err.Error(), "--limit") {
			t.Errorf("bad limit: %v", err)
		}
	})

	t.Run("config", func(t *testing.T) {
		if out := must("config", "get", "log.level"); strings.TrimSpace(out) != "info" {
			t.Errorf("config get log.level = %q", out)
		}
		contains("config get", must("config", "get"), "[log]", "level = 'info'")
		contains("config set", must("config", "set", "log.level=warn", "http.max_in_flight=77"), "updated", "log.level", "http.max_in_flight")
		if out := must("config", "get", "log.level"); strings.TrimSpace(out) != "warn" {
			t.Errorf("after set, log.level = %q", out)
		}
		if out := must("config", "get", "http.max_in_flight"); strings.TrimSpace(out) != "77" {
			t.Errorf("after set, http.max_in_flight = %q", out)
		}
		// null takes a key out of the file: back to the default.
		must("config", "set", "log.level=null", "http.max_in_flight=null")
		if out := must("config", "get", "log.level"); strings.TrimSpace(out) != "info" {
			t.Errorf("after removing it, log.level = %q", out)
		}
		// The environment still wins over the file, and the CLI says so.
		contains("config set overridden", must("config", "set", "ratelimit.default.rate=9000"), "ratelimit.default.rate is still overridden by env PORTICO_RATELIMIT__DEFAULT__RATE")
		_, _, err := g.cli(t, "config", "set", "log.level=loud")
		if err == nil || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "400 bad_request") {
			t.Errorf("invalid value: %v", err)
		}
		if _, _, err := g.cli(t, "config", "get", "no.such.key"); err == nil || !strings.Contains(err.Error(), `no config key "no.such.key"`) {
			t.Errorf("unknown key: %v", err)
		}
		if _, _, err := g.cli(t, "config", "set", "log.level"); err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
			t.Errorf("no value: %v", err)
		}
	})

	t.Run("logs", func(t *testing.T) {
		marker := "/api/v1/plugins/marker-" + core.NewKey()[3:15]
		if st, _ := g.request(t, "GET", marker, ""); st != http.StatusNotFound {
			t.Fatalf("marked request: %d", st)
		}
		contains("logs", must("logs", "--module", "http", "--limit", "50"), "INFO", "[http] request", "path="+marker, "status=404")
		var list struct {
			Entries []map[string]any `json:"entries"`
		}
		if err := json.Unmarshal([]byte(must("logs", "--limit", "5", "--json")), &list); err != nil || len(list.Entries) == 0 || len(list.Entries) > 5 {
			t.Errorf("logs --json: %d entries, %v", len(list.Entries), err)
		}
		if _, _, err := g.cli(t, "logs", "--level", "loud"); err == nil || !strings.Contains(err.Error(), "level must be") || !strings.Contains(err.Error(), "400") {
			t.Errorf("bad level: %v", err)
		}
		if _, _, err := g.cli(t, "logs", "--limit", "0"); err == nil || !strings.Contains(err.Error(), "--limit") {
			t.Errorf("bad limit: %v", err)
		}
	})

	t.Run("logs -f", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &syncBuffer{}
		root := newRoot(out, io.Discard, append([]string{"PORTICO_URL=" + g.url, "PORTICO_KEY=" + g.key}, smallEnv...))
		root.SetArgs([]string{"--data-dir", t.TempDir(), "logs", "-f", "--module", "http"})
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		// The stream replays recent lines once it is subscribed; after the
		// first one, a new line can only arrive live.
		waitFor := func(what string, ok func(string) bool) {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for !ok(out.String()) {
				select {
				case err := <-done:
					t.Fatalf("logs -f ended while waiting for %s: %v\n%s", what, err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %s within 20s:\n%s", what, out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitFor("replayed line", func(s string) bool { return strings.Contains(s, "[http] request") })
		marker := "/api/v1/plugins/live-" + core.NewKey()[3:15]
		g.request(t, "GET", marker, "")
		waitFor("live line", func(s string) bool { return strings.Contains(s, "path="+marker) })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("logs -f after interrupt: %v", err)
		}
	})

	t.Run("wrong URL", func(t *testing.T) {
		_, _, err := g.cli(t, "status", "--url", "http://127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), "cannot reach the gateway at http://127.0.0.1:1") {
			t.Errorf("wrong URL: %v", err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		_, _, err := g.cli(t, "plugins", "list", "--key", core.NewKey())
		var ae *apiError
		if err == nil || !strings.Contains(err.Error(), "the key was refused by the gateway at "+g.url) || !errors.As(err, &ae) || ae.Status != 401 {
			t.Errorf("wrong key: %v", err)
		}
	})

	t.Run("no key at all", func(t *testing.T) {
		// Run outside the data dir: no --key, no PORTICO_KEY, no admin.key.
		dir := t.TempDir()
		for _, args := range [][]string{{"status"}, {"plugins", "list"}, {"backup", filepath.Join(dir, "b.backup")}} {
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut, append([]string{"PORTICO_URL=" + g.url}, smallEnv...))
			root.SetArgs(append([]string{"--data-dir", dir}, args...))
			err := root.ExecuteContext(context.Background())
			want := filepath.Join(dir, "admin.key") + " does not exist"
			if err == nil || !strings.Contains(err.Error(), "no API key was found") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "refused") {
				t.Errorf("%v without a key: %v; want it to say no key was found and %q", args, err, want)
			}
		}
	})

	t.Run("weaker key", func(t *testing.T) {
		out := must("keys", "create", "--name", "ops", "--role", "operator")
		secret := strings.Split(out, "\n")[1]
		if out, _, err := g.cli(t, "plugins", "list", "--key", secret); err != nil || !strings.Contains(out, "echo") {
			t.Errorf("operator lists plugins: %v", err)
		}
		_, _, err := g.cli(t, "config", "get", "--key", secret)
		if err == nil || !strings.Contains(err.Error(), "admin role") || !strings.Contains(err.Error(), "403 forbidden") {
			t.Errorf("operator reads config: %v", err)
		}
	})

	t.Run("address from the data dir", func(t *testing.T) {
		// No --url, --key or environment: the CLI finds the gateway by the
		// data dir's portico.addr and signs in with its admin.key (which
		// bootstrap writes when PORTICO_ADMIN_KEY is not set).
		if err := os.WriteFile(filepath.Join(g.dir, core.AdminKeyFile), []byte(g.key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		root := newRoot(&out, io.Discard, smallEnv)
		root.SetArgs([]string{"--data-dir", g.dir, "status"})
		if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), g.url) {
			t.Errorf("status from the data dir's address: %v\n%s", err, out.String())
		}
	})
}

// TestAdminCLIOverSelfSignedTLS: with TLS on and no certificate files, the
// gateway makes a self-signed certificate; the CLI, finding the gateway
// through the data dir, trusts that certificate and nothing else.
func TestAdminCLIOverSelfSignedTLS(t *testing.T) {
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := core.NewKey()
	env := append([]string{"PORTICO_ADMIN_KEY=" + key, "PORTICO_PLUGIN__CACHE_DIR=" + cache, "PORTICO_TLS__ENABLED=true", "PORTICO_PLUGIN__EMBEDDED=false"}, smallEnv...)
	g, err := core.New(core.Options{
		Environ: env, Settings: map[string]string{"data_dir": dir, "listen": "127.0.0.1:0"},
		LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	if u := core.LocalURL(dir); !strings.HasPrefix(u, "https://") {
		t.Fatalf("portico.addr: %q", u)
	}
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, append([]string{"PORTICO_KEY=" + key, "PORTICO_TLS__ENABLED=true"}, smallEnv...))
	root.SetArgs([]string{"--data-dir", dir, "status", "--json"})
	if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), `"version"`) {
		t.Fatalf("status over TLS: %v\n%s%s", err, out.String(), errOut.String())
	}
	// Without the gateway's certificate (TLS off in the CLI's config) the
	// connection is refused: verification stays on.
	out.Reset()
	root = newRoot(&out, &errOut, append([]string{"PORTICO_KEY=" + key}, smallEnv...))
	root.SetArgs([]string{"--data-dir", dir, "status"})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted certificate was accepted: %v", err)
	}
}
