package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/porticohq/portico/core/internal/logs"
	"github.com/porticohq/portico/core/internal/plugin"
)

// Skills is what a turn needs of the plugin manager.
type Skills interface {
	Route(text string) (plugin.Route, bool)
	Stream(ctx context.Context, skill string, input []byte, sink func(chunk []byte) error) (string, error)
}

// Hooks connect a turn to the rest of the gateway. All are optional.
type Hooks struct {
	// Observe returns a context under which LLM usage of the skill call is
	// reported to onUsage (the gateway wires it to the LLM service).
	Observe func(ctx context.Context, onUsage func(Usage), onDelta func(string)) context.Context
	// Outbound sends a reply back on the session's channel when that
	// channel is not the caller itself (plugin channels).
	Outbound func(ctx context.Context, se Session, reply Message)
}

// PostInput is one incoming message.
type PostInput struct {
	SessionID string
	Text      string
	// Owner namespaces IdempotencyKey (the caller's user), and the
	// session must be Owner's unless AnyOwner is set (operators,
	// channels): another's session is not found.
	Owner          string
	AnyOwner       bool
	IdempotencyKey string
	// OnChunk, when set, receives the reply as the skill writes it (and
	// LLM deltas a skill asked to stream).
	OnChunk func(text string)
	// Internal marks a message from a channel plugin: the reply also goes
	// out through Hooks.Outbound.
	FromChannel bool
}

// Turn is the result of a message: the stored message and its reply.
type Turn struct {
	SessionID string  `json:"session_id"`
	Message   Message `json:"message"`
	Reply     Message `json:"reply"`
	// Replayed is set when an Idempotency-Key matched an earlier post.
	Replayed bool `json:"replayed,omitempty"`
}

// SkillInput is what the routed skill receives for a message.
type SkillInput struct {
	Text      string            `json:"text"`
	Command   string            `json:"command,omitempty"`
	SessionID string            `json:"session_id"`
	MessageID string            `json:"message_id"`
	Channel   string            `json:"channel"`
	UserID    string            `json:"user_id"`
	Metadata  map[string]string `json:"metadata"`
	History   []HistoryItem     `json:"history"`
}

// HistoryItem is an earlier message handed to the skill.
type HistoryItem struct {
	Role string `json:"role"`
	Text string `json:"text"`

	enc []byte // its JSON, once encoded (skillinput.go)
}

// MessageEvent is the data of message.* events.
type MessageEvent struct {
	SessionID string `json:"session_id"`
	MessageID string `json:"message_id"`
	Channel   string `json:"channel"`
	UserID    string `json:"user_id"`
	Owner     string `json:"owner,omitempty"`
	Role      string `json:"role"`
	Skill     string `json:"skill,omitempty"`
	Text      string `json:"text"`
}

// CheckText validates a message text against the configured limits.
func (s *Service) CheckText(text string) error {
	if max := s.cfg().Sessions.MaxMessageBytes; int64(len(text)) > max {
		return fmt.Errorf("%w: the message is %d bytes; the limit is %d (sessions.max_message_bytes)", ErrTooLarge, len(text), max)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%w: text must not be empty", ErrInvalid)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: text must be UTF-8", ErrInvalid)
	}
	return nil
}

type idemRecord struct {
	At   time.Time `json:"at"`
	Turn Turn      `json:"turn"`
}

// idemKey names an owner's Idempotency-Key in the records.
func idemKey(owner, key string) string {
	h := sha256.Sum256([]byte(owner + "\x00" + key))
	return hex.EncodeToString(h[:16])
}

// Replay returns the turn an earlier post with the same owner and
// Idempotency-Key produced, if it is still remembered.
func (s *Service) Replay(ctx context.Context, owner, key string) (Turn, bool, error) {
	if key == "" {
		return Turn{}, false, nil
	}
	rec, ok, err := s.rec.idempotent(ctx, idemKey(owner, key))
	if err != nil || !ok {
		return Turn{}, false, err
	}
	if s.now().Sub(rec.At) > s.cfg().Sessions.IdempotencyTTL.D() {
		return Turn{}, false, nil
	}
	rec.Turn.Replayed = true
	return rec.Turn, true, nil
}

