// Package session keeps conversations: sessions, their messages, and the
// turn that stores a message, routes it to a skill, stores the reply and
// announces both on the event bus.
//
// Sessions and messages live in the Store. Listing goes through an
// in-memory index of every session (id, owner, channel, user, times,
// status; about 200 bytes each), rebuilt from the Store when the service
// opens, so a page, a filter and an exact total never scan the database.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
)

// Errors callers decide on with errors.Is.
var (
	ErrNotFound   = errors.New("session not found")
	ErrTerminated = errors.New("session is terminated")
	ErrInvalid    = errors.New("invalid input")
	ErrTooLarge   = errors.New("message too large")
	ErrNoRoute    = errors.New("no skill for this message")
)

// Status of a session. Idle is computed: an active session without
// messages for sessions.idle_timeout is listed as idle and becomes active
// again with its next message.
type Status string

// Session statuses.
const (
	Active     Status = "active"
	Idle       Status = "idle"
	Terminated Status = "terminated"
)

// Event types this package publishes.
const (
	EventCreated    = "session.created"
	EventTerminated = "session.terminated"
	EventReceived   = "message.received"
	EventSent       = "message.sent"
)

// Usage counts LLM tokens.
type Usage struct {
	Input  int64 `json:"input"`
	Output int64 `json:"output"`
}

// Session is one conversation on one channel with one end user.
type Session struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	UserID  string `json:"user_id"`
	// Owner is the gateway user that created the session (over the API) or
	// "" for sessions a channel plugin opened; a user sees only its own.
	Owner        string            `json:"owner,omitempty"`
	Status       Status            `json:"status"`
	Metadata     map[string]string `json:"metadata"`
	TurnCount    int64             `json:"turn_count"`
	MessageCount int64             `json:"message_count"`
	TokenUsage   Usage             `json:"token_usage"`
	CreatedAt    time.Time         `json:"created_at"`
	LastActivity time.Time         `json:"last_activity"`
	TerminatedAt *time.Time        `json:"terminated_at,omitempty"`
	// LastMessageAt is when the session's last message was stored.
	LastMessageAt *time.Time `json:"last_message_at,omitempty"`
}

