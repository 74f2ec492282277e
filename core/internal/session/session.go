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
	rec  records
	bus  *events.Bus
	log  *slog.Logger
	cfg  func() *config.Config
	now  func() time.Time
	hist *historyCache

	skills Skills
	hooks  Hooks
}

// Deps are what the service needs.
type Deps struct {
	Store store.KV // the service uses keys under "sessions/"
	// Postgres, when set, keeps sessions in its tables instead (Store is
	// then unused): several nodes share them.
	Postgres *store.Postgres
	Bus      *events.Bus
	Logger   *slog.Logger
	Config   func() *config.Config // the live config
	Skills   Skills                // routes and runs a turn's skill (required to post messages)
	Hooks    Hooks
}

// Open opens the session records: on PostgreSQL when Deps.Postgres is
// set, else in the key-value store with its in-memory index.
func Open(ctx context.Context, d Deps) (*Service, error) {
	s := &Service{bus: d.Bus, log: d.Logger, cfg: d.Config, now: time.Now, hist: newHistoryCache(), skills: d.Skills, hooks: d.Hooks}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.Postgres != nil {
		s.rec = &pgRecords{db: d.Postgres}
	} else if s.rec, err = openKV(ctx, d.Store); err != nil {
		return nil, err
	}
	return s, nil
}

// Count returns how many sessions there are.
func (s *Service) Count(ctx context.Context) (int, error) { return s.rec.count(ctx) }

// idleBefore is the time before which an active session's last activity
// makes it idle.
func (s *Service) idleBefore() time.Time { return s.now().Add(-s.cfg().Sessions.IdleTimeout.D()) }

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
	if err := s.rec.create(ctx, &se); err != nil {
		return Session{}, err
	}
	s.publish(EventCreated, se.eventData())
	return se, nil
}

// Get returns a session with its status as of now.
func (s *Service) Get(ctx context.Context, id string) (Session, error) {
	se, err := s.rec.get(ctx, id)
	if err != nil {
		return Session{}, err
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
	ctx, se, unlock, err := s.rec.lockSession(ctx, id)
	if err != nil {
		return Session{}, err
	}
	defer unlock()
	if se.TerminatedAt != nil {
		return se, fmt.Errorf("%w: %q at %s", ErrTerminated, id, se.TerminatedAt.Format(time.RFC3339))
	}
	now := s.now().UTC()
	se.TerminatedAt, se.Status = &now, Terminated
	if err := s.rec.save(ctx, &se); err != nil {
		return Session{}, err
	}
	s.hist.forget(id) // it takes no more messages
	s.publish(EventTerminated, se.eventData())
	return se, nil
}

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
	out, total, err := s.rec.list(ctx, f, s.idleBefore())
	if err != nil {
		return nil, 0, err
	}
	for i := range out {
		out[i].Status = s.status(out[i].TerminatedAt != nil, out[i].LastActivity)
	}
	return out, total, nil
}

// ChannelStats returns, per channel, its active sessions and last message.
func (s *Service) ChannelStats(ctx context.Context) (map[string]ChannelStats, error) {
	return s.rec.channelStats(ctx, s.idleBefore())
}

// Sweep deletes idempotency records older than sessions.idempotency_ttl.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return s.rec.forgetBefore(ctx, s.now().Add(-s.cfg().Sessions.IdempotencyTTL.D()))
}

// Resume returns the newest session of a channel's end user that is not
// terminated, or creates one: a channel plugin's messages continue the
// user's conversation.
func (s *Service) Resume(ctx context.Context, in CreateInput) (Session, error) {
	if err := in.check(); err != nil {
		return Session{}, err
	}
	ctx, unlock, err := s.rec.lock(ctx, "resume\x00"+in.Channel+"\x00"+in.UserID)
	if err != nil {
		return Session{}, err
	}
	defer unlock()
	id, err := s.rec.latest(ctx, in.Channel, in.UserID)
	if err != nil {
		return Session{}, err
	}
	if id != "" {
		se, err := s.Get(ctx, id)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return se, err
		}
	}
	return s.Create(ctx, in)
}
