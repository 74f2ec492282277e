package channel

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/session"
	"github.com/porticohq/portico/core/internal/store"
)

// fakePlugins is one channel plugin, "chat", whose operations answer
// what the test sets, recording every call.
type fakePlugins struct {
	mu       sync.Mutex
	state    plugin.State
	webhook  string // the webhook operation's reply
	sendErr  error
	health   string
	sent     []SendRequest
	reloaded int
}

func (f *fakePlugins) Channels() []plugin.Info {
	return []plugin.Info{{Name: "chat", Kinds: []string{"channel"}, Status: f.state}}
}

func (f *fakePlugins) CallChannel(ctx context.Context, name, op string, payload []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch op {
	case "webhook":
		return []byte(f.webhook), nil
	case "send":
		var r SendRequest
		json.Unmarshal(payload, &r)
		f.sent = append(f.sent, r)
		return nil, f.sendErr
	case "health":
		return []byte(f.health), nil
	}
	return nil, errors.New("unknown op")
}

func (f *fakePlugins) Reload(ctx context.Context, name string) error {
	f.reloaded++
	return nil
}

// upper answers every message in upper case.
type upper struct{}

func (upper) Route(text string) (plugin.Route, bool) { return plugin.Route{}, false }
func (upper) Stream(ctx context.Context, skill string, input []byte, sink func([]byte) error) (string, error) {
	var in session.SkillInput
	json.Unmarshal(input, &in)
	return "p", sink([]byte(strings.ToUpper(in.Text)))
}

func newService(t *testing.T) (*Service, *fakePlugins, *session.Service) {
	t.Helper()
	kv, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	cfg := config.Default()
	fp := &fakePlugins{state: plugin.Active, health: `{"healthy":true,"detail":"token ok"}`}
	out := NewOutbox(fp, nil)
	ss, err := session.Open(context.Background(), session.Deps{Store: kv, Config: func() *config.Config { return cfg }, Skills: upper{}, Hooks: session.Hooks{Outbound: out.Send}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(fp, out, ss, nil)
	return s, fp, ss
}

func TestWebhookRunsTurnsAndSendsReplies(t *testing.T) {
	s, fp, ss := newService(t)
	ctx := context.Background()
	fp.webhook = `{"messages":[{"user_id":"42","text":"hello","metadata":{"chat_id":"42"}},{"user_id":"42","text":"again"},{"user_id":"7","text":"other"}]}`
	res, err := s.Webhook(ctx, "chat", WebhookRequest{Method: "POST", Body: "{}"})
	if err != nil || res.Reply.Status != 200 || len(res.Turns) != 3 || len(res.Errors) != 0 {
		t.Fatalf("webhook: %+v %v", res, err)
	}
	if res.Turns[0].SessionID != res.Turns[1].SessionID || res.Turns[0].SessionID == res.Turns[2].SessionID {
		t.Errorf("sessions per user: %s %s %s", res.Turns[0].SessionID, res.Turns[1].SessionID, res.Turns[2].SessionID)
	}
	if len(fp.sent) != 3 || fp.sent[0].Text != "HELLO" || fp.sent[0].Metadata["chat_id"] != "42" || fp.sent[0].UserID != "42" {
		t.Errorf("sent: %+v", fp.sent)
	}
	se, _ := ss.Get(ctx, res.Turns[0].SessionID)
	if se.TurnCount != 2 || se.Channel != "chat" || se.Owner != "" {
		t.Errorf("session: %+v", se)
	}
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[2].Name != "chat" || list[2].ActiveSessions != 2 || list[2].LastMessageAt == nil || list[2].Error != "" {
		t.Errorf("list: %+v", list)
	}
	h, err := s.Health(ctx, "chat")
	if err != nil || !h.Healthy || h.Detail != "token ok" || h.LastOutbound == nil || !h.LastOutbound.OK {
		t.Errorf("health: %+v %v", h, err)
	}

	// A failed send shows in health and the list.
	fp.sendErr = errors.New("platform down")
	fp.webhook = `{"messages":[{"user_id":"42","text":"x"}]}`
	if _, err := s.Webhook(ctx, "chat", WebhookRequest{}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Health(ctx, "chat"); h.Healthy || !strings.Contains(h.LastOutbound.Error, "platform down") {
		t.Errorf("health after a failed send: %+v", h)
	}
	if l, _ := s.List(context.Background()); !strings.Contains(l[2].Error, "platform down") {
		t.Errorf("list after a failed send: %+v", l[2])
	}
	// A restart reloads the plugin and forgets the last outcome.
	if err := s.Restart(ctx, "chat"); err != nil || fp.reloaded != 1 {
		t.Errorf("restart: %v %d", err, fp.reloaded)
	}
}

func TestWebhookRefusalsStoreNothing(t *testing.T) {
	s, fp, ss := newService(t)
	ctx := context.Background()
	fp.webhook = `{"status":401,"error":"bad signature","messages":[{"user_id":"1","text":"x"}]}`
	res, err := s.Webhook(ctx, "chat", WebhookRequest{})
	if err != nil || res.Reply.Status != 401 || len(res.Turns) != 0 {
		t.Fatalf("refused: %+v %v", res, err)
	}
	for _, bad := range []string{`not json`, `{"status":99}`} {
		fp.webhook = bad
		if _, err := s.Webhook(ctx, "chat", WebhookRequest{}); !errors.Is(err, ErrReply) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	fp.webhook = `{"messages":[{"text":"no user"}]}`
	if res, err := s.Webhook(ctx, "chat", WebhookRequest{}); err != nil || len(res.Errors) != 1 {
		t.Errorf("message without user: %+v %v", res, err)
	}
	if count(t, ss) != 0 {
		t.Errorf("%d sessions stored", count(t, ss))
	}
	for _, name := range []string{"api", "ws", "nope"} {
		if _, err := s.Webhook(ctx, name, WebhookRequest{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("webhook to %s: %v", name, err)
		}
	}
	if err := s.Restart(ctx, "api"); !errors.Is(err, ErrBuiltIn) {
		t.Errorf("restart api: %v", err)
	}
	if h, err := s.Health(ctx, "ws"); err != nil || !h.Healthy {
		t.Errorf("ws health: %+v %v", h, err)
	}
	fp.state = plugin.Disabled
	if h, _ := s.Health(ctx, "chat"); h.Healthy || h.Status != "disabled" {
		t.Errorf("disabled channel health: %+v", h)
	}
}

func count(t *testing.T, ss *session.Service) int {
	t.Helper()
	n, err := ss.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
