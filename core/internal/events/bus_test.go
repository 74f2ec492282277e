package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/events"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pattern, typ string
		want               bool
	}{
		// Exact patterns.
		{"exact match", "config.reloaded", "config.reloaded", true},
		{"exact single segment", "plugin", "plugin", true},
		{"exact different last segment", "config.reloaded", "config.rejected", false},
		{"exact is not a prefix match", "config", "config.reloaded", false},
		{"exact does not match a shorter type", "config.reloaded", "config", false},
		{"exact does not match a longer type", "config.reloaded", "config.reloaded.now", false},
		{"exact is case sensitive", "config.reloaded", "Config.Reloaded", false},

		// A lone "*" matches every well-formed type.
		{"star matches one segment", "*", "plugin", true},
		{"star matches two segments", "*", "plugin.reloaded", true},
		{"star matches three segments", "*", "plugin.kv.full", true},

		// A final "*" needs at least one segment after the prefix.
		{"final star needs a segment", "a.*", "a", false},
		{"final star one segment", "a.*", "a.b", true},
		{"final star two segments", "a.*", "a.b.c", true},
		{"final star many segments", "a.*", "a.b.c.d.e", true},
		{"final star mismatched prefix", "a.*", "b.c", false},
		{"final star prefix is whole segment", "a.*", "ab.c", false},
		{"final star longer prefix", "plugin.kv.*", "plugin.kv.full", true},
		{"final star longer prefix too short", "plugin.kv.*", "plugin.kv", false},
		{"final star longer prefix mismatch", "plugin.kv.*", "plugin.fs.full", false},

		// A "*" elsewhere matches exactly one segment.
		{"middle star", "plugin.*.failed", "plugin.x.failed", true},
		{"middle star not two segments", "plugin.*.failed", "plugin.x.y.failed", false},
		{"middle star not zero segments", "plugin.*.failed", "plugin.failed", false},
		{"middle star wrong suffix", "plugin.*.failed", "plugin.x.started", false},
		{"middle star wrong prefix", "plugin.*.failed", "config.x.failed", false},
		{"middle star extra trailing segment", "plugin.*.failed", "plugin.x.failed.again", false},
		{"leading star", "*.failed", "plugin.failed", true},
		{"leading star wrong suffix", "*.failed", "plugin.ok", false},
		{"leading star too long", "*.failed", "plugin.x.failed", false},
		{"star star is at least two segments", "*.*", "a", false},
		{"star star two segments", "*.*", "a.b", true},
		{"star star three segments", "*.*", "a.b.c", true},

		// Types with empty segments never match, whatever the pattern.
		{"empty type vs star", "*", "", false},
		{"empty type vs exact", "a", "", false},
		{"leading dot vs star", "*", ".a", false},
		{"leading dot vs exact", "a", ".a", false},
		{"trailing dot vs star", "*", "a.", false},
		{"trailing dot vs final star", "a.*", "a.", false},
		{"trailing dot after segment vs final star", "a.*", "a.b.", false},
		{"double dot vs star", "*", "a..b", false},
		{"double dot vs final star", "a.*", "a..b", false},
		{"double dot late vs final star", "a.*", "a.b..c", false},
		{"double dot vs middle star", "a.*.b", "a..b", false},
		{"double dot vs star star star", "*.*.*", "a..b", false},
		{"lone dot vs star", "*", ".", false},

		// Malformed patterns match nothing, not even themselves.
		{"empty pattern", "", "", false},
		{"empty pattern vs type", "", "a", false},
		{"empty segment pattern", "a..b", "a..b", false},
		{"empty segment pattern vs type", "a..b", "a.x.b", false},
		{"leading dot pattern", ".a", "x.a", false},
		{"trailing dot pattern", "a.", "a.b", false},
		{"partial wildcard", "plug*", "plugin", false},
		{"partial wildcard self", "plug*", "plug*", false},
		{"partial wildcard in final segment", "plugin.re*", "plugin.reloaded", false},
		{"double star segment", "**", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := events.Match(tt.pattern, tt.typ); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
			}
		})
	}
}

