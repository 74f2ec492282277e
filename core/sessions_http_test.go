package core_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/hostapi"
)

// sessionsConfig lifts the sessions' rate limits for tests that post a lot.
const sessionsConfig = small + "[ratelimit.sessions_read]\nrate = 100000.0\nburst = 100000\n[ratelimit.sessions_write]\nrate = 100000.0\nburst = 100000\n"

// userKey creates a gateway user with the role and returns a key of it.
func userKey(t *testing.T, g *gw, email, role string) string {
	t.Helper()
	r := g.do(t, "POST", g.url+"/api/v1/users", fmt.Sprintf(`{"email":%q,"name":"n","role":%q}`, email, role))
	if r.status != 201 {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	r = g.do(t, "POST", g.url+"/api/v1/users/"+r.json(t)["id"].(string)+"/keys", fmt.Sprintf(`{"name":"k","role":%q}`, role))
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	return r.json(t)["secret"].(string)
}

func TestSessionsOverHTTP(t *testing.T) {
	t.Parallel()
	g := start(t, sessionsConfig)
	alice := userKey(t, g, "alice@example.com", "user")
	bob := userKey(t, g, "bob@example.com", "user")
	as := func(key, method, path, body string, hdr ...string) response {
		return do(t, method, g.url+path, body, append([]string{"X-API-Key", key}, hdr...)...)
	}

	r := as(alice, "POST", "/api/v1/sessions", `{"channel":"api","user_id":"end-user-1","metadata":{"lang":"en"}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)

	// A command trigger routes to echo; the echo skill answers with the
	// text it was handed, without the command.
	r = as(alice, "POST", "/api/v1/sessions/"+id+"/messages", `{"text":"/echo hello there"}`, "Idempotency-Key", "retry-1")
	if r.status != 201 || get(r.json(t), "reply.text") != "hello there" || get(r.json(t), "reply.skill") != "echo" || get(r.json(t), "reply.trigger") != "/echo" {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	first := get(r.json(t), "reply.id")
	// The retry returns the first turn, not a second one.
	r = as(alice, "POST", "/api/v1/sessions/"+id+"/messages", `{"text":"/echo hello there"}`, "Idempotency-Key", "retry-1")
	if r.status != 200 || get(r.json(t), "reply.id") != first || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	// No trigger: the default skill (echo) answers.
	if r := as(alice, "POST", "/api/v1/sessions/"+id+"/messages", `{"text":"just words"}`); r.status != 201 || get(r.json(t), "reply.text") != "just words" {
		t.Fatalf("default route: %d %s", r.status, r.body)
	}
	r = as(alice, "GET", "/api/v1/sessions/"+id, "")
	if r.status != 200 || r.json(t)["turn_count"] != 2.0 || r.json(t)["status"] != "active" || get(r.json(t), "metadata.lang") != "en" || r.json(t)["last_activity"] == nil {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r = as(alice, "GET", "/api/v1/sessions/"+id+"/messages?limit=3", "")
	if r.status != 200 || r.json(t)["total"] != 4.0 || len(r.json(t)["messages"].([]any)) != 3 {
		t.Fatalf("messages: %d %s", r.status, r.body)
	}

	// A user sees only its own sessions.
	if r := as(bob, "GET", "/api/v1/sessions/"+id, ""); r.status != 404 {
		t.Errorf("bob reads alice's session: %d", r.status)
	}
	if r := as(bob, "POST", "/api/v1/sessions/"+id+"/messages", `{"text":"hi"}`); r.status != 404 {
		t.Errorf("bob posts to alice's session: %d", r.status)
	}
	if r := as(bob, "GET", "/api/v1/sessions", ""); r.json(t)["total"] != 0.0 {
		t.Errorf("bob lists: %s", r.body)
	}
	if r := as(alice, "GET", "/api/v1/sessions?user_id=end-user-1&status=active", ""); r.json(t)["total"] != 1.0 {
		t.Errorf("alice lists: %s", r.body)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/sessions?limit=1", ""); r.json(t)["total"] != 1.0 || r.json(t)["limit"] != 1.0 {
		t.Errorf("the admin lists all: %s", r.body)
	}

	// Chat creates a session, or reuses the one named.
	r = as(bob, "POST", "/api/v1/chat", `{"text":"/echo from chat","user_id":"u9"}`, "Idempotency-Key", "chat-1")
	if r.status != 201 || get(r.json(t), "reply.text") != "from chat" {
		t.Fatalf("chat: %d %s", r.status, r.body)
	}
	chatSession := r.json(t)["session_id"].(string)
	if r := as(bob, "POST", "/api/v1/chat", `{"text":"/echo from chat","user_id":"u9"}`, "Idempotency-Key", "chat-1"); r.status != 200 || r.json(t)["session_id"] != chatSession {
		t.Errorf("chat retry made another session: %d %s", r.status, r.body)
	}
	if r := as(bob, "GET", "/api/v1/sessions", ""); r.json(t)["total"] != 1.0 {
		t.Errorf("bob's sessions after a retried chat: %s", r.body)
	}
	if r := as(bob, "POST", "/api/v1/chat", `{"text":"again","session_id":"`+chatSession+`"}`); r.status != 201 || r.json(t)["session_id"] != chatSession {
		t.Errorf("chat to a session: %d %s", r.status, r.body)
	}

	// Bad input: a clear error and nothing stored.
	big := strings.Repeat("x", 33<<10)
	bad := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown session", "POST", "/api/v1/sessions/ses_nope/messages", `{"text":"hi"}`, 404, "not_found"},
		{"oversized message", "POST", "/api/v1/sessions/" + id + "/messages", `{"text":"` + big + `"}`, 413, "too_large"},
		{"invalid JSON", "POST", "/api/v1/sessions/" + id + "/messages", `{"text":`, 400, "bad_request"},
		{"unknown field", "POST", "/api/v1/sessions/" + id + "/messages", `{"txt":"hi"}`, 400, "bad_request"},
		{"empty text", "POST", "/api/v1/sessions/" + id + "/messages", `{"text":" "}`, 400, "bad_request"},
		{"bad channel", "POST", "/api/v1/sessions", `{"channel":"no spaces allowed"}`, 400, "bad_request"},
		{"bad status filter", "GET", "/api/v1/sessions?status=sleeping", "", 400, "bad_request"},
		{"bad limit", "GET", "/api/v1/sessions?limit=0", "", 400, "bad_request"},
		{"oversized chat", "POST", "/api/v1/chat", `{"text":"` + big + `"}`, 413, "too_large"},
	}
	for _, tt := range bad {
		r := as(alice, tt.method, tt.path, tt.body)
		if r.status != tt.status || r.errCode(t) != tt.code {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
	}
	if r := as(alice, "GET", "/api/v1/sessions/"+id, ""); r.json(t)["message_count"] != 4.0 {
		t.Errorf("bad input stored messages: %s", r.body)
	}
	if r := as(alice, "GET", "/api/v1/sessions", ""); r.json(t)["total"] != 1.0 {
		t.Errorf("bad input stored sessions: %s", r.body)
	}

	// Terminate: 204, then 409; a terminated session takes no messages.
	if r := as(alice, "DELETE", "/api/v1/sessions/"+id, ""); r.status != 204 {
		t.Fatalf("terminate: %d %s", r.status, r.body)
	}
	if r := as(alice, "DELETE", "/api/v1/sessions/"+id, ""); r.status != 409 || r.errCode(t) != "conflict" {
		t.Errorf("terminate twice: %d %s", r.status, r.body)
	}
	if r := as(alice, "POST", "/api/v1/sessions/"+id+"/messages", `{"text":"hi"}`); r.status != 409 || r.errCode(t) != "terminated" {
		t.Errorf("post to a terminated session: %d %s", r.status, r.body)
	}
	if r := as(alice, "GET", "/api/v1/sessions?status=terminated", ""); r.json(t)["total"] != 1.0 {
		t.Errorf("terminated filter: %s", r.body)
	}
}

// wsDial opens a WebSocket to the gateway with a key in ?token=.
func wsDial(t *testing.T, g *gw, key string) *websocket.Conn {
	return wsDialOpts(t, g, key, nil)
}

func wsDialOpts(t *testing.T, g *gw, key string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(g.url, "http", "ws", 1)+"/api/v1/ws?token="+key, opts)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

type frame struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	SessionID string          `json:"session_id"`
	Text      string          `json:"text"`
	Turn      json.RawMessage `json:"turn"`
	Event     *struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	} `json:"event"`
	Error *struct{ Code, Message string } `json:"error"`
}

func wsSend(t *testing.T, c *websocket.Conn, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(v)); err != nil {
		t.Fatal(err)
	}
}

func wsRead(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

func TestWebSocketChatAndEvents(t *testing.T) {
	t.Parallel()
	g := start(t, sessionsConfig)
	alice := userKey(t, g, "alice@example.com", "user")
	c := wsDial(t, g, alice)

	wsSend(t, c, `{"type":"subscribe","events":["message.*","session.*"]}`)
	if f := wsRead(t, c); f.Type != "subscribed" {
		t.Fatalf("subscribe: %+v", f)
	}
	wsSend(t, c, `{"type":"chat","id":"c1","text":"/echo over the socket"}`)
	var reply frame
	var chunks []string
	var seen []string
	for reply.Type == "" || len(seen) < 3 {
		switch f := wsRead(t, c); f.Type {
		case "chunk":
			chunks = append(chunks, f.Text)
		case "reply":
			reply = f
		case "event":
			seen = append(seen, f.Event.Type)
			if f.Event.Type == "message.sent" && f.Event.Data["text"] != "over the socket" {
				t.Errorf("the session's own user sees message text: %v", f.Event.Data)
			}
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
	if reply.ID != "c1" || !strings.Contains(string(reply.Turn), `"text":"over the socket"`) || len(chunks) == 0 {
		t.Errorf("reply %+v, chunks %q", reply, chunks)
	}
	if strings.Join(seen, ",") != "session.created,message.received,message.sent" {
		t.Errorf("events: %v", seen)
	}
	// Another user's session events are not shown to alice.
	bob := userKey(t, g, "bob@example.com", "user")
	if r := do(t, "POST", g.url+"/api/v1/chat", `{"text":"bob's secret"}`, "X-API-Key", bob); r.status != 201 {
		t.Fatal(r.status)
	}
	wsSend(t, c, `{"type":"ping","id":"p"}`)
	if f := wsRead(t, c); f.Type != "pong" {
		t.Errorf("alice saw %+v before her pong", f)
	}
	// Bad frames get an error frame; the connection stays up.
	for _, bad := range []string{`not json`, `{"type":"dance"}`, `{"type":"chat","session_id":"ses_nope","text":"hi"}`, `{"type":"subscribe","events":["a..b"]}`} {
		wsSend(t, c, bad)
		if f := wsRead(t, c); f.Type != "error" || f.Error == nil || f.Error.Message == "" {
			t.Errorf("%s: %+v", bad, f)
		}
	}
	wsSend(t, c, `{"type":"ping"}`)
	if f := wsRead(t, c); f.Type != "pong" {
		t.Errorf("after bad frames: %+v", f)
	}
	// Without a credential the upgrade is refused.
	if r := do(t, "GET", g.url+"/api/v1/ws", ""); r.status != 401 {
		t.Errorf("no credential: %d", r.status)
	}
}

// A client that stops reading is closed once its queue fills; another
// client keeps receiving every event.
func TestSlowWebSocketClientIsClosed(t *testing.T) {
	t.Parallel()
	g := start(t, sessionsConfig+"[sessions]\nws_queue = 32\n")
	// The slow client's socket takes little, so the server's writes to it
	// block soon and its queue fills.
	tiny := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow := wsDialOpts(t, g, g.key, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: tiny.DialContext}}})
	fast := wsDial(t, g, g.key)
	for _, c := range []*websocket.Conn{slow, fast} {
		wsSend(t, c, `{"type":"subscribe","events":["message.sent"]}`)
		if f := wsRead(t, c); f.Type != "subscribed" {
			t.Fatal(f)
		}
	}
	got := make(chan int, 1)
	const turns = 300
	go func() {
		n := 0
		for n < turns {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, b, err := fast.Read(ctx)
			cancel()
			if err != nil {
				break
			}
			if strings.Contains(string(b), `"message.sent"`) {
				n++
			}
		}
		got <- n
	}()
	// Big messages fill the slow client's socket buffers, then its queue.
	text := strings.Repeat("y", 30<<10)
	for i := range turns {
		if r := g.do(t, "POST", g.url+"/api/v1/chat", fmt.Sprintf(`{"text":"%d %s"}`, i, text)); r.status != 201 {
			t.Fatalf("chat %d: %d %s", i, r.status, r.body)
		}
	}
	if n := <-got; n != turns {
		t.Errorf("the fast client got %d of %d events", n, turns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, _, err = slow.Read(ctx)
	}
	// Its close frame may be stuck behind the data it never read, so the
	// close shows as a policy-violation status or as the connection ending.
	if ctx.Err() != nil {
		t.Errorf("the slow client was not closed: %v", err)
	}
}

func TestEventStreamSSE(t *testing.T) {
	t.Parallel()
	g := start(t, sessionsConfig)
	op := userKey(t, g, "op@example.com", "operator")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/api/v1/events/stream?events=message.*", nil)
	req.Header.Set("X-API-Key", op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/chat", `{"text":"/echo private words"}`); r.status != 201 {
		t.Fatal(r.status)
	}
	sc := bufio.NewScanner(resp.Body)
	var types []string
	for len(types) < 2 && sc.Scan() {
		line := sc.Text()
		if typ, ok := strings.CutPrefix(line, "event: "); ok {
			types = append(types, typ)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, "private words") {
			t.Errorf("an operator saw message text: %s", data)
		}
	}
	if strings.Join(types, ",") != "message.received,message.sent" {
		t.Errorf("events: %v (%v)", types, sc.Err())
	}
	if r := do(t, "GET", g.url+"/api/v1/events/stream?events=a..b", "", "X-API-Key", op); r.status != 400 {
		t.Errorf("bad pattern: %d", r.status)
	}
}

// BenchmarkMessageTurn posts a message through the HTTP handler (auth,
// rate limit, store, route, echo skill, store, events) and reports the
// median besides the mean:
// go test -run '^$' -bench MessageTurn -benchmem ./core
func BenchmarkMessageTurn(b *testing.B) {
	dir := b.TempDir()
	key := auth.NewSecret()
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	g, err := core.New(core.Options{
		Environ: []string{"PORTICO_PLUGIN__CACHE_DIR=" + cache}, AdminKey: key,
		Settings: map[string]string{"data_dir": dir, "listen": "127.0.0.1:0", "storage.memtable_bytes": "8388608",
			"ratelimit.sessions_write.rate": "1e9", "ratelimit.sessions_write.burst": "1000000000", "ratelimit.default.rate": "1e9", "ratelimit.default.burst": "1000000000",
			"plugin.ready_after_load": "true"}, // measure turns, not the embedded plugins compiling beside them
		LogOutput: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	h := g.Handler()
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := post("/api/v1/sessions", `{}`)
	var se struct{ ID string }
	json.Unmarshal(w.Body.Bytes(), &se)
	path := "/api/v1/sessions/" + se.ID + "/messages"
	// A long session keeps the history handed to the skill at its limit.
	for range 30 {
		post(path, `{"text":"warm up"}`)
	}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		began := time.Now()
		if w := post(path, `{"text":"/echo hello there"}`); w.Code != 201 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		lat = append(lat, time.Since(began))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// Shutdown ends open SSE and WebSocket streams instead of waiting
// http.shutdown_timeout (30s here) for them.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	g := start(t, sessionsConfig+"[http]\nshutdown_timeout = \"30s\"\n")
	req, _ := http.NewRequest("GET", g.url+"/api/v1/events/stream", nil)
	req.Header.Set("X-API-Key", g.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ws := wsDial(t, g, g.key)
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown still waiting for the streams after 15s")
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("event stream ended with %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("the WebSocket is still open: %v", err)
	}
}