// Post stores a message, routes it to a skill, stores the reply and
// publishes message.received and message.sent. A retried post with the same
// Idempotency-Key returns the first turn instead of a second one.
func (s *Service) Post(ctx context.Context, in PostInput) (Turn, error) {
	if len(in.IdempotencyKey) > 255 {
		return Turn{}, fmt.Errorf("%w: Idempotency-Key must be at most 255 bytes", ErrInvalid)
	}
	if err := s.CheckText(in.Text); err != nil {
		return Turn{}, err
	}
	if in.IdempotencyKey != "" {
		var unlockKey func()
		var err error
		if ctx, unlockKey, err = s.rec.lock(ctx, "idem\x00"+idemKey(in.Owner, in.IdempotencyKey)); err != nil {
			return Turn{}, err
		}
		defer unlockKey()
		if t, ok, err := s.Replay(ctx, in.Owner, in.IdempotencyKey); err != nil || ok {
			return t, err
		}
	}
	turn, se, err := s.take(ctx, in)
	if err != nil {
		return Turn{}, err
	}
	if in.IdempotencyKey != "" {
		if err := s.rec.remember(ctx, idemKey(in.Owner, in.IdempotencyKey), idemRecord{At: turn.Message.CreatedAt, Turn: turn}); err != nil {
			s.log.Error("idempotency record not stored", "session_id", se.ID, "error", err)
		}
	}
	// The reply goes out on its channel once the session's lock is let
	// go: a slow platform holds up no other message of the session.
	if in.FromChannel && s.hooks.Outbound != nil {
		s.hooks.Outbound(logs.WithSessionID(unheld(ctx), se.ID), se, turn.Reply)
	}
	return turn, nil
}

// skillCall is a turn's call of its skill: the output as it comes, the
// LLM usage that the calls it makes report (from any goroutine), and
// whether LLM deltas already reached the caller (the skill's own output
// then repeats them: it is stored, not sent again).
type skillCall struct {
	onChunk  func(text string)
	out      bytes.Buffer
	streamed atomic.Bool
	mu       sync.Mutex
	usage    Usage
}

func (c *skillCall) sink(chunk []byte) error {
	c.out.Write(chunk)
	if c.onChunk != nil && !c.streamed.Load() {
		c.onChunk(string(chunk))
	}
	return nil
}

func (c *skillCall) delta(text string) {
	c.streamed.Store(true)
	c.onChunk(text)
}

func (c *skillCall) addUsage(u Usage) {
	c.mu.Lock()
	c.usage.Input += u.Input
	c.usage.Output += u.Output
	c.mu.Unlock()
}