// TestMatchAgreesWithSubscription checks that a subscription delivers exactly
// the events Match says its pattern matches.
func TestMatchAgreesWithSubscription(t *testing.T) {
	t.Parallel()
	patterns := []string{"*", "a", "a.*", "a.b", "a.*.c", "*.c", "*.*"}
	types := []string{"a", "b", "a.b", "a.c", "b.c", "a.b.c", "a.x.c", "a.b.c.d", "", ".a", "a.", "a..c", "a.b..c"}
	for _, p := range patterns {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			bus := events.New()
			sub, err := bus.Subscribe(p, len(types))
			if err != nil {
				t.Fatalf("Subscribe(%q): %v", p, err)
			}
			var want []string
			for _, typ := range types {
				bus.Publish(events.Event{Type: typ})
				if events.Match(p, typ) {
					want = append(want, typ)
				}
			}
			got := typesOf(drain(t, sub))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("pattern %q delivered %q, Match says %q", p, got, want)
			}
		})
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	patternTests := []struct {
		name, pattern string
	}{
		{"empty", ""},
		{"only a dot", "."},
		{"empty middle segment", "a..b"},
		{"leading dot", ".a"},
		{"trailing dot", "a."},
		{"trailing dot after star", "a.*."},
		{"partial wildcard suffix", "plug*"},
		{"partial wildcard prefix", "*in"},
		{"partial wildcard in last segment", "plugin.re*"},
		{"partial wildcard in middle segment", "plugin.x*.failed"},
		{"double star", "**"},
	}
	for _, tt := range patternTests {
		t.Run("pattern/"+tt.name, func(t *testing.T) {
			t.Parallel()
			bus := events.New()
			sub, err := bus.Subscribe(tt.pattern, 1)
			if !errors.Is(err, events.ErrPattern) {
				t.Errorf("Subscribe(%q, 1) error = %v, want errors.Is ErrPattern", tt.pattern, err)
			}
			if sub != nil {
				t.Errorf("Subscribe(%q, 1) returned a subscription with an error", tt.pattern)
			}
			if n := bus.Stats().Subscribers; n != 0 {
				t.Errorf("Stats().Subscribers = %d after a failed Subscribe, want 0", n)
			}
		})
	}

	bufferTests := []struct {
		name   string
		buffer int
	}{
		{"zero", 0},
		{"negative", -1},
	}
	for _, tt := range bufferTests {
		t.Run("buffer/"+tt.name, func(t *testing.T) {
			t.Parallel()
			bus := events.New()
			sub, err := bus.Subscribe("*", tt.buffer)
			if err == nil {
				t.Fatalf("Subscribe(\"*\", %d) succeeded, want an error", tt.buffer)
			}
			if errors.Is(err, events.ErrPattern) {
				t.Errorf("Subscribe(\"*\", %d) error %v is ErrPattern, but the pattern is fine", tt.buffer, err)
			}
			if sub != nil {
				t.Errorf("Subscribe(\"*\", %d) returned a subscription with an error", tt.buffer)
			}
			if n := bus.Stats().Subscribers; n != 0 {
				t.Errorf("Stats().Subscribers = %d after a failed Subscribe, want 0", n)
			}
		})
	}

	t.Run("buffer one is fine", func(t *testing.T) {
		t.Parallel()
		bus := events.New()
		sub, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatalf("Subscribe(\"*\", 1): %v", err)
		}
		defer sub.Close()
		if got := sub.Pattern(); got != "*" {
			t.Errorf("Pattern() = %q, want %q", got, "*")
		}
		if got := cap(sub.Events()); got != 1 {
			t.Errorf("cap(Events()) = %d, want 1", got)
		}
	})
}

// drain closes sub and returns every event left in its channel. Once Close
// has returned the channel must be closed, so no read here may block: one
// that would is reported instead of hanging the test.
func drain(t testing.TB, sub *events.Subscription) []events.Event {
	t.Helper()
	sub.Close()
	var out []events.Event
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				return out
			}
			out = append(out, e)
		default:
			t.Fatalf("%q: Events channel still open after Close", sub.Pattern())
			return out
		}
	}
}

