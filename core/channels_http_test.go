package core_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/webhook"
)

// mockTelegram is the Bot API on loopback: it records sendMessage calls
// and answers getMe.
type mockTelegram struct {
	*httptest.Server
	mu   sync.Mutex
	sent []map[string]any
}

func newMockTelegram(t *testing.T, token string) *mockTelegram {
	m := &mockTelegram{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/bot" + token + "/sendMessage":
			var msg map[string]any
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &msg); err != nil {
				w.WriteHeader(400)
				io.WriteString(w, `{"ok":false,"description":"bad json"}`)
				return
			}
			m.mu.Lock()
			m.sent = append(m.sent, msg)
			m.mu.Unlock()
			io.WriteString(w, `{"ok":true,"result":{"message_id":7}}`)
		case "/bot" + token + "/getMe":
			io.WriteString(w, `{"ok":true,"result":{"id":1,"is_bot":true,"username":"portico_test_bot"}}`)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"ok":false,"description":"Not Found"}`)
		}
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mockTelegram) messages() []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]map[string]any{}, m.sent...)
}

// TestTelegramEndToEnd: the mock Telegram posts an update to the channel
// webhook; a session is created, the message routes by trigger to a
// skill, the reply reaches the mock's sendMessage, the session shows the
// turn and the transcript, and a WebSocket client sees the events.
func TestTelegramEndToEnd(t *testing.T) {
	t.Parallel()
	const token = "123456:test-token"
	tg := newMockTelegram(t, token)
	g := start(t, sessionsConfig+`
