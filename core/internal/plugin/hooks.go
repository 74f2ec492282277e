package plugin

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/core/internal/events"
)

// hookRunner delivers a hook plugin's events: off the request path, one at
// a time (so in order per plugin), from a bounded subscription whose drops
// are counted, never blocking a publisher.
type hookRunner struct {
	sub       *events.Subscription
	delivered atomic.Uint64
	failed    atomic.Uint64
	done      chan struct{}
	stopOnce  sync.Once
}

// HookStats are a hook plugin's delivery counters.
type HookStats struct {
	Subscriptions []string `json:"subscriptions"`
	Delivered     uint64   `json:"delivered"`
	Failed        uint64   `json:"failed"`
	Dropped       uint64   `json:"dropped"` // events its queue had no room for
}

func (m *Manager) startHooks(e *entry, buffer int) error {
	sub := e.sub // made before a background load
	if sub == nil {
		var err error
		if sub, err = m.d.Bus.SubscribeAny(e.manifest.Hooks.Events, buffer); err != nil {
			return err
		}
	}
	h := &hookRunner{sub: sub, done: make(chan struct{})}
	own := "plugin." + e.name + "."
	p := e.plugin
	batch := newKVBatch(e.host)
	bctx := context.WithValue(context.Background(), batchKey{}, batch)
	deliver := func(ev events.Event) {
		if strings.HasPrefix(ev.Type, own) {
			return // never feed a plugin its own events: no loops
		}
		data, err := ev.DataJSON()
		if err != nil {
			h.failed.Add(1)
			return
		}
		ctx, end := m.d.Tracer.Plugin(bctx, "hook", ev.Type, e.name)
		err = p.CallHook(ctx, Envelope(ev.Type, data))
		end(err)
		switch {
		case err == nil:
			h.delivered.Add(1)
		default:
			h.failed.Add(1)
			m.d.Logger.Warn("hook failed", "plugin", e.name, "event", ev.Type, "error", err)
		}
	}
	// Events queued together, or within plugin.hook_commit_window of each
	// other, are one run: their key-value writes are committed together
	// when it ends (or is full).
	flush := func() {
		if err := batch.flush(context.Background()); err != nil {
			h.failed.Add(1)
			m.d.Logger.Error("hook's key-value writes not stored", "plugin", e.name, "error", err)
		}
	}
	go func() {
		defer close(h.done)
		evs := sub.Events()
		window := time.NewTimer(time.Hour)
		window.Stop()
		for ev := range evs {
			deliver(ev)
			var deadline <-chan time.Time // armed once per run: a run lasts at most the window
			armed := false
			for len(batch.keys) > 0 && !batch.full() { // with nothing held there is no run to extend
				if !armed {
					armed = true
					if d := time.Duration(m.hookWindow.Load()); d > 0 {
						window.Reset(d)
						deadline = window.C
					}
				}
				ev, ok := nextInRun(evs, deadline)
				if !ok {
					break
				}
				deliver(ev)
			}
			window.Stop()
			flush()
		}
	}()
	e.hook = h
	return nil
}

// nextInRun returns the run's next event: one already queued, else one
// that comes before deadline (nil: none may wait); ok is false when the
// run ends there (or the queue is closed).
func nextInRun(evs <-chan events.Event, deadline <-chan time.Time) (ev events.Event, ok bool) {
	select {
	case ev, ok = <-evs:
		return ev, ok
	default:
	}
	if deadline == nil {
		return ev, false
	}
	select {
	case ev, ok = <-evs:
	case <-deadline:
	}
	return ev, ok
}

// stop ends delivery and waits for the event in progress.
func (h *hookRunner) stop() {
	h.stopOnce.Do(func() {
		h.sub.Close()
		<-h.done
	})
}

func (h *hookRunner) stats(patterns []string) *HookStats {
	return &HookStats{Subscriptions: slices.Clone(patterns), Delivered: h.delivered.Load(), Failed: h.failed.Load(), Dropped: h.sub.Dropped()}
}

// close stops an entry's hook delivery and closes its plugin: calls in
// flight finish first.
func (e *entry) close(ctx context.Context) {
	if e.hook != nil {
		e.hook.stop()
	} else if e.sub != nil {
		e.sub.Close() // a hook plugin that never started
	}
	if e.plugin != nil {
		e.plugin.Close(ctx)
	}
	if e.mw != nil {
		closeMiddleware(e.mw)
	}
}