func typesOf(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func TestPatternSubscription(t *testing.T) {
	t.Parallel()
	bus := events.New()
	subscribe := func(pattern string) *events.Subscription {
		t.Helper()
		s, err := bus.Subscribe(pattern, 64)
		if err != nil {
			t.Fatalf("Subscribe(%q): %v", pattern, err)
		}
		return s
	}
	plugin := subscribe("plugin.*")
	config := subscribe(events.ConfigReloaded)
	all := subscribe("*")
	if n := bus.Stats().Subscribers; n != 3 {
		t.Fatalf("Stats().Subscribers = %d, want 3", n)
	}

	fixed := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	type payload struct{ N int }
	ptr := &payload{N: 7}
	published := []events.Event{
		{Type: "plugin.reloaded", Data: map[string]any{"name": "kv"}},
		{Type: events.ConfigReloaded, Time: fixed, Data: "first"},
		{Type: "message.sent", Data: 42},
		{Type: "plugin.kv.full", Time: fixed, Data: ptr},
		{Type: events.ConfigRejected},
		{Type: "plugin"}, // "plugin.*" needs a segment after "plugin"
		{Type: events.ConfigReloaded, Data: "second"},
		{Type: "plugin.x.failed", Data: []int{1, 2, 3}},
		{Type: "config.reloaded.extra"},
	}
	before := time.Now()
	for _, e := range published {
		bus.Publish(e)
	}
	after := time.Now()

	// Publish takes its event by value: the caller's copy keeps a zero Time.
	if !published[0].Time.IsZero() {
		t.Errorf("Publish changed the caller's Event.Time to %v", published[0].Time)
	}

	tests := []struct {
		name string
		sub  *events.Subscription
		want []int // indexes into published, in publish order
	}{
		{"plugin.*", plugin, []int{0, 3, 7}},
		{"config.reloaded", config, []int{1, 6}},
		{"*", all, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := drain(t, tt.sub)
			wantTypes := make([]string, len(tt.want))
			for i, idx := range tt.want {
				wantTypes[i] = published[idx].Type
			}
			if !reflect.DeepEqual(typesOf(got), wantTypes) {
				t.Fatalf("received %q, want %q", typesOf(got), wantTypes)
			}
			for i, idx := range tt.want {
				sent, recv := published[idx], got[i]
				if !reflect.DeepEqual(recv.Data, sent.Data) {
					t.Errorf("event %d (%s): Data = %#v, want %#v", i, recv.Type, recv.Data, sent.Data)
				}
				if sent.Time.IsZero() {
					if recv.Time.IsZero() {
						t.Errorf("event %d (%s): zero Time was not filled in", i, recv.Type)
					} else if recv.Time.Before(before) || recv.Time.After(after) {
						t.Errorf("event %d (%s): filled-in Time %v is outside the publish window [%v, %v]",
							i, recv.Type, recv.Time, before, after)
					}
				} else if !recv.Time.Equal(sent.Time) {
					t.Errorf("event %d (%s): Time = %v, want the publisher's %v", i, recv.Type, recv.Time, sent.Time)
				}
			}
			if d := tt.sub.Dropped(); d != 0 {
				t.Errorf("Dropped() = %d, want 0", d)
			}
		})
	}

	// The pointer payload arrives as the same pointer, not a copy.
	t.Run("pointer data is not copied", func(t *testing.T) {
		bus := events.New()
		sub, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		bus.Publish(events.Event{Type: "x", Data: ptr})
		got := drain(t, sub)
		if len(got) != 1 {
			t.Fatalf("received %d events, want 1", len(got))
		}
		if p, ok := got[0].Data.(*payload); !ok || p != ptr {
			t.Errorf("Data = %#v, want the published pointer %p", got[0].Data, ptr)
		}
	})

	st := bus.Stats()
	if st.Published != uint64(len(published)) {
		t.Errorf("Stats().Published = %d, want %d", st.Published, len(published))
	}
	if st.Dropped != 0 {
		t.Errorf("Stats().Dropped = %d, want 0", st.Dropped)
	}
}