[[plugins]]
name = "telegram"
grants = ["http"]
http_allow = ["127.0.0.1"]
http_private = true
[plugins.config]
bot_token = "`+token+`"
secret_token = "tg-secret"
api_base = "`+tg.URL+`"
`)
	ws := wsDial(t, g, g.key)
	wsSend(t, ws, `{"type":"subscribe","events":["session.*","message.*"]}`)
	if f := wsRead(t, ws); f.Type != "subscribed" {
		t.Fatal(f)
	}

	update := `{"update_id":1001,"message":{"message_id":5,"from":{"id":42,"is_bot":false,"username":"ann"},"chat":{"id":42,"type":"private"},"date":1767312000,"text":"/echo hello from telegram"}}`
	hook := g.url + "/api/v1/channels/telegram/webhook"

	// A bad secret is refused, audited and stores nothing.
	if r := do(t, "POST", hook, update, "X-Telegram-Bot-Api-Secret-Token", "wrong"); r.status != 401 || r.errCode(t) != "unauthorized" {
		t.Fatalf("bad secret: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", hook, update); r.status != 401 {
		t.Fatalf("no secret: %d %s", r.status, r.body)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/sessions?channel=telegram", ""); r.json(t)["total"] != 0.0 {
		t.Fatalf("a refused update stored a session: %s", r.body)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/audit?action=channel.webhook_refused", ""); !strings.Contains(string(r.body), "channel.webhook_refused") {
		t.Errorf("refusal not audited: %s", r.body)
	}

	r := do(t, "POST", hook, update, "X-Telegram-Bot-Api-Secret-Token", "tg-secret")
	if r.status != 200 || r.json(t)["answered"] != 1.0 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	sent := tg.messages()
	if len(sent) != 1 || sent[0]["text"] != "hello from telegram" || sent[0]["chat_id"] != 42.0 {
		t.Fatalf("sendMessage calls: %v", sent)
	}
	r = g.do(t, "GET", g.url+"/api/v1/sessions?channel=telegram", "")
	list := r.json(t)["sessions"].([]any)
	if r.json(t)["total"] != 1.0 || len(list) != 1 {
		t.Fatalf("sessions: %s", r.body)
	}
	se := list[0].(map[string]any)
	if se["turn_count"] != 1.0 || se["user_id"] != "chat-42" || get(se, "metadata.username") != "ann" {
		t.Errorf("session: %v", se)
	}
	r = g.do(t, "GET", g.url+"/api/v1/sessions/"+se["id"].(string)+"/messages", "")
	msgs := r.json(t)["messages"].([]any)
	if len(msgs) != 2 || get(msgs[0].(map[string]any), "text") != "/echo hello from telegram" || get(msgs[1].(map[string]any), "skill") != "echo" {
		t.Errorf("transcript: %s", r.body)
	}
	var seen []string
	for len(seen) < 3 {
		f := wsRead(t, ws)
		if f.Type == "event" {
			seen = append(seen, f.Event.Type)
		}
	}
	if strings.Join(seen, ",") != "session.created,message.received,message.sent" {
		t.Errorf("websocket events: %v", seen)
	}

	// A second message continues the chat's session.
	next := strings.Replace(strings.Replace(update, `"update_id":1001`, `"update_id":1002`, 1), "/echo hello from telegram", "/echo again", 1)
	if r := do(t, "POST", hook, next, "X-Telegram-Bot-Api-Secret-Token", "tg-secret"); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/sessions/"+se["id"].(string), ""); r.json(t)["turn_count"] != 2.0 {
		t.Errorf("second update: %s", r.body)
	}
	// Updates without text are accepted and answered with nothing.
	if r := do(t, "POST", hook, `{"update_id":1003,"message":{"chat":{"id":42},"photo":[]}}`, "X-Telegram-Bot-Api-Secret-Token", "tg-secret"); r.status != 200 || r.json(t)["messages"] != 0.0 {
		t.Errorf("photo update: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", hook, `{not json`, "X-Telegram-Bot-Api-Secret-Token", "tg-secret"); r.status != 400 {
		t.Errorf("bad json: %d %s", r.status, r.body)
	}

	// Channel status and health.
	r = g.do(t, "GET", g.url+"/api/v1/channels", "")
	var tgStatus map[string]any
	for _, c := range r.json(t)["channels"].([]any) {
		if c.(map[string]any)["name"] == "telegram" {
			tgStatus = c.(map[string]any)
		}
	}
	if tgStatus == nil || tgStatus["active_sessions"] != 1.0 || tgStatus["last_message_at"] == nil || tgStatus["status"] != "active" {
		t.Errorf("channels: %s", r.body)
	}
	r = g.do(t, "GET", g.url+"/api/v1/channels/telegram/health", "")
	if r.status != 200 || r.json(t)["healthy"] != true || r.json(t)["detail"] != "bot @portico_test_bot" || get(r.json(t), "last_outbound.ok") != true {
		t.Errorf("health: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/channels/telegram/restart", ""); r.status != 200 {
		t.Errorf("restart: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/channels/api/restart", ""); r.status != 400 {
		t.Errorf("restart a built-in: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", g.url+"/api/v1/channels/nope/webhook", "{}"); r.status != 404 {
		t.Errorf("unknown channel: %d %s", r.status, r.body)
	}
}

// TestJSONHookChannel: a signed message in through the generic channel, a
// reply out to the receiver, signed with the scheme of Portico's outbound
// webhooks (checked with webhook.Verify).
func TestJSONHookChannel(t *testing.T) {
	t.Parallel()
	type delivery struct {
		ts, sig string
		body    []byte
	}
	got := make(chan delivery, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), b}
		w.WriteHeader(204)
	}))
	defer recv.Close()
	g := start(t, sessionsConfig+`
[[plugins]]
name = "jsonhook"
grants = ["http"]
http_allow = ["127.0.0.1"]
http_private = true
[plugins.config]
secret = "shared-secret"
reply_url = "`+recv.URL+`/replies"
`)
	body := `{"user_id":"ticket-7","text":"/echo status please","metadata":{"ticket":"7"}}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	hook := g.url + "/api/v1/channels/jsonhook/webhook"
	if r := do(t, "POST", hook, body, webhook.HeaderTimestamp, ts, webhook.HeaderSignature, webhook.Signature([]string{"wrong"}, ts, []byte(body))); r.status != 401 {
		t.Fatalf("bad signature: %d %s", r.status, r.body)
	}
	r := do(t, "POST", hook, body, webhook.HeaderTimestamp, ts, webhook.HeaderSignature, webhook.Signature([]string{"shared-secret"}, ts, []byte(body)))
	if r.status != 200 || r.json(t)["answered"] != 1.0 {
		t.Fatalf("signed message: %d %s", r.status, r.body)
	}
	d := <-got
	if !webhook.Verify("shared-secret", d.ts, d.sig, d.body) {
		t.Errorf("reply signature does not verify: %s %s", d.sig, d.body)
	}
	var reply map[string]any
	json.Unmarshal(d.body, &reply)
	if reply["text"] != "status please" || reply["user_id"] != "ticket-7" || get(reply, "metadata.ticket") != "7" {
		t.Errorf("reply: %s", d.body)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/channels/jsonhook/health", ""); r.json(t)["healthy"] != true {
		t.Errorf("health: %s", r.body)
	}
}