// take is a turn under its session's lock: read the session, route the
// text, read the history, store the message, call the skill, store the
// reply, publish both.
func (s *Service) take(ctx context.Context, in PostInput) (Turn, Session, error) {
	ctx, se, unlock, err := s.rec.lockSession(ctx, in.SessionID)
	if err != nil {
		return Turn{}, Session{}, err
	}
	defer unlock()
	if !in.AnyOwner && se.Owner != in.Owner {
		return Turn{}, Session{}, fmt.Errorf("%w: %q", ErrNotFound, in.SessionID)
	}
	if se.TerminatedAt != nil {
		return Turn{}, Session{}, fmt.Errorf("%w: %q takes no more messages; start a new one", ErrTerminated, se.ID)
	}
	// Every line logged below, the skill's own included, names the session.
	ctx = logs.WithSessionID(ctx, se.ID)
	route, ok := s.skills.Route(in.Text)
	if !ok {
		def := s.cfg().Sessions.DefaultSkill
		if def == "" {
			return Turn{}, Session{}, fmt.Errorf("%w: no skill trigger matches and sessions.default_skill is empty", ErrNoRoute)
		}
		route = plugin.Route{Skill: def, Text: in.Text}
	}
	n := int(s.cfg().Sessions.HistoryMessages)
	history, cached := s.hist.get(se.ID, se.MessageCount, n)
	if !cached {
		if history, err = s.rec.history(ctx, &se, n); err != nil {
			return Turn{}, Session{}, err
		}
	}

	now := s.now().UTC()
	msg := Message{ID: NewID("msg"), SessionID: se.ID, Seq: se.MessageCount + 1, Role: "user", Text: in.Text, CreatedAt: now}
	se.MessageCount, se.LastActivity, se.LastMessageAt = msg.Seq, now, &now
	if err := s.rec.append(ctx, &msg, &se); err != nil {
		return Turn{}, Session{}, err
	}
	s.publish(EventReceived, msg.event(&se))

	input := encodeSkillInput(&SkillInput{Text: route.Text, Command: route.Command, SessionID: se.ID, MessageID: msg.ID,
		Channel: se.Channel, UserID: se.UserID, Metadata: se.Metadata, History: history})
	call := &skillCall{onChunk: in.OnChunk}
	callCtx := unheld(ctx)
	if s.hooks.Observe != nil {
		var onDelta func(string)
		if in.OnChunk != nil {
			onDelta = call.delta
		}
		callCtx = s.hooks.Observe(ctx, call.addUsage, onDelta)
	}
	_, err = s.skills.Stream(callCtx, route.Skill, input, call.sink)
	call.mu.Lock()
	defer call.mu.Unlock()
	usage := call.usage
	if err != nil {
		s.log.WarnContext(ctx, "turn failed", "skill", route.Skill, "error", err)
		return Turn{}, Session{}, fmt.Errorf("skill %s: %w", route.Skill, err)
	}

	done := s.now().UTC()
	reply := Message{ID: NewID("msg"), SessionID: se.ID, Seq: msg.Seq + 1, Role: "assistant", Text: replyText(call.out.Bytes()),
		Skill: route.Skill, Trigger: route.Trigger, CreatedAt: done}
	if usage != (Usage{}) {
		reply.Usage = &usage
	}
	se.MessageCount, se.TurnCount, se.LastActivity, se.LastMessageAt = reply.Seq, se.TurnCount+1, done, &done
	se.TokenUsage.Input += usage.Input
	se.TokenUsage.Output += usage.Output
	if err := s.rec.append(ctx, &reply, &se); err != nil {
		return Turn{}, Session{}, err
	}
	// The next turn's history: this one's, its message and its reply (a
	// new slice: the cached one is shared).
	next := append(history[:len(history):len(history)], HistoryItem{Role: msg.Role, Text: msg.Text}, HistoryItem{Role: reply.Role, Text: reply.Text})
	s.hist.put(se.ID, reply.Seq, next[max(0, len(next)-n):], s.cfg().Sessions.HistoryCache)
	s.publish(EventSent, reply.event(&se))
	s.log.LogAttrs(ctx, slog.LevelInfo, "turn", slog.String("skill", route.Skill), slog.String("message_id", msg.ID), slog.Duration("duration", done.Sub(now)))

	return Turn{SessionID: se.ID, Message: msg, Reply: reply}, se, nil
}

func (m *Message) event(se *Session) MessageEvent {
	return MessageEvent{SessionID: se.ID, MessageID: m.ID, Channel: se.Channel, UserID: se.UserID, Owner: se.Owner,
		Role: m.Role, Skill: m.Skill, Text: m.Text}
}

// Messages returns a page of the session's messages, oldest first, and
// their total.
func (s *Service) Messages(ctx context.Context, id string, limit, offset int) ([]Message, int64, error) {
	se, err := s.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	out, err := s.rec.messages(ctx, id, limit, offset)
	return out, se.MessageCount, err
}
