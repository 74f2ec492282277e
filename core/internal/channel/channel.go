// Package channel connects chat platforms to sessions. Two channels are
// built in: api (HTTP) and ws (WebSocket), whose replies go back on the
// request or connection that asked. Every other channel is a plugin of
// kind "channel" (ABI v1.1): the platform posts to
// /api/v1/channels/{name}/webhook, the plugin checks the platform's
// signature and turns the payload into messages ("webhook" operation), each
// message runs a turn in the end user's session, and the reply goes out
// through the plugin's "send" operation, which calls the platform with the
// plugin's granted HTTP capability. A plugin may also answer "health".
package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/session"
)

// Built-in channel names.
const (
	API       = "api"
	WebSocket = "ws"
)

// Errors callers decide on with errors.Is.
var (
	ErrNotFound = errors.New("channel not found")
	ErrBuiltIn  = errors.New("built-in channel")
	ErrReply    = errors.New("channel plugin reply is malformed")
)

// WebhookRequest is what a channel plugin's "webhook" operation receives:
// the platform's request.
type WebhookRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query"`
	// Headers holds the first value of each header, by lower-case name.
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// WebhookReply is what the "webhook" operation answers: the messages found
// in the request and, optionally, what to answer the platform. A status of
// 400 or more refuses the request (a bad signature is 401) with error as
// the message, and no message is processed.
type WebhookReply struct {
	Status      int        `json:"status,omitempty"`
	Body        string     `json:"body,omitempty"`
	ContentType string     `json:"content_type,omitempty"`
	Error       string     `json:"error,omitempty"`
	Messages    []Incoming `json:"messages"`
}

// Incoming is one message a platform delivered.
type Incoming struct {
	// UserID identifies the conversation on the platform (a chat id): its
	// messages continue one session until it is terminated.
	UserID   string            `json:"user_id"`
	Text     string            `json:"text"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// SendRequest is what the "send" operation receives: a reply to deliver.
type SendRequest struct {
	SessionID string            `json:"session_id"`
	UserID    string            `json:"user_id"`
	Metadata  map[string]string `json:"metadata"`
	Text      string            `json:"text"`
}

// HealthReply is what the optional "health" operation answers.
type HealthReply struct {
	Healthy bool   `json:"healthy"`
	Detail  string `json:"detail,omitempty"`
}

// Outbound is the last reply a channel sent.
type Outbound struct {
	At        time.Time `json:"at"`
	LatencyMS float64   `json:"latency_ms"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
}

// Plugins is what the service needs of the plugin manager.
type Plugins interface {
	Channels() []plugin.Info
	CallChannel(ctx context.Context, name, op string, payload []byte) ([]byte, error)
	Reload(ctx context.Context, name string) error
}

// Service runs the channels.
type Service struct {
	plugins  Plugins
	out      *Outbox
	sessions *session.Service
	log      *slog.Logger

	mu      sync.Mutex
	inbound map[string]string // last error processing a channel's messages
}

// New returns the channel service: messages in through p into s, replies
// out through o (the outbox s was built with).
func New(p Plugins, o *Outbox, s *session.Service, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{plugins: p, out: o, sessions: s, log: log, inbound: map[string]string{}}
}

// Outbox sends replies out on channel plugins and remembers how the last
// one went per channel. It needs only the plugins, so it is built before
// the sessions, which send through it, and the Service, which reports on
// it: no cycle between sessions and channels.
type Outbox struct {
	plugins Plugins
	log     *slog.Logger

	mu   sync.Mutex
	last map[string]Outbound
}

// NewOutbox returns an outbox sending through p.
func NewOutbox(p Plugins, log *slog.Logger) *Outbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{plugins: p, log: log, last: map[string]Outbound{}}
}

// lastOf returns the outcome of the last reply sent on a channel.
func (o *Outbox) lastOf(name string) (Outbound, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out, ok := o.last[name]
	return out, ok
}

func (o *Outbox) forget(name string) {
	o.mu.Lock()
	delete(o.last, name)
	o.mu.Unlock()
}

func (s *Service) plugin(name string) (plugin.Info, error) {
	if name == API || name == WebSocket {
		return plugin.Info{}, fmt.Errorf("%w: %q is %w", ErrNotFound, name, ErrBuiltIn)
	}
	for _, c := range s.plugins.Channels() {
		if c.Name == name {
			return c, nil
		}
	}
	return plugin.Info{}, fmt.Errorf("%w: %q (channels are the built-in api and ws and the channel plugins)", ErrNotFound, name)
}

// Result is the outcome of a webhook: what to answer the platform and the
// turns it ran.
type Result struct {
	Reply WebhookReply
	Turns []session.Turn
	// Errors are the messages that could not be answered.
	Errors []string
}

// Webhook hands a platform's request to the channel plugin and runs a turn
// for each message it finds. A refused request (bad signature) runs none.
func (s *Service) Webhook(ctx context.Context, name string, req WebhookRequest) (Result, error) {
	if _, err := s.plugin(name); err != nil {
		return Result{}, err
	}
	in, _ := json.Marshal(req)
	out, err := s.plugins.CallChannel(ctx, name, "webhook", in)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if err := json.Unmarshal(out, &res.Reply); err != nil {
		return Result{}, fmt.Errorf("%w: channel %q: webhook: %v", ErrReply, name, err)
	}
	if res.Reply.Status == 0 {
		res.Reply.Status = 200
	}
	if res.Reply.Status < 200 || res.Reply.Status > 599 {
		return Result{}, fmt.Errorf("%w: channel %q: webhook status %d", ErrReply, name, res.Reply.Status)
	}
	if res.Reply.Status >= 400 {
		return res, nil
	}
	for _, m := range res.Reply.Messages {
		turn, err := s.receive(ctx, name, m)
		if err != nil {
			s.log.Warn("channel message not answered", "channel", name, "user_id", m.UserID, "error", err)
			res.Errors = append(res.Errors, err.Error())
			s.mu.Lock()
			s.inbound[name] = err.Error()
			s.mu.Unlock()
			continue
		}
		res.Turns = append(res.Turns, turn)
	}
	if len(res.Errors) == 0 && len(res.Reply.Messages) > 0 {
		s.mu.Lock()
		delete(s.inbound, name)
		s.mu.Unlock()
	}
	return res, nil
}

