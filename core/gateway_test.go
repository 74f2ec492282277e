package core_test

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

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/hostapi"
)

// small keeps each test gateway's Badger footprint low, lifts the rate
// limits that polling loops would otherwise hit, and has Start wait for
// the plugins' load, so a test's first call does not race the load of
// every plugin under -race (the load in the background is tested by
// TestReadyBeforeCompiles and the plugin package).
const small = "[storage]\nmemtable_bytes = 1048576\ncache_bytes = 1048576\n" +
	"[plugin]\nready_after_load = true\n" +
	"[ratelimit.default]\nrate = 100000.0\nburst = 100000\n[ratelimit.config_write]\nrate = 100000.0\nburst = 100000\n"

type gw struct {
	*core.Gateway
	url, dir, file string
	key            string // the bootstrap admin key
}

// do sends a request with the admin key.
func (g *gw) do(t *testing.T, method, url, body string, hdr ...string) response {
	t.Helper()
	return do(t, method, url, body, append([]string{"X-API-Key", g.key}, hdr...)...)
}

// start runs a gateway on a loopback port with a temp data dir and the given
// config file body, and shuts it down when the test ends.
func start(t *testing.T, body string) *gw {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.toml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startIn(t, dir, io.Discard)
}

// startIn runs a gateway on the data dir dir (its portico.toml written
// already), sending its logs to logs.
func startIn(t *testing.T, dir string, logs io.Writer) *gw {
	t.Helper()
	g, err := startWith(t, dir, logs, auth.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// startWith is startIn with the bootstrap admin key and more environment
// (PORTICO_* settings); it may run on any goroutine.
func startWith(t *testing.T, dir string, logs io.Writer, key string, env ...string) (*gw, error) {
	file := filepath.Join(dir, "portico.toml")
	g, err := core.New(core.Options{
		ConfigFile: file, Environ: append([]string{"PORTICO_ADMIN_KEY=" + key, "PORTICO_PLUGIN__CACHE_DIR=" + sharedCache(t)}, env...),
		Settings:       map[string]string{"data_dir": dir, "listen": "127.0.0.1:0"},
		LogOutput:      logs,
		ConfigDebounce: 20 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	if err := g.Start(context.Background()); err != nil {
		return nil, err
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	return &gw{Gateway: g, url: "http://" + g.Addr(), dir: dir, file: file, key: key}, nil
}

// loaded waits until no plugin is loading: Start returns once every
// plugin is registered, and their modules compile in the background.
func (g *gw) loaded(t *testing.T) *gw {
	t.Helper()
	eventually(t, "every plugin loaded", func() bool {
		list := g.do(t, "GET", g.url+"/api/v1/plugins", "").json(t)
		ps, _ := list["plugins"].([]any)
		for _, p := range ps {
			if p.(map[string]any)["status"] == "loading" {
				return false
			}
		}
		return len(ps) > 0
	})
	return g
}

// client bounds every test request so a server bug fails the test instead
// of hanging it.
var client = &http.Client{Timeout: 20 * time.Second}

// sharedCache is the compilation cache every test shares, so the Go echo
// plugin is compiled once per machine, not once per test.
func sharedCache(t testing.TB) string {
	dir, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	return m
}

// errCode returns the code of an error envelope, failing if the body is not one.
func (r response) errCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error envelope: %s", r.body)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("envelope without message: %s", r.body)
	}
	if _, ok := e["details"]; !ok {
		t.Fatalf("envelope without details: %s", r.body)
	}
	return e["code"].(string)
}

func do(t *testing.T, method, url, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// eventually polls cond until it holds; the deadline guards against a hang
// and is not a speed assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func TestProbesAndEnvelope(t *testing.T) {
	t.Parallel()
	g := start(t, small)
	tests := []struct {
		name, method, path string
		status             int
		code               string // error code, "" for success
		check              func(t *testing.T, m map[string]any)
	}{
		{name: "health", method: "GET", path: "/health", status: 200, check: func(t *testing.T, m map[string]any) {
			if m["status"] != "healthy" || m["version"] == "" || m["uptime_seconds"] == nil {
				t.Errorf("health = %v", m)
			}
		}},
		{name: "liveness", method: "GET", path: "/api/v1/status/health", status: 200, check: func(t *testing.T, m map[string]any) {
			if m["healthy"] != true {
				t.Errorf("liveness = %v", m)
			}
		}},
		{name: "readiness", method: "GET", path: "/api/v1/status/ready", status: 200},
		{name: "status", method: "GET", path: "/api/v1/status", status: 200, check: func(t *testing.T, m map[string]any) {
			if get(m, "config.generation") != 1.0 || get(m, "storage.lsm_bytes") == nil || m["ready"] != true {
				t.Errorf("status = %v", m)
			}
		}},
		{name: "unknown route", method: "GET", path: "/api/v1/nope", status: 404, code: "not_found"},
		{name: "wrong method", method: "DELETE", path: "/health", status: 405, code: "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(t, tt.method, g.url+tt.path, "")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				if c := r.errCode(t); c != tt.code {
					t.Errorf("code %q, want %q", c, tt.code)
				}
			}
			if tt.check != nil {
				tt.check(t, r.json(t))
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
	t.Run("request id is echoed", func(t *testing.T) {
		r := do(t, "GET", g.url+"/health", "", "X-Request-Id", "trace-123")
		if got := r.header.Get("X-Request-Id"); got != "trace-123" {
			t.Errorf("X-Request-Id = %q", got)
		}
	})
}

func TestLiveReloadOverHTTP(t *testing.T) {
	t.Parallel()
	g := start(t, small+"[log]\nlevel = \"info\"\n")
	sub, err := g.Bus().Subscribe("config.*", 16)
	if err != nil {
		t.Fatal(err)
	}
	level := func() any { return get(g.do(t, "GET", g.url+"/api/v1/config", "").json(t), "config.log.level") }

	// A live key changed in the file shows up with no restart.
	if err := os.WriteFile(g.file, []byte(small+"[log]\nlevel = \"debug\"\n[http.cors]\nallowed_origins = [\"https://app.example.com\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "log.level debug in GET /api/v1/config", func() bool { return level() == "debug" })
	if ev := <-sub.Events(); ev.Type != events.ConfigReloaded {
		t.Errorf("event %q, want config.reloaded", ev.Type)
	}
	// CORS from the new config is in force.
	r := do(t, "OPTIONS", g.url+"/api/v1/status", "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("preflight Allow-Origin = %q (status %d)", got, r.status)
	}
	r = do(t, "GET", g.url+"/health", "", "Origin", "https://evil.example.com")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}

	// A broken file keeps the old config serving; status shows the error.
	if err := os.WriteFile(g.file, []byte(small+"[log]\nlevel = \"loud\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload error in GET /api/v1/status", func() bool {
		e, _ := get(g.do(t, "GET", g.url+"/api/v1/status", "").json(t), "config.last_error").(string)
		return strings.Contains(e, "log.level")
	})
	if ev := <-sub.Events(); ev.Type != events.ConfigRejected {
		t.Errorf("event %q, want config.rejected", ev.Type)
	}
	if l := level(); l != "debug" {
		t.Errorf("broken file changed the config: level %v", l)
	}

	// Fixing the file recovers.
	if err := os.WriteFile(g.file, []byte(small+"[log]\nlevel = \"warn\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery", func() bool { return level() == "warn" })
	if e := get(g.do(t, "GET", g.url+"/api/v1/status", "").json(t), "config.last_error"); e != nil {
		t.Errorf("error still shown after recovery: %v", e)
	}
}

func TestPatchConfigOverHTTP(t *testing.T) {
	t.Parallel()
	g := start(t, small)
	before, err := os.ReadFile(g.file)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct{ name, body, key string }{
		{"unknown key", `{"log.lvl":"debug"}`, "log.lvl"},
		{"wrong type", `{"http.max_body_bytes":"big"}`, "http.max_body_bytes"},
		{"invalid value", `{"log.level":"verbose"}`, "log.level"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(t, "PATCH", g.url+"/api/v1/config", tt.body)
			if r.status != 400 || r.errCode(t) != "bad_request" {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			keys, _ := get(r.json(t), "error.details.keys").([]any)
			if len(keys) != 1 || keys[0] != tt.key {
				t.Errorf("details.keys = %v, want [%s]", keys, tt.key)
			}
			if !strings.Contains(string(r.body), tt.key) {
				t.Errorf("message does not name %s: %s", tt.key, r.body)
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		if r := g.do(t, "PATCH", g.url+"/api/v1/config", `log.level=debug`); r.status != 400 || r.errCode(t) != "bad_request" {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
	after, _ := os.ReadFile(g.file)
	if !bytes.Equal(before, after) {
		t.Fatalf("rejected patches changed the file:\n%s", after)
	}
	if gen := g.Config().Current().Generation; gen != 1 {
		t.Fatalf("rejected patches changed the config: generation %d", gen)
	}

	r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"log.level":"debug","listen":"127.0.0.1:1"}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if rr, _ := m["reload_required"].([]any); len(rr) != 0 {
		// listen came from a flag, which still wins: nothing waits for a restart.
		t.Errorf("reload_required = %v", rr)
	}
	if get(m, "overridden.listen") != "flag" {
		t.Errorf("overridden = %v", m["overridden"])
	}
	if l := get(g.do(t, "GET", g.url+"/api/v1/config", "").json(t), "config.log.level"); l != "debug" {
		t.Errorf("level after PATCH = %v", l)
	}
	entries, total, err := g.Audit().List(context.Background(), audit_query("config.patch"))
	if err != nil || total != 4 || entries[0].Outcome != "success" || entries[1].Outcome != "failure" {
		t.Errorf("audit: total %d err %v entries %+v", total, err, entries)
	}

	t.Run("body over the limit", func(t *testing.T) {
		if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"http.max_body_bytes":64}`); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		big := `{"log.level":"info","x":"` + strings.Repeat("a", 100) + `"}`
		if r := g.do(t, "PATCH", g.url+"/api/v1/config", big); r.status != 413 || r.errCode(t) != "too_large" {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
}

func TestDataSurvivesRestartAndLocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := core.Options{
		Environ:   []string{"PORTICO_DATA_DIR=" + dir, "PORTICO_LISTEN=127.0.0.1:0", "PORTICO_STORAGE__MEMTABLE_BYTES=1048576"},
		LogOutput: io.Discard,
	}
	g1, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g1.Store().Set(context.Background(), []byte("k"), []byte("v"), store.Sync); err != nil {
		t.Fatal(err)
	}
	_, err = core.New(opts)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second gateway on the same data dir: err = %v, want ErrLocked naming %s", err, dir)
	}
	if err := g1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	g2, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Shutdown(context.Background())
	v, err := g2.Store().Get(context.Background(), []byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

func TestBackupOverHTTPRestores(t *testing.T) {
	t.Parallel()
	g := start(t, small)
	ctx := context.Background()
	want := map[string]string{}
	for i := range 200 {
		k, v := "data/"+string(rune('a'+i%26))+strings.Repeat("x", i%7)+"-"+time.Duration(i).String(), strings.Repeat("v", i*10)
		want[k] = v
		if err := g.Store().Set(ctx, []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := core.LoadConfig(core.Options{Settings: map[string]string{"data_dir": g.dir}})
	if err := core.BackupDataDir(ctx, c, io.Discard); !errors.Is(err, core.ErrGatewayRunning) {
		t.Fatalf("offline backup of a live data dir: err = %v, want ErrGatewayRunning", err)
	}
	if got := core.LocalURL(g.dir); got != g.url {
		t.Errorf("LocalURL = %q, want %q", got, g.url)
	}
	var buf bytes.Buffer
	n, err := core.FetchBackup(ctx, client, g.url, g.key, &buf)
	if err != nil || n == 0 {
		t.Fatalf("FetchBackup: %d bytes, %v", n, err)
	}
	target, _ := core.LoadConfig(core.Options{Settings: map[string]string{"data_dir": t.TempDir(), "storage.memtable_bytes": "1048576"}})
	if err := core.RestoreDataDir(ctx, target, &buf, false); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(target.DataDir(), store.Options{MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for k, v := range want {
		got, err := st.Get(ctx, []byte(k))
		if err != nil || string(got) != v {
			t.Fatalf("restored %q = %d bytes, %v; want %d bytes", k, len(got), err, len(v))
		}
	}
	entries, _, _ := g.Audit().List(ctx, audit_query("store.backup"))
	if len(entries) != 1 || entries[0].Outcome != "success" {
		t.Errorf("backup not audited: %+v", entries)
	}
}

// BenchmarkStatusHealth measures the liveness probe through the whole
// Portico handler (middleware chain and router) next to the same route on a
// bare chi router, in one run, so the ratio between them is what counts.
func BenchmarkStatusHealth(b *testing.B) {
	dir := b.TempDir()
	g, err := core.New(core.Options{
		Settings:  map[string]string{"data_dir": dir, "storage.memtable_bytes": "1048576"},
		LogOutput: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	bare := chi.NewRouter()
	bare.Get("/api/v1/status/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"healthy":true}` + "\n"))
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare-chi", bare}, {"portico", g.Handler()}} {
		b.Run(bc.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "/api/v1/status/health", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := discardWriter{h: http.Header{}}
				bc.h.ServeHTTP(&w, req)
				if w.status != 0 && w.status != 200 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// discardWriter is a minimal ResponseWriter so the benchmark measures the
// gateway's request path, not a recorder's buffering.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