func TestSlowSubscriberDrops(t *testing.T) {
	t.Parallel()
	const total, slowBuf = 50, 2
	bus := events.New()
	slow, err := bus.Subscribe("tick", slowBuf)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := bus.Subscribe("tick", 100)
	if err != nil {
		t.Fatal(err)
	}
	// A subscriber that matches nothing must not be charged drops either.
	other, err := bus.Subscribe("tock", 1)
	if err != nil {
		t.Fatal(err)
	}

	// The slow subscriber never reads: if Publish blocked on its full buffer
	// this loop would hang and the test would time out.
	for i := range total {
		bus.Publish(events.Event{Type: "tick", Data: i})
	}

	t.Run("fast subscriber gets every event in order", func(t *testing.T) {
		if n := len(fast.Events()); n != total {
			t.Fatalf("fast subscriber has %d buffered events, want %d", n, total)
		}
		for i := range total {
			e := <-fast.Events() // buffered: never blocks
			if e.Data != i {
				t.Fatalf("fast event %d has Data %v, want %d", i, e.Data, i)
			}
		}
		if d := fast.Dropped(); d != 0 {
			t.Errorf("fast.Dropped() = %d, want 0", d)
		}
	})

	t.Run("slow subscriber keeps the first events and counts the rest", func(t *testing.T) {
		if n := len(slow.Events()); n != slowBuf {
			t.Fatalf("slow subscriber has %d buffered events, want %d", n, slowBuf)
		}
		for i := range slowBuf {
			if e := <-slow.Events(); e.Data != i {
				t.Errorf("slow event %d has Data %v, want %d", i, e.Data, i)
			}
		}
		if d := slow.Dropped(); d != total-slowBuf {
			t.Errorf("slow.Dropped() = %d, want %d", d, total-slowBuf)
		}
	})

	t.Run("non-matching subscriber untouched", func(t *testing.T) {
		if n := len(other.Events()); n != 0 {
			t.Errorf("non-matching subscriber has %d events, want 0", n)
		}
		if d := other.Dropped(); d != 0 {
			t.Errorf("other.Dropped() = %d, want 0", d)
		}
	})

	t.Run("bus stats", func(t *testing.T) {
		want := events.Stats{Published: total, Dropped: total - slowBuf, Subscribers: 3}
		if got := bus.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})

	t.Run("slow subscriber receives again once it has room", func(t *testing.T) {
		// Both buffered events were read above, so there is room again.
		bus.Publish(events.Event{Type: "tick", Data: "again"})
		if e := <-slow.Events(); e.Data != "again" {
			t.Errorf("slow subscriber got Data %v, want %q", e.Data, "again")
		}
		if d := slow.Dropped(); d != total-slowBuf {
			t.Errorf("slow.Dropped() = %d after a delivered event, want %d", d, total-slowBuf)
		}
	})
}

