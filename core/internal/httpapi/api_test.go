package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/channel"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/mcp"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/ratelimit"
	"github.com/porticohq/portico/core/internal/session"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/webhook"
)

func newAPI(t testing.TB, body string) *API {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := config.NewManager(config.Sources{File: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := auth.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	lim, _ := ratelimit.New(ratelimit.Options{Rates: map[string]ratelimit.Rate{"default": {PerSecond: 1, Burst: 1}}})
	fail, _ := ratelimit.New(ratelimit.Options{Rates: map[string]ratelimit.Rate{"default": {PerSecond: 1, Burst: 1}}})
	bus := events.New()
	plugins := plugin.NewManager(plugin.Deps{Store: st, Bus: bus, Audit: audit.New(st), Logger: slog.New(slog.DiscardHandler)})
	outbox := channel.NewOutbox(plugins, nil)
	sessions, err := session.Open(context.Background(), session.Deps{Store: st, Bus: bus, Config: m.Config, Skills: plugins, Hooks: session.Hooks{Outbound: outbox.Send}})
	if err != nil {
		t.Fatal(err)
	}
	channels := channel.New(plugins, outbox, sessions, nil)
	return New(Deps{Config: m, Auth: svc, Limits: lim, Failures: fail, Plugins: plugins, Store: st, Bus: bus, Audit: audit.New(st), Sessions: sessions, Channels: channels,
		LLM:    llm.New(st, m.Config().LLM, llm.Options{}),
		Hooks:  webhook.New(webhook.Deps{Store: st, Bus: bus}, m.Config()),
		MCP:    mcp.New(mcp.Deps{Plugins: plugins, Bus: bus, Config: m.Config}),
		Logger: slog.New(slog.DiscardHandler), Version: "test", Started: time.Now()})
}

// adminKey creates an admin user and key and returns the key's secret.
func adminKey(t testing.TB, a *API) string {
	t.Helper()
	ctx := context.Background()
	u, err := a.d.Auth.CreateUser(ctx, auth.UserInput{Email: "admin@example.com", Name: "admin", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.d.Auth.CreateKey(ctx, auth.KeyInput{Name: "admin", Role: auth.RoleAdmin, UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// chained wraps h in the API's core middleware, as the router does.
func chained(a *API, h http.Handler) http.Handler {
	mw := a.middleware()
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

func code(t *testing.T, body []byte) string {
	t.Helper()
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("not an error envelope (%v): %s", err, body)
	}
	return env.Error.Code
}

func TestRecovererKeepsServing(t *testing.T) {
	a := newAPI(t, "")
	h := chained(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("handler bug")
		}
		w.Write([]byte("fine"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || code(t, b) != CodeInternal {
		t.Errorf("panic answered %d: %s", resp.StatusCode, b)
	}
	resp, err = http.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "fine" {
		t.Errorf("after a panic: %d %s", resp.StatusCode, b)
	}
}

func TestInFlightLimit(t *testing.T) {
	a := newAPI(t, "[http]\nmax_in_flight = 1\n")
	entered, release := make(chan struct{}), make(chan struct{})
	h := chained(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.Write([]byte("ok"))
	}))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil))
	}()
	<-entered
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/other", nil))
	if w.Code != 503 || code(t, w.Body.Bytes()) != CodeOverloaded || w.Header().Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %s", w.Code, w.Body)
	}
	// Probes are exempt.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
	if w.Code != 200 {
		t.Errorf("probe refused under load: %d", w.Code)
	}
	close(release)
	wg.Wait()
	if n := a.InFlight(); n != 0 {
		t.Errorf("in flight after all finished: %d", n)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/other", nil))
	if w.Code != 200 {
		t.Errorf("after the slow one finished: %d", w.Code)
	}
}

func TestBodyLimit(t *testing.T) {
	a := newAPI(t, "[http]\nmax_body_bytes = 10\n")
	h := chained(a, a.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.ReadAll(r.Body); err != nil {
			return err
		}
		w.Write([]byte("read"))
		return nil
	}))
	tests := []struct {
		name   string
		body   io.Reader
		status int
	}{
		{"under", strings.NewReader("12345"), 200},
		{"declared over", strings.NewReader(strings.Repeat("x", 11)), 413},
		{"streamed over", io.MultiReader(strings.NewReader(strings.Repeat("x", 11))), 413}, // no Content-Length
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", tt.body)
			if _, ok := tt.body.(*strings.Reader); !ok {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 413 && code(t, w.Body.Bytes()) != CodeTooLarge {
				t.Errorf("body %s", w.Body)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	a := newAPI(t, "")
	for _, ready := range []bool{false, true, false} {
		a.SetReady(ready)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/status/ready", nil))
		if ready && w.Code != 200 || !ready && (w.Code != 503 || code(t, w.Body.Bytes()) != CodeNotReady) {
			t.Errorf("ready=%v: %d %s", ready, w.Code, w.Body)
		}
	}
}

// Streaming routes (SSE, WebSocket) need Flusher and Hijacker through the
// whole chain.
func TestChainKeepsFlusherAndHijacker(t *testing.T) {
	a := newAPI(t, "[http.cors]\nallowed_origins = [\"https://a.example\"]\n")
	var flusher, hijacker bool
	h := chained(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, flusher = w.(http.Flusher)
		_, hijacker = w.(http.Hijacker)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !flusher || !hijacker {
		t.Errorf("Flusher %v, Hijacker %v through the chain", flusher, hijacker)
	}
}

func TestRouteTable(t *testing.T) {
	a := newAPI(t, "")
	seen := map[string]bool{}
	for _, rt := range a.routes() {
		if rt.role < RolePublic || rt.role > RoleAdmin {
			t.Errorf("%s %s: role %v", rt.method, rt.pattern, rt.role)
		}
		if rt.role != RolePublic && rt.group == "" {
			t.Errorf("%s %s: a non-public route needs a rate-limit group", rt.method, rt.pattern)
		}
		key := rt.method + " " + rt.pattern
		if seen[key] {
			t.Errorf("%s registered twice", key)
		}
		seen[key] = true
	}
	defer func() {
		if recover() == nil {
			t.Error("a route without a role did not stop the router")
		}
	}()
	a.extra = []route{{method: "GET", pattern: "/forgotten", h: a.health}}
	a.router()
}

func TestRequestIDValidation(t *testing.T) {
	tests := []struct {
		in   string
		kept bool
	}{
		{"abc-123", true},
		{"", false},
		{"has space", false},
		{strings.Repeat("x", 129), false},
		{"new\nline", false},
	}
	a := newAPI(t, "")
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/health", nil)
		r.Header.Set("X-Request-Id", tt.in)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		got := w.Header().Get("X-Request-Id")
		if (got == tt.in) != tt.kept || got == "" {
			t.Errorf("X-Request-Id %q -> %q", tt.in, got)
		}
	}
}

func TestBackupTrailer(t *testing.T) {
	a := newAPI(t, "")
	key := adminKey(t, a)
	srv := httptest.NewServer(a)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/admin/backup", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	io.Copy(&buf, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Trailer.Get(BackupStatusTrailer) != "ok" {
		t.Errorf("status %d trailer %q", resp.StatusCode, resp.Trailer.Get(BackupStatusTrailer))
	}
}

func BenchmarkChain(b *testing.B) {
	a := newAPI(b, "")
	h := chained(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/api/v1/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

func auditQuery() audit.Query { return audit.Query{Limit: 1000} }

// TestBodyLimitColumn: the route table's body column is what the body
// limit reads, by method and literal path; a limit on a pattern with
// parameters is refused when the table is built.
func TestBodyLimitColumn(t *testing.T) {
	m := bodyLimits((&API{}).routes())
	if len(m) != 2 || m[routeKey{"POST", "/api/v1/plugins"}] == nil || m[routeKey{"POST", "/api/v1/packs"}] == nil {
		t.Errorf("body limits: %v", m)
	}
	defer func() {
		if recover() == nil {
			t.Error("a body limit on /x/{id} was accepted")
		}
	}()
	bodyLimits([]route{{method: "POST", pattern: "/x/{id}", opts: pluginUpload}})
}

// TestStreamedColumn: the middleware chains tell a stream by the route
// table's streamed column or by the request's own headers, and nothing
// else.
func TestStreamedColumn(t *testing.T) {
	a := &API{}
	a.streamed = streamedRoutes(a.routes())
	for _, c := range []struct {
		method, path string
		hdr          [2]string
		want         bool
	}{
		{"GET", "/api/v1/ws", [2]string{}, true},
		{"GET", "/api/v1/events/stream", [2]string{}, true},
		{"GET", "/api/v1/logs/stream", [2]string{}, true},
		{"POST", "/api/v1/mcp", [2]string{}, true},
		{"GET", "/api/v1/mcp/github/mcp", [2]string{}, true},
		{"GET", "/api/v1/mcp/registry", [2]string{}, false},
		{"GET", "/api/v1/logs", [2]string{}, false},
		{"POST", "/api/v1/skills/echo/invoke", [2]string{}, false},
		{"GET", "/api/v1/status", [2]string{"Accept", "text/event-stream"}, true},
		{"GET", "/anything", [2]string{"Upgrade", "websocket"}, true},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.hdr[0] != "" {
			r.Header.Set(c.hdr[0], c.hdr[1])
		}
		if got := a.streaming(r); got != c.want {
			t.Errorf("%s %s %v: streaming %v, want %v", c.method, c.path, c.hdr, got, c.want)
		}
	}
}

// TestChainsBuiltOnce: a request's middleware chain is built once per
// config and registry snapshot (and set of applying groups), then reused;
// a new config or registry builds it again.
func TestChainsBuiltOnce(t *testing.T) {
	a := newAPI(t, "[[middleware.pre_auth]]\nname = \"api\"\npaths = [\"/api/\"]\nplugins = [\"ghost\"]\n")
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	ch := a.newChains(preAuthGroups, next)
	ptr := func(h http.Handler) uintptr { return reflect.ValueOf(h).Pointer() }
	get := func(path string) http.Handler { return ch.handler(httptest.NewRequest("GET", path, nil)) }
	first := get("/api/v1/x")
	if ptr(first) == ptr(next) {
		t.Fatal("the chain of a path its group applies to is next itself")
	}
	if ptr(get("/api/v1/y")) != ptr(first) {
		t.Error("the same chain was built twice in one snapshot")
	}
	if ptr(get("/health")) != ptr(next) {
		t.Error("a path no group applies to got a chain")
	}
	// The missing plugin fails the request closed, from the cached chain too.
	w := httptest.NewRecorder()
	first.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/x", nil))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "ghost") {
		t.Errorf("a chain with a missing plugin: %d %s", w.Code, w.Body)
	}
	if _, err := a.d.Config.Patch(map[string]any{"middleware.pre_auth": []any{map[string]any{"name": "all", "plugins": []any{"ghost2"}}}}); err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	get("/health").ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "ghost2") {
		t.Errorf("after a config change: %d %s", w.Code, w.Body)
	}
}