func (s *Service) receive(ctx context.Context, name string, m Incoming) (session.Turn, error) {
	if m.UserID == "" {
		return session.Turn{}, fmt.Errorf("%w: a message without user_id", ErrReply)
	}
	se, err := s.sessions.Resume(ctx, session.CreateInput{Channel: name, UserID: m.UserID, Metadata: m.Metadata})
	if err != nil {
		return session.Turn{}, err
	}
	return s.sessions.Post(ctx, session.PostInput{SessionID: se.ID, Text: m.Text, FromChannel: true, AnyOwner: true})
}

// Send delivers a reply through the session's channel plugin; it is the
// session service's Outbound hook. The outcome is kept for health.
func (o *Outbox) Send(ctx context.Context, se session.Session, reply session.Message) {
	in, _ := json.Marshal(SendRequest{SessionID: se.ID, UserID: se.UserID, Metadata: se.Metadata, Text: reply.Text})
	began := time.Now()
	_, err := o.plugins.CallChannel(context.WithoutCancel(ctx), se.Channel, "send", in)
	res := Outbound{At: began.UTC(), LatencyMS: float64(time.Since(began).Microseconds()) / 1000, OK: err == nil}
	if err != nil {
		res.Error = err.Error()
		o.log.Warn("channel reply not delivered", "channel", se.Channel, "session_id", se.ID, "error", err)
	}
	o.mu.Lock()
	o.last[se.Channel] = res
	o.mu.Unlock()
}

// Status is a channel in GET /api/v1/channels.
type Status struct {
	Name           string     `json:"name"`
	Kind           string     `json:"kind"`   // builtin or plugin
	Status         string     `json:"status"` // active, disabled, failed
	ActiveSessions int        `json:"active_sessions"`
	LastMessageAt  *time.Time `json:"last_message_at"`
	Error          string     `json:"error,omitempty"`
}

// List returns the built-in channels and the channel plugins.
func (s *Service) List(ctx context.Context) ([]Status, error) {
	stats, err := s.sessions.ChannelStats(ctx)
	if err != nil {
		return nil, err
	}
	out := []Status{}
	for _, name := range []string{API, WebSocket} {
		st := stats[name]
		out = append(out, Status{Name: name, Kind: "builtin", Status: "active", ActiveSessions: st.ActiveSessions, LastMessageAt: st.LastMessageAt})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.plugins.Channels() {
		st := stats[p.Name]
		c := Status{Name: p.Name, Kind: "plugin", Status: string(p.Status), ActiveSessions: st.ActiveSessions, LastMessageAt: st.LastMessageAt, Error: p.LastError}
		if c.Error == "" {
			if o, ok := s.out.lastOf(p.Name); ok && !o.OK {
				c.Error = "last reply not delivered: " + o.Error
			} else if e := s.inbound[p.Name]; e != "" {
				c.Error = "last message not answered: " + e
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Health is GET /api/v1/channels/{name}/health.
type Health struct {
	Name          string     `json:"name"`
	Healthy       bool       `json:"healthy"`
	Status        string     `json:"status"`
	LastMessageAt *time.Time `json:"last_message_at"`
	LastOutbound  *Outbound  `json:"last_outbound"`
	Detail        string     `json:"detail,omitempty"`
}

// Health reports a channel's health: the plugin's own check when it
// answers one, and the outcome of the last reply it sent.
func (s *Service) Health(ctx context.Context, name string) (Health, error) {
	stats, err := s.sessions.ChannelStats(ctx)
	if err != nil {
		return Health{}, err
	}
	if name == API || name == WebSocket {
		return Health{Name: name, Healthy: true, Status: "active", LastMessageAt: stats[name].LastMessageAt}, nil
	}
	p, err := s.plugin(name)
	if err != nil {
		return Health{}, err
	}
	h := Health{Name: name, Status: string(p.Status), LastMessageAt: stats[name].LastMessageAt, Healthy: p.Status.Serves()}
	if o, ok := s.out.lastOf(name); ok {
		h.LastOutbound = &o
		h.Healthy = h.Healthy && o.OK
	}
	if !p.Status.Serves() {
		h.Detail = p.LastError
		return h, nil
	}
	out, err := s.plugins.CallChannel(ctx, name, "health", []byte("{}"))
	if err != nil {
		h.Healthy, h.Detail = false, "health check failed: "+err.Error()
		return h, nil
	}
	var hr HealthReply
	if err := json.Unmarshal(out, &hr); err != nil {
		h.Healthy, h.Detail = false, fmt.Sprintf("health check answered %q: %v", out, err)
		return h, nil
	}
	h.Healthy = h.Healthy && hr.Healthy
	h.Detail = hr.Detail
	return h, nil
}

// Restart re-initializes a channel plugin's instances (a reload from its
// source: calls in flight finish on the old ones).
func (s *Service) Restart(ctx context.Context, name string) error {
	if _, err := s.plugin(name); err != nil {
		return err
	}
	s.out.forget(name)
	s.mu.Lock()
	delete(s.inbound, name)
	s.mu.Unlock()
	return s.plugins.Reload(ctx, name)
}
