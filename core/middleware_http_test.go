package core_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// middlewareConfig puts the embedded guard before authentication on every
// route, and headers and redact after it on the API.
const middlewareConfig = sessionsConfig + `
[[middleware.pre_auth]]
name = "everything"
plugins = ["guard"]

[[middleware.post_auth]]
name = "api"
paths = ["/api/v1/"]
plugins = ["headers", "redact"]

[[plugins]]
name = "guard"
[plugins.config]
paths = "/admin/**"
"header.User-Agent" = "(?i)badbot"
status = "451"

[[plugins]]
name = "headers"
trusted = true              # the no-deadline tier
[plugins.config]
"response.set.X-Frame-Options" = "DENY"
"request.remove.X-Debug" = ""
`

func TestMiddlewareChains(t *testing.T) {
	t.Parallel()
	g := start(t, middlewareConfig)

	// pre_auth: the guard answers before authentication.
	if r := do(t, "GET", g.url+"/admin/secrets", ""); r.status != 451 || r.errCode(t) != "forbidden" {
		t.Errorf("guarded path: %d %s", r.status, r.body)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/status", "", "User-Agent", "BadBot/1.0"); r.status != 451 {
		t.Errorf("guarded header: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", g.url+"/health", ""); r.status != 200 || r.header.Get("X-Frame-Options") != "" {
		t.Errorf("a path outside the api group: %d %v", r.status, r.header)
	}
	// post_auth: headers and redact on the API.
	r := g.do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":{"text":"write to ann@example.com"}}`)
	if r.status != 200 || r.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(string(r.body), "write to [redacted]") {
		t.Errorf("echo through headers and redact: %d %v %s", r.status, r.header, r.body)
	}
	// Authentication still runs first: no key, no post_auth chain.
	if r := do(t, "GET", g.url+"/api/v1/skills", ""); r.status != 401 || r.header.Get("X-Frame-Options") != "" {
		t.Errorf("unauthenticated: %d %v", r.status, r.header)
	}

	// A WebSocket and an SSE stream work through the chain.
	ws := wsDial(t, g, g.key)
	wsSend(t, ws, `{"type":"chat","id":"c","text":"/echo through middleware"}`)
	for {
		f := wsRead(t, ws)
		if f.Type == "reply" {
			if !strings.Contains(string(f.Turn), "through middleware") {
				t.Errorf("reply: %s", f.Turn)
			}
			break
		}
		if f.Type == "error" {
			t.Fatalf("ws: %+v", f.Error)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/api/v1/events/stream?events=message.*", nil)
	req.Header.Set("X-API-Key", g.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/chat", `{"text":"/echo streamed"}`); r.status != 201 {
		t.Fatal(r.status)
	}
	sc := bufio.NewScanner(resp.Body)
	got := false
	for !got && sc.Scan() {
		got = strings.HasPrefix(sc.Text(), "event: message.received")
	}
	if !got {
		t.Errorf("no event through the middleware: %v", sc.Err())
	}

	// Disabling the guard skips it; the chain follows enable and reload.
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/guard/disable", ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := do(t, "GET", g.url+"/admin/secrets", ""); r.status != 404 {
		t.Errorf("with the guard disabled: %d", r.status)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/guard/enable", ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := do(t, "GET", g.url+"/admin/secrets", ""); r.status != 451 {
		t.Errorf("enabled again: %d", r.status)
	}
	info := g.do(t, "GET", g.url+"/api/v1/plugins/guard", "").json(t)
	if get(info, "kinds") == nil || get(info, "stats.calls") == 0.0 {
		t.Errorf("guard info: %v", info)
	}
}

// A middleware that traps, or one the chain names but that did not load,
// fails requests closed with 502 plugin_error naming it; changing the
// chain is live.
func TestMiddlewareFailsClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "trapper")
	os.MkdirAll(bad, 0o700)
	os.WriteFile(filepath.Join(bad, "plugin.toml"), []byte("name = \"trapper\"\nversion = \"1.0.0\"\nkinds = [\"middleware\"]\nmodule = \"trapper.wasm\"\n"), 0o600)
	wasm, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", "httpwasm", "error_panic_on_handle_request.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad, "trapper.wasm"), wasm, 0o600)
	g := start(t, sessionsConfig+"[[plugins]]\nname = \"trapper\"\npath = \""+bad+"\"\ncall_timeout = \"50ms\"\n[[middleware.post_auth]]\npaths = [\"/api/v1/skills\"]\nplugins = [\"trapper\"]\n[[middleware.pre_auth]]\npaths = [\"/nowhere\"]\nplugins = [\"missing\"]\n")
	if r := g.do(t, "GET", g.url+"/api/v1/skills", ""); r.status != 502 || r.errCode(t) != "plugin_error" || !strings.Contains(string(r.body), "trapper") {
		t.Errorf("trapping middleware: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", g.url+"/nowhere", ""); r.status != 502 || !strings.Contains(string(r.body), "missing") {
		t.Errorf("missing middleware: %d %s", r.status, r.body)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/status", ""); r.status != 200 {
		t.Errorf("a route outside the chains: %d %s", r.status, r.body)
	}
	// Take the trapper out of the chain, live.
	os.WriteFile(g.file, []byte(sessionsConfig+"[[plugins]]\nname = \"trapper\"\npath = \""+bad+"\"\n"), 0o600)
	eventually(t, "the chain change", func() bool { return g.do(t, "GET", g.url+"/api/v1/skills", "").status == 200 })
}

// Reloading a middleware under load drops no request.
func TestMiddlewareReloadUnderLoad(t *testing.T) {
	t.Parallel()
	// What is tested is that a reload drops nothing; under the race run's
	// load a request can wait over the default 1s for an instance
	// (503 plugin_busy), which says nothing about reloads.
	g := start(t, strings.Replace(middlewareConfig, "[plugin]\n", "[plugin]\nacquire_timeout = \"30s\"\n", 1))
	var ok, failed atomic.Int64
	var first atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := g.do(t, "GET", g.url+"/api/v1/skills", "")
				if r.status == 200 && r.header.Get("X-Frame-Options") == "DENY" {
					ok.Add(1)
				} else {
					failed.Add(1)
					first.CompareAndSwap(nil, string(r.body))
				}
			}
		})
	}
	for range 10 {
		for _, p := range []string{"headers", "redact", "guard"} {
			if r := g.do(t, "POST", g.url+"/api/v1/plugins/"+p+"/reload", ""); r.status != 200 {
				t.Errorf("reload %s: %d %s", p, r.status, r.body)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d ok, %d failed during reloads; first failure: %v", ok.Load(), failed.Load(), first.Load())
	}
}
