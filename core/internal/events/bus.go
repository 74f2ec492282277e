// Package events is Portico's in-process event bus: publishers never block,
// subscribers choose event types by pattern and read from a bounded buffer,
// and an event that does not fit a subscriber's buffer is dropped for that
// subscriber alone and counted.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Event types published by the core. Plugins and later subsystems add their
// own, always as dotted lower-case names ("plugin.reloaded").
const (
	ConfigReloaded = "config.reloaded"
	ConfigRejected = "config.rejected"
)

// Event is one thing that happened. Data must be JSON-encodable: streams and
// hooks send it as JSON, encoded once for all of them (DataJSON).
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data any       `json:"data,omitempty"`

	enc *encoding // Data's JSON, shared by every copy of a published event
}

// encoding is an event's Data encoded on first use.
type encoding struct {
	once sync.Once
	b    json.RawMessage
	err  error
}

// DataJSON returns Data as valid JSON. A published event is encoded
// once, on first use, for every subscriber that asks (hooks, webhooks,
// streams).
func (e Event) DataJSON() (json.RawMessage, error) {
	if e.enc == nil {
		return marshalData(e.Data)
	}
	e.enc.once.Do(func() { e.enc.b, e.enc.err = marshalData(e.Data) })
	return e.enc.b, e.enc.err
}

func marshalData(d any) (json.RawMessage, error) {
	if raw, ok := d.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("event data is not valid JSON")
		}
		return raw, nil
	}
	return json.Marshal(d)
}

// WithData returns the event with other data (a view of it for one
// reader), encoded anew.
func (e Event) WithData(d any) Event {
	e.Data, e.enc = d, nil
	return e
}

// MarshalJSON encodes the event as {"type","time","data"}, with the data
// encoded once (DataJSON).
func (e Event) MarshalJSON() ([]byte, error) {
	data, err := e.DataJSON()
	if err != nil {
		return nil, err
	}
	t, err := e.Time.MarshalJSON()
	if err != nil {
		return nil, err
	}
	typ, _ := json.Marshal(e.Type)
	b := make([]byte, 0, len(typ)+len(t)+len(data)+26)
	b = append(append(append(b, `{"type":`...), typ...), `,"time":`...)
	b = append(b, t...)
	if e.Data != nil {
		b = append(append(b, `,"data":`...), data...)
	}
	return append(b, '}'), nil
}

// Bus delivers events to subscribers. The zero value is not usable; call New.
type Bus struct {
	mu        sync.Mutex // guards changes to subs
	subs      atomic.Pointer[[]*Subscription]
	published atomic.Uint64
	dropped   atomic.Uint64
}

// New returns an empty bus.
func New() *Bus {
	b := &Bus{}
	b.subs.Store(&[]*Subscription{})
	return b
}

// Publish sends e to every subscriber whose pattern matches e.Type, without
// ever blocking: a subscriber whose buffer is full misses e, and the miss is
// counted on the subscriber and the bus. A zero Time is set to now.
func (b *Bus) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.published.Add(1)
	for _, s := range *b.subs.Load() {
		if !s.match(e.Type) {
			continue
		}
		if e.enc == nil {
			e.enc = &encoding{} // shared by the copies every subscriber gets
		}
		s.mu.RLock()
		if !s.closed {
			select {
			case s.ch <- e:
			default:
				s.dropped.Add(1)
				b.dropped.Add(1)
			}
		}
		s.mu.RUnlock()
	}
}

// Stats counts what the bus has done since it started.
type Stats struct {
	Published   uint64 `json:"published"`
	Dropped     uint64 `json:"dropped"`
	Subscribers int    `json:"subscribers"`
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{Published: b.published.Load(), Dropped: b.dropped.Load(), Subscribers: len(*b.subs.Load())}
}

// ErrPattern reports a malformed subscription pattern.
var ErrPattern = errors.New("bad event pattern")

// Subscribe returns a subscription to events whose type matches pattern,
// buffering up to buffer of them. A pattern is an event type with dotted
// segments where "*" matches any one segment and a final "*" matches one or
// more: "plugin.*" matches "plugin.reloaded" and "plugin.kv.full"; "*"
// matches everything; "message.sent" matches only itself.
func (b *Bus) Subscribe(pattern string, buffer int) (*Subscription, error) {
	return b.SubscribeAny([]string{pattern}, buffer)
}

// SubscribeAny is Subscribe for several patterns at once: an event that
// matches any of them is delivered once, in publish order.
func (b *Bus) SubscribeAny(patterns []string, buffer int) (*Subscription, error) {
	if len(patterns) == 0 {
		return nil, fmt.Errorf("%w: no pattern", ErrPattern)
	}
	var segs [][]string
	for _, p := range patterns {
		s, err := parsePattern(p)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	if buffer < 1 {
		return nil, fmt.Errorf("subscribe %q: buffer must be at least 1, got %d", patterns, buffer)
	}
	s := &Subscription{bus: b, pattern: strings.Join(patterns, ","), segs: segs, ch: make(chan Event, buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.subs.Load()
	next := make([]*Subscription, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	b.subs.Store(&next)
	return s, nil
}

func parsePattern(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: empty pattern; use \"*\" for every event", ErrPattern)
	}
	segs := strings.Split(p, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("%w: %q has an empty segment", ErrPattern, p)
		}
		if s != "*" && strings.Contains(s, "*") {
			return nil, fmt.Errorf("%w: %q: \"*\" must be a whole segment", ErrPattern, p)
		}
	}
	return segs, nil
}

// Subscription receives matching events until it is closed.
type Subscription struct {
	bus     *Bus
	pattern string
	segs    [][]string // any of these patterns
	ch      chan Event
	dropped atomic.Uint64

	mu     sync.RWMutex // Publish holds it shared while sending; Close exclusively
	closed bool
}

// Events returns the channel events arrive on; it is closed by Close.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Pattern returns the pattern the subscription was made with.
func (s *Subscription) Pattern() string { return s.pattern }

// Dropped counts events this subscriber missed because its buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes the Events channel. It is safe to call
// more than once and concurrently with Publish.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	old := *b.subs.Load()
	next := make([]*Subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			next = append(next, x)
		}
	}
	b.subs.Store(&next)
	b.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// Match reports whether an event type matches a pattern (see Subscribe).
// A malformed pattern matches nothing.
func Match(pattern, typ string) bool {
	segs, err := parsePattern(pattern)
	return err == nil && matchSegs(segs, typ)
}

func (s *Subscription) match(typ string) bool {
	for _, segs := range s.segs {
		if matchSegs(segs, typ) {
			return true
		}
	}
	return false
}

// CheckPattern reports whether p is a well-formed pattern (see Subscribe).
func CheckPattern(p string) error {
	_, err := parsePattern(p)
	return err
}

func matchSegs(segs []string, typ string) bool {
	for i, p := range segs {
		last := i == len(segs)-1
		seg, rest, more := strings.Cut(typ, ".")
		if seg == "" {
			return false
		}
		if p == "*" && last {
			// The final "*" takes all remaining segments, which must not
			// be empty either ("a.*" does not match "a.b..c" or "a.b.").
			for more {
				seg, rest, more = strings.Cut(rest, ".")
				if seg == "" {
					return false
				}
			}
			return true
		}
		if p != "*" && p != seg {
			return false
		}
		if last {
			return !more
		}
		if !more {
			return false
		}
		typ = rest
	}
	return false
}