// Message is one message of a session.
type Message struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Seq       int64     `json:"seq"`
	Role      string    `json:"role"` // user or assistant
	Text      string    `json:"text"`
	Skill     string    `json:"skill,omitempty"`   // assistant: the skill that answered
	Trigger   string    `json:"trigger,omitempty"` // assistant: the trigger that chose it
	Usage     *Usage    `json:"usage,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Limits for metadata, so a session record stays small.
const (
	maxMetadataKeys  = 32
	maxMetadataBytes = 4096
	maxIDBytes       = 128
)

// Service keeps the sessions. All methods are safe for concurrent use.
type Service struct {
	kv    store.KV
	bus   *events.Bus
	log   *slog.Logger
	cfg   func() *config.Config
	idx   *index
	now   func() time.Time
	locks keyedLocks // serialize a session's turns, and uses of one idempotency key
	hist  *historyCache

	skills Skills
	hooks  Hooks
}

// Deps are what the service needs.
type Deps struct {
	Store  store.KV // the service uses keys under "sessions/"
	Bus    *events.Bus
	Logger *slog.Logger
	Config func() *config.Config // the live config
	Skills Skills                // routes and runs a turn's skill (required to post messages)
	Hooks  Hooks
}

// Open loads the session index from the store.
func Open(ctx context.Context, d Deps) (*Service, error) {
	s := &Service{kv: store.Prefix(d.Store, "sessions/"), bus: d.Bus, log: d.Logger, cfg: d.Config, idx: newIndex(), now: time.Now, hist: newHistoryCache(),
		skills: d.Skills, hooks: d.Hooks}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	err := s.kv.Scan(ctx, []byte("s/"), store.ScanOptions{}, func(_, v []byte) error {
		var se Session
		if err := json.Unmarshal(v, &se); err != nil {
			return fmt.Errorf("session record: %w", err)
		}
		s.idx.add(entryOf(&se))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading sessions: %w", err)
	}
	s.idx.sort()
	return s, nil
}

// Count returns how many sessions there are.
func (s *Service) Count() int { return s.idx.len() }

// NewID returns a random id with a prefix, such as "ses_4f0c...".
func NewID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	out := make([]byte, 0, len(prefix)+1+2*len(b))
	out = append(append(out, prefix...), '_')
	return string(hex.AppendEncode(out, b[:]))
}

// CreateInput is what a new session is made of.
type CreateInput struct {
	Channel  string            `json:"channel"`
	UserID   string            `json:"user_id"`
	Metadata map[string]string `json:"metadata"`
	Owner    string            `json:"-"`
}

func (in *CreateInput) check() error {
	if in.Channel == "" {
		in.Channel = "api"
	}
	if in.UserID == "" {
		in.UserID = in.Owner
	}
	if err := checkName("channel", in.Channel); err != nil {
		return err
	}
	if len(in.UserID) > maxIDBytes || strings.ContainsAny(in.UserID, "\x00\n") {
		return fmt.Errorf("%w: user_id must be at most %d bytes without NUL or newlines", ErrInvalid, maxIDBytes)
	}
	if len(in.Metadata) > maxMetadataKeys {
		return fmt.Errorf("%w: metadata may have at most %d keys", ErrInvalid, maxMetadataKeys)
	}
	n := 0
	for k, v := range in.Metadata {
		n += len(k) + len(v)
		if k == "" {
			return fmt.Errorf("%w: metadata keys must not be empty", ErrInvalid)
		}
	}
	if n > maxMetadataBytes {
		return fmt.Errorf("%w: metadata may hold at most %d bytes", ErrInvalid, maxMetadataBytes)
	}
	return nil
}

func checkName(what, s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%w: %s must be 1 to 64 characters", ErrInvalid, what)
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("%w: %s %q may hold only letters, digits, _ and -", ErrInvalid, what, s)
		}
	}
	return nil
}

// Create stores a new session and publishes session.created.
func (s *Service) Create(ctx context.Context, in CreateInput) (Session, error) {
	if err := in.check(); err != nil {
		return Session{}, err
	}
	now := s.now().UTC()
	se := Session{ID: NewID("ses"), Channel: in.Channel, UserID: in.UserID, Owner: in.Owner, Status: Active,
		Metadata: in.Metadata, CreatedAt: now, LastActivity: now}
	if se.Metadata == nil {
		se.Metadata = map[string]string{}
	}
	if err := s.put(ctx, &se); err != nil {
		return Session{}, err
	}
	s.idx.add(entryOf(&se))
	s.publish(EventCreated, se.eventData())
	return se, nil
}

func (s *Service) put(ctx context.Context, se *Session) error {
	b, err := json.Marshal(se)
	if err != nil {
		return err
	}
	if err := s.kv.Set(ctx, sessionKey(se.ID), b); err != nil {
		return fmt.Errorf("storing session: %w", err)
	}
	return nil
}

func sessionKey(id string) []byte { return []byte("s/" + id) }

// Get returns a session with its status as of now.
// OwnerOf returns a session's owner from the in-memory index, without
// reading the store; ok is false for an unknown session.
func (s *Service) OwnerOf(id string) (owner string, ok bool) {
	e := s.idx.get(id)
	if e == nil {
		return "", false
	}
	return e.owner, true
}

func (s *Service) Get(ctx context.Context, id string) (Session, error) {
	if s.idx.get(id) == nil {
		return Session{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := s.kv.Get(ctx, sessionKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Session{}, err
	}
	var se Session
	if err := json.Unmarshal(b, &se); err != nil {
		return Session{}, fmt.Errorf("session record %q: %w", id, err)
	}
	se.Status = s.status(se.TerminatedAt != nil, se.LastActivity)
	return se, nil
}

func (s *Service) status(terminated bool, last time.Time) Status {
	switch {
	case terminated:
		return Terminated
	case s.now().Sub(last) >= s.cfg().Sessions.IdleTimeout.D():
		return Idle
	}
	return Active
}

// Terminate ends a session: it takes no more messages. Terminating a
// terminated session is ErrTerminated.
func (s *Service) Terminate(ctx context.Context, id string) (Session, error) {
	unlock := s.lock(id)
	defer unlock()
	se, err := s.Get(ctx, id)
	if err != nil {
		return Session{}, err
	}
	if se.TerminatedAt != nil {
		return se, fmt.Errorf("%w: %q at %s", ErrTerminated, id, se.TerminatedAt.Format(time.RFC3339))
	}
	now := s.now().UTC()
	se.TerminatedAt, se.Status = &now, Terminated
	if err := s.put(ctx, &se); err != nil {
		return Session{}, err
	}
	s.idx.update(entryOf(&se))
	s.hist.forget(id) // it takes no more messages
	s.publish(EventTerminated, se.eventData())
	return se, nil
}

// lock serializes the turns of one session (or whatever else key names),
// so its messages are numbered and answered in order.
func (s *Service) lock(key string) func() { return s.locks.lock(key) }

// keyedLocks is a mutex per key, kept only while someone holds or waits
// for it, so memory stays bounded by the calls in flight.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	n int // holders and waiters
}

func (k *keyedLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.n++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.n--; l.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

func (s *Service) publish(typ string, data any) {
	if s.bus != nil {
		s.bus.Publish(events.Event{Type: typ, Time: s.now().UTC(), Data: data})
	}
}

// SessionEvent is the data of session.* events.
type SessionEvent struct {
	SessionID string `json:"session_id"`
	Channel   string `json:"channel"`
	UserID    string `json:"user_id"`
	Owner     string `json:"owner,omitempty"`
}

func (se *Session) eventData() SessionEvent {
	return SessionEvent{SessionID: se.ID, Channel: se.Channel, UserID: se.UserID, Owner: se.Owner}
}

// List returns a page of sessions, newest first, with the exact number of
// sessions the filter matches.
func (s *Service) List(ctx context.Context, f Filter) ([]Session, int, error) {
	switch f.Status {
	case "", Active, Idle, Terminated:
	default:
		return nil, 0, fmt.Errorf("%w: status must be active, idle or terminated (got %q)", ErrInvalid, f.Status)
	}
	ids, total := s.idx.page(f, s.now(), s.cfg().Sessions.IdleTimeout.D())
	out := make([]Session, 0, len(ids))
	for _, id := range ids {
		se, err := s.Get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, se)
	}
	return out, total, nil
}

// ChannelStats returns, per channel, its active sessions and last message.
func (s *Service) ChannelStats() map[string]ChannelStats {
	return s.idx.channelStats(s.now(), s.cfg().Sessions.IdleTimeout.D())
}

// Sweep deletes idempotency records older than sessions.idempotency_ttl.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	ttl := s.cfg().Sessions.IdempotencyTTL.D()
	var stale [][]byte
	err := s.kv.Scan(ctx, []byte("k/"), store.ScanOptions{}, func(k, v []byte) error {
		var rec idemRecord
		if json.Unmarshal(v, &rec) != nil || s.now().Sub(rec.At) > ttl {
			stale = append(stale, append([]byte{}, k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range stale {
		if err := s.kv.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// Resume returns the newest session of a channel's end user that is not
// terminated, or creates one: a channel plugin's messages continue the
// user's conversation.
func (s *Service) Resume(ctx context.Context, in CreateInput) (Session, error) {
	if err := in.check(); err != nil {
		return Session{}, err
	}
	unlock := s.lock("resume\x00" + in.Channel + "\x00" + in.UserID)
	defer unlock()
	if id := s.idx.latest(in.Channel, in.UserID); id != "" {
		se, err := s.Get(ctx, id)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return se, err
		}
	}
	return s.Create(ctx, in)
}