func TestClose(t *testing.T) {
	t.Parallel()

	t.Run("drains then closes", func(t *testing.T) {
		t.Parallel()
		bus := events.New()
		sub, err := bus.Subscribe("*", 4)
		if err != nil {
			t.Fatal(err)
		}
		bus.Publish(events.Event{Type: "a"})
		bus.Publish(events.Event{Type: "b"})
		sub.Close()
		// A closed channel never blocks, so the non-blocking reads below
		// distinguish "closed" from "still open and empty".
		for _, want := range []string{"a", "b"} {
			select {
			case e, ok := <-sub.Events():
				if !ok {
					t.Fatalf("channel closed before buffered event %q was read", want)
				}
				if e.Type != want {
					t.Fatalf("got %q, want %q", e.Type, want)
				}
			default:
				t.Fatalf("buffered event %q missing after Close", want)
			}
		}
		select {
		case e, ok := <-sub.Events():
			if ok {
				t.Fatalf("got unexpected event %q after the buffered ones", e.Type)
			}
		default:
			t.Fatal("Events channel is still open after Close")
		}
	})

	t.Run("subscriber count decreases", func(t *testing.T) {
		t.Parallel()
		bus := events.New()
		var subs []*events.Subscription
		for _, p := range []string{"a", "b", "c"} {
			s, err := bus.Subscribe(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
		for i, s := range subs {
			s.Close()
			if got, want := bus.Stats().Subscribers, len(subs)-i-1; got != want {
				t.Errorf("after closing %d: Stats().Subscribers = %d, want %d", i+1, got, want)
			}
		}
	})

	t.Run("close twice", func(t *testing.T) {
		t.Parallel()
		bus := events.New()
		keep, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer keep.Close()
		sub, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
		sub.Close() // must not panic on a second close of the channel
		if n := bus.Stats().Subscribers; n != 1 {
			t.Errorf("Stats().Subscribers = %d after closing one of two twice, want 1", n)
		}
		bus.Publish(events.Event{Type: "x"})
		if n := len(keep.Events()); n != 1 {
			t.Errorf("remaining subscriber has %d events, want 1", n)
		}
	})

	t.Run("publish after close", func(t *testing.T) {
		t.Parallel()
		bus := events.New()
		keep, err := bus.Subscribe("*", 10)
		if err != nil {
			t.Fatal(err)
		}
		defer keep.Close()
		sub, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		bus.Publish(events.Event{Type: "fill"}) // sub's buffer is now full
		sub.Close()
		for range 5 {
			bus.Publish(events.Event{Type: "late"}) // must not panic (send on closed channel)
		}
		if d := sub.Dropped(); d != 0 {
			t.Errorf("closed sub.Dropped() = %d, want 0", d)
		}
		want := events.Stats{Published: 6, Dropped: 0, Subscribers: 1}
		if got := bus.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
		if got := typesOf(drain(t, sub)); !reflect.DeepEqual(got, []string{"fill"}) {
			t.Errorf("closed subscriber received %q, want only the event before Close", got)
		}
		if n := len(keep.Events()); n != 6 {
			t.Errorf("open subscriber has %d events, want 6", n)
		}
	})

	t.Run("closing one leaves the others open", func(t *testing.T) {
		t.Parallel()
		bus := events.New()
		a, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		a.Close()
		select {
		case _, ok := <-b.Events():
			if !ok {
				t.Fatal("closing a also closed b's channel")
			}
			t.Fatal("b received an event nobody published")
		default:
		}
		bus.Publish(events.Event{Type: "x"})
		if e := <-b.Events(); e.Type != "x" {
			t.Errorf("b got %q, want %q", e.Type, "x")
		}
	})
}

func TestConcurrentPublishSubscribeClose(t *testing.T) {
	t.Parallel()
	const (
		publishers   = 4
		perPublisher = 2000
		churners     = 4
		churnRounds  = 200
	)
	evTypes := []string{"plugin.reloaded", "plugin.kv.full", "config.reloaded", "message.sent"}
	patterns := []string{"*", "plugin.*", "config.reloaded", "*.sent", "nothing.here"}

	bus := events.New()

	// Long-lived subscribers exist for the whole run and read concurrently;
	// each must account for every matching event as received or dropped.
	type longSub struct {
		sub      *events.Subscription
		received atomic.Uint64
		wrong    atomic.Value // first event type that did not match, if any
		open     atomic.Bool  // Events was still open after Close
	}
	var longs []*longSub
	var readers sync.WaitGroup
	closed := make(chan struct{}) // closed once every long-lived sub is closed
	for _, p := range patterns {
		s, err := bus.Subscribe(p, 8)
		if err != nil {
			t.Fatal(err)
		}
		ls := &longSub{sub: s}
		longs = append(longs, ls)
		readers.Go(func() {
			got := func(e events.Event) {
				if !events.Match(s.Pattern(), e.Type) {
					ls.wrong.CompareAndSwap(nil, e.Type)
				}
				ls.received.Add(1)
			}
			for {
				select {
				case e, ok := <-s.Events():
					if !ok {
						return
					}
					got(e)
				case <-closed:
					// Close has returned: what is left is buffered and
					// then the channel must report closed, never block.
					for {
						select {
						case e, ok := <-s.Events():
							if !ok {
								return
							}
							got(e)
						default:
							ls.open.Store(true)
							return
						}
					}
				}
			}
		})
	}

	var churnDropped atomic.Uint64
	var work sync.WaitGroup
	for p := range publishers {
		work.Go(func() {
			for i := range perPublisher {
				bus.Publish(events.Event{Type: evTypes[(p+i)%len(evTypes)], Data: i})
			}
		})
	}
	errs := make(chan error, churners)
	for c := range churners {
		work.Go(func() {
			for r := range churnRounds {
				pattern := patterns[(c+r)%len(patterns)]
				s, err := bus.Subscribe(pattern, 1+r%4)
				if err != nil {
					errs <- err
					return
				}
				// Read whatever is there without blocking.
				for range r % 3 {
					select {
					case e := <-s.Events():
						if !events.Match(pattern, e.Type) {
							errs <- fmt.Errorf("%q received non-matching %q", pattern, e.Type)
							return
						}
					default:
					}
				}
				s.Close()
				if r%5 == 0 {
					s.Close()
				}
				// After Close the channel is closed: reads never block.
				for open := true; open; {
					select {
					case _, ok := <-s.Events():
						open = ok
					default:
						errs <- fmt.Errorf("%q: Events channel still open after Close", pattern)
						return
					}
				}
				churnDropped.Add(s.Dropped())
			}
		})
	}
	work.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if got, want := bus.Stats().Subscribers, len(longs); got != want {
		t.Errorf("Stats().Subscribers = %d with only the long-lived subscribers left, want %d", got, want)
	}

	// All publishing is done: close the long-lived subscribers and let their
	// readers drain.
	for _, ls := range longs {
		ls.sub.Close()
	}
	close(closed)
	readers.Wait()

	st := bus.Stats()
	if want := uint64(publishers * perPublisher); st.Published != want {
		t.Errorf("Stats().Published = %d, want %d", st.Published, want)
	}
	if st.Subscribers != 0 {
		t.Errorf("Stats().Subscribers = %d after closing everything, want 0", st.Subscribers)
	}

	// Every drop is charged to exactly one subscription and to the bus.
	sumDropped := churnDropped.Load()
	for _, ls := range longs {
		t.Run("long-lived "+ls.sub.Pattern(), func(t *testing.T) {
			if ls.open.Load() {
				t.Error("Events channel still open after Close")
			}
			if w := ls.wrong.Load(); w != nil {
				t.Errorf("received non-matching event %q", w)
			}
			var matching uint64
			for p := range publishers {
				for i := range perPublisher {
					if events.Match(ls.sub.Pattern(), evTypes[(p+i)%len(evTypes)]) {
						matching++
					}
				}
			}
			if got := ls.received.Load() + ls.sub.Dropped(); got != matching {
				t.Errorf("received %d + dropped %d = %d, want %d matching events",
					ls.received.Load(), ls.sub.Dropped(), got, matching)
			}
		})
		sumDropped += ls.sub.Dropped()
	}
	if st.Dropped != sumDropped {
		t.Errorf("Stats().Dropped = %d, but subscriptions dropped %d in total", st.Dropped, sumDropped)
	}
}

func BenchmarkPublish(b *testing.B) {
	ev := events.Event{Type: "plugin.reloaded", Time: time.Unix(1, 0)}

	b.Run("no subscribers", func(b *testing.B) {
		bus := events.New()
		b.ReportAllocs()
		for b.Loop() {
			bus.Publish(ev)
		}
	})

	b.Run("1 matching subscriber", func(b *testing.B) {
		bus := events.New()
		sub, err := bus.Subscribe("plugin.*", 1024)
		if err != nil {
			b.Fatal(err)
		}
		publishDrained(b, bus, sub, ev)
	})

	b.Run("10 subscribers, 1 matching", func(b *testing.B) {
		bus := events.New()
		for i := range 9 {
			s, err := bus.Subscribe(fmt.Sprintf("other%d.*", i), 1)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
		}
		sub, err := bus.Subscribe("plugin.*", 1024)
		if err != nil {
			b.Fatal(err)
		}
		publishDrained(b, bus, sub, ev)
	})

	b.Run("full subscriber drops", func(b *testing.B) {
		bus := events.New()
		sub, err := bus.Subscribe("*", 1)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		bus.Publish(ev) // fill the buffer; nobody reads
		b.ReportAllocs()
		for b.Loop() {
			bus.Publish(ev)
		}
		b.StopTimer()
		if sub.Dropped() == 0 {
			b.Fatal("expected drops")
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ name, pattern, typ string }{
		{"exact", "config.reloaded", "config.reloaded"},
		{"star", "*", "plugin.kv.full"},
		{"final star", "plugin.*", "plugin.kv.full"},
		{"middle star", "plugin.*.failed", "plugin.x.failed"},
		{"mismatch", "plugin.*", "config.reloaded"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				events.Match(c.pattern, c.typ)
			}
		})
	}
}

func TestSubscribeAny(t *testing.T) {
	b := events.New()
	s, err := b.SubscribeAny([]string{"message.*", "session.created"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"message.sent", "config.reloaded", "session.created", "message.received.x"} {
		b.Publish(events.Event{Type: typ})
	}
	s.Close()
	var got []string
	for ev := range s.Events() {
		got = append(got, ev.Type)
	}
	if want := []string{"message.sent", "session.created", "message.received.x"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := b.SubscribeAny(nil, 1); !errors.Is(err, events.ErrPattern) {
		t.Errorf("no patterns: %v", err)
	}
	if _, err := b.SubscribeAny([]string{"ok", "bad..x"}, 1); !errors.Is(err, events.ErrPattern) {
		t.Errorf("one bad pattern: %v", err)
	}
	if err := events.CheckPattern("plugin.*"); err != nil {
		t.Error(err)
	}
}

// publishDrained publishes ev in the benchmark loop while a goroutine
// drains sub, then closes sub and waits for the drainer.
func publishDrained(b *testing.B, bus *events.Bus, sub *events.Subscription, ev events.Event) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range sub.Events() {
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(ev)
	}
	b.StopTimer()
	sub.Close()
	<-done
}

// countingData counts how often it is encoded.
type countingData struct{ n *int }

func (c countingData) MarshalJSON() ([]byte, error) {
	*c.n++
	return []byte(`{"n":1}`), nil
}

// TestEncodedOnce: every subscriber of a published event reads the same
// encoding of its data; the whole-event encoding is the field-by-field one.
func TestEncodedOnce(t *testing.T) {
	bus := events.New()
	var subs []*events.Subscription
	for range 3 {
		s, err := bus.Subscribe("*", 1)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	n := 0
	when := time.Date(2026, 12, 3, 18, 0, 0, 5, time.UTC)
	bus.Publish(events.Event{Type: "x.y", Time: when, Data: countingData{&n}})
	for _, s := range subs {
		e := <-s.Events()
		if b, err := e.DataJSON(); err != nil || string(b) != `{"n":1}` {
			t.Fatalf("DataJSON %s %v", b, err)
		}
		b, err := json.Marshal(e)
		if err != nil || string(b) != `{"type":"x.y","time":"2026-12-03T18:00:00.000000005Z","data":{"n":1}}` {
			t.Fatalf("event JSON %s %v", b, err)
		}
	}
	if n != 1 {
		t.Errorf("data encoded %d times for 3 subscribers, want once", n)
	}
	// A view with other data is encoded anew; no data leaves "data" out.
	bus.Publish(events.Event{Type: "x.y", Time: when, Data: countingData{&n}})
	e := <-subs[0].Events()
	e.DataJSON()
	if b, _ := json.Marshal(e.WithData(map[string]string{"a": "b"})); string(b) != `{"type":"x.y","time":"2026-12-03T18:00:00.000000005Z","data":{"a":"b"}}` {
		t.Errorf("WithData: %s", b)
	}
	if b, _ := json.Marshal(events.Event{Type: "t", Time: when}); string(b) != `{"type":"t","time":"2026-12-03T18:00:00.000000005Z"}` {
		t.Errorf("no data: %s", b)
	}
}
