// Package logs keeps the gateway's recent log lines in memory so operators
// can read and follow them over the API. A Handler tees every record that
// passes the configured level into a Ring (and on to the process output);
// the Ring answers queries by level, module, time, session, request and
// plugin, and fans new lines out to streaming subscribers.
//
// Records carry the request id and session id of the context they were
// logged with (WithRequestID, WithSessionID), so a line logged anywhere
// below an HTTP handler or a session turn can be found by them.
package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	sessionIDKey
)

// WithRequestID returns ctx carrying a request id for the log lines logged
// with it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithSessionID returns ctx carrying a session id for the log lines logged
// with it (a session turn, and the plugin calls it makes).
func WithSessionID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, sessionIDKey, id)
}

// SessionID returns the session id in ctx, or "".
func SessionID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(sessionIDKey).(string)
	return id
}

// Attribute names with a meaning to the ring.
const (
	KeyModule    = "module"
	KeyPlugin    = "plugin"
	KeyRequestID = "request_id"
	KeySessionID = "session_id"
)

// Modules are the values of the "module" attribute the gateway's loggers
// carry. A line without one is "plugin" when it names a plugin, else
// "gateway".
var Modules = []string{"gateway", "http", "plugin", "webhook", "config", "session", "channel", "llm", "mcp", "store", "auth"}

// Entry is one log line as the API serves it.
type Entry struct {
	Seq       uint64         `json:"seq"`
	Time      time.Time      `json:"time"`
	Level     string         `json:"level"`
	Module    string         `json:"module"`
	Message   string         `json:"msg"`
	RequestID string         `json:"request_id,omitempty"`
	SessionID string         `json:"session_id,omitempty"`
	Plugin    string         `json:"plugin,omitempty"`
	Attrs     map[string]any `json:"attrs,omitempty"`
}

// item is one stored line: the record as logged (cloned) and the logger's
// preset attributes, turned into an Entry only when someone reads it.
type item struct {
	seq       uint64
	rec       slog.Record
	pre       *preset
	module    string
	requestID string
	sessionID string
	plugin    string
}

func (it *item) entry() Entry {
	e := Entry{Seq: it.seq, Time: it.rec.Time.UTC(), Level: it.rec.Level.String(), Module: it.module, Message: it.rec.Message,
		RequestID: it.requestID, SessionID: it.sessionID, Plugin: it.plugin}
	attrs := map[string]any{}
	if it.pre != nil {
		for _, a := range it.pre.attrs {
			putAttr(attrs, "", a)
		}
	}
	prefix := ""
	if it.pre != nil {
		prefix = it.pre.prefix
	}
	it.rec.Attrs(func(a slog.Attr) bool {
		putAttr(attrs, prefix, a)
		return true
	})
	for _, k := range []string{KeyModule, KeyPlugin, KeyRequestID, KeySessionID} {
		delete(attrs, k)
	}
	if len(attrs) > 0 {
		e.Attrs = attrs
	}
	return e
}

func putAttr(m map[string]any, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return
	}
	switch v.Kind() {
	case slog.KindGroup:
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range v.Group() {
			putAttr(m, p, g)
		}
		return
	case slog.KindDuration:
		m[prefix+a.Key] = v.Duration().String()
	case slog.KindTime:
		m[prefix+a.Key] = v.Time().UTC()
	case slog.KindAny:
		x := v.Any()
		switch t := x.(type) {
		case error:
			m[prefix+a.Key] = t.Error()
		case fmt.Stringer:
			m[prefix+a.Key] = t.String()
		default:
			if b, err := json.Marshal(x); err == nil {
				m[prefix+a.Key] = json.RawMessage(b)
			} else {
				m[prefix+a.Key] = fmt.Sprint(x)
			}
		}
	default:
		m[prefix+a.Key] = v.Any()
	}
}

// Filter selects log lines. The zero Filter selects every line.
type Filter struct {
	MinLevel  slog.Level // with HasLevel: lines at this level or above
	HasLevel  bool
	Modules   []string  // any of these; empty: every module
	Since     time.Time // lines at or after this time; zero: any
	SessionID string
	RequestID string
	Plugin    string
	AfterSeq  uint64 // lines with a larger sequence number only
}

func (f *Filter) match(it *item) bool {
	return (!f.HasLevel || it.rec.Level >= f.MinLevel) &&
		(len(f.Modules) == 0 || slices.Contains(f.Modules, it.module)) &&
		(f.Since.IsZero() || !it.rec.Time.Before(f.Since)) &&
		(f.SessionID == "" || it.sessionID == f.SessionID) &&
		(f.RequestID == "" || it.requestID == f.RequestID) &&
		(f.Plugin == "" || it.plugin == f.Plugin) &&
		it.seq > f.AfterSeq
}

// Ring holds the most recent lines, a fixed number, and the subscribers
// that follow new ones.
type Ring struct {
	mu   sync.Mutex
	buf  []item
	seq  uint64 // of the newest line; lines are numbered from 1
	subs map[*Subscription]struct{}
}

// NewRing returns a ring that keeps size lines (at least 1).
func NewRing(size int) *Ring {
	return &Ring{buf: make([]item, max(size, 1)), subs: map[*Subscription]struct{}{}}
}

// Size is how many lines the ring keeps.
func (r *Ring) Size() int { return len(r.buf) }

func (r *Ring) add(it item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	it.seq = r.seq
	r.buf[(r.seq-1)%uint64(len(r.buf))] = it
	if len(r.subs) == 0 {
		return
	}
	var e *Entry
	for s := range r.subs {
		if !s.f.match(&it) {
			continue
		}
		if e == nil {
			x := it.entry()
			e = &x
		}
		select {
		case s.ch <- *e:
		default:
			s.dropped++
		}
	}
}

// Query returns the newest limit lines that match f, oldest first, and how
// many lines in the ring match in all.
func (r *Ring) Query(f Filter, limit int) ([]Entry, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queryLocked(f, limit)
}

func (r *Ring) queryLocked(f Filter, limit int) ([]Entry, int) {
	var picked []*item
	total := 0
	n := min(r.seq, uint64(len(r.buf)))
	for i := uint64(0); i < n; i++ {
		it := &r.buf[(r.seq-1-i)%uint64(len(r.buf))]
		if !f.match(it) {
			continue
		}
		total++
		if len(picked) < limit {
			picked = append(picked, it)
		}
	}
	out := make([]Entry, len(picked))
	for i, it := range picked {
		out[len(picked)-1-i] = it.entry()
	}
	return out, total
}

// Subscription receives the new lines that match its filter.
type Subscription struct {
	r       *Ring
	f       Filter
	ch      chan Entry
	dropped uint64 // guarded by r.mu
}

// Subscribe follows new lines matching f, with room for buffer lines
// queued; lines that find the queue full are dropped and counted. The
// first lines delivered are the newest backlog matching lines already in
// the ring (at most buffer of them).
func (r *Ring) Subscribe(f Filter, buffer, backlog int) *Subscription {
	s := &Subscription{r: r, f: f, ch: make(chan Entry, max(buffer, 1))}
	r.mu.Lock()
	if backlog > 0 {
		old, _ := r.queryLocked(f, min(backlog, cap(s.ch)))
		for _, e := range old {
			s.ch <- e
		}
	}
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// Entries delivers the lines.
func (s *Subscription) Entries() <-chan Entry { return s.ch }

// TakeDropped returns how many lines were dropped since the last call.
func (s *Subscription) TakeDropped() uint64 {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// Close stops the subscription.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	delete(s.r.subs, s)
}

// Subscribers returns how many subscriptions are open.
func (r *Ring) Subscribers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}
