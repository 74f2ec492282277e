package plugin

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
)

// TestStartLoadingServesWhileLoading: StartLoading registers every plugin
// from its manifest and returns while the modules load; a call to a
// plugin still loading waits for it and moves it to the front of the
// queue, past its call timeout it fails as a timeout, a middleware is
// waited for (no request passes it by), and a hook gets the events of the
// load's seconds, and a config change made meanwhile waits for the end
// of the load without holding up its caller.
func TestStartLoadingServesWhileLoading(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	var mu sync.Mutex
	var order []string
	gates := map[string]chan struct{}{}
	gate := func(name string) chan struct{} { // with mu held
		if gates[name] == nil {
			gates[name] = make(chan struct{})
		}
		return gates[name]
	}
	release := func(names ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range names {
			close(gate(n))
		}
	}
	f.m.beforeStart = func(ctx context.Context, name string) {
		mu.Lock()
		order = append(order, name)
		g := gate(name)
		mu.Unlock()
		select {
		case <-g:
		case <-ctx.Done(): // the test failed and closes the manager
		}
	}
	started := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(order)
	}
	c := cfg(config.PluginEntry{Name: "echo", CallTimeout: config.Duration(20 * time.Millisecond)}, config.PluginEntry{Name: "audit", Grants: []string{"kv"}})
	f.m.StartLoading(ctx, c)

	// Registered from the manifests: listed, loading, skills callable.
	for _, name := range []string{"assistant", "audit", "echo", "guard", "reverse"} {
		if i, err := f.m.Get(name); err != nil || i.Status != Loading {
			t.Errorf("%s right after StartLoading: %+v %v", name, i.Status, err)
		}
	}
	if i := slices.IndexFunc(f.m.Skills(), func(s SkillInfo) bool { return s.Name == "reverse" }); i < 0 || f.m.Skills()[i].Status != Loading {
		t.Errorf("skills while loading: %+v", f.m.Skills())
	}
	// The load took the first plugin by name and waits at its gate.
	eventually(t, "a plugin starting", func() bool { return len(started()) == 1 })
	if got := started(); got[0] != "assistant" {
		t.Fatalf("first plugin taken: %v", got)
	}
	f.bus.Publish(events.Event{Type: "session.created", Data: map[string]any{"session_id": "during-the-load"}})

	// A call to reverse, late in the queue, waits and jumps it.
	type result struct {
		out []byte
		err error
	}
	rev := make(chan result, 1)
	go func() {
		out, _, err := f.m.Invoke(ctx, "reverse", []byte(`"abc"`))
		rev <- result{out, err}
	}()
	eventually(t, "reverse wanted", func() bool { return f.m.reg.Load().plugins["reverse"].loading.wanted.Load() })
	release("assistant") // the load takes reverse next
	eventually(t, "a second plugin taken", func() bool { return len(started()) == 2 })
	if got := started()[1]; got != "reverse" {
		t.Fatalf("after a call waited for reverse, the next plugin taken was %q", got)
	}
	release("reverse")
	if r := <-rev; r.err != nil || string(r.out) != `"cba"` {
		t.Fatalf("reverse while loading: %q %v", r.out, r.err)
	}

	// echo's call timeout is 20ms: a call that waits longer fails as a
	// timeout and says why.
	_, _, err := f.m.Invoke(ctx, "echo", []byte(`{}`))
	if !errors.Is(err, KindTimeout) || !strings.Contains(err.Error(), "still loading") {
		t.Errorf("echo past its call timeout while loading: %v", err)
	}

	// A config change during the load returns at once (the config's
	// other parts apply meanwhile) and applies to the plugins when the
	// load ends.
	off := false
	c2 := cfg(c.Plugins[0], c.Plugins[1], config.PluginEntry{Name: "telegram", Enabled: &off})
	applied := make(chan error, 1)
	go func() { applied <- f.m.Apply(ctx, c2) }()
	select {
	case err := <-applied:
		if err != nil {
			t.Errorf("Apply during the load: %v", err)
		}
	case <-time.After(10 * time.Second): // a hang guard, not a speed assertion
		t.Fatal("Apply during the load waited for it")
	}

	// A middleware chain asking for guard waits for it.
	mw := make(chan error, 1)
	go func() {
		slot, err := f.m.Middleware("guard")
		if err == nil && (slot == nil || slot.Load() == nil) {
			err = errors.New("no middleware in the slot")
		}
		mw <- err
	}()
	release("audit", "echo", "guard", "headers", "httpget", "jsonhook", "notes", "redact", "summarize", "telegram")
	if err := <-mw; err != nil {
		t.Errorf("guard while loading: %v", err)
	}
	f.m.WaitLoaded(ctx)
	for _, i := range f.m.List() {
		if i.Status == Loading {
			t.Errorf("%s still loading after WaitLoaded", i.Name)
		}
	}
	if i, _ := f.m.Get("telegram"); i.Status != Disabled || i.DisabledBy != DisabledByConfig {
		t.Errorf("telegram after the load, with the config that came during it: %s by %q", i.Status, i.DisabledBy)
	}
	// The audit hook subscribed before its load: the event published
	// while it compiled reached it.
	eventually(t, "the audit hook got the event of the load", func() bool {
		out, _, err := f.m.Invoke(ctx, "audit_log", []byte(`{}`))
		return err == nil && strings.Contains(string(out), "during-the-load")
	})
}

// TestCloseCutsTheLoadShort: Close during a background load cancels it;
// the plugins not started yet are not compiled.
func TestCloseCutsTheLoadShort(t *testing.T) {
	f := newFixture(t, nil)
	// The load's first plugins wait for the cancel, so nothing starts
	// before Close.
	f.m.beforeStart = func(ctx context.Context, _ string) { <-ctx.Done() }
	before := f.rt.Compiles()
	f.m.StartLoading(context.Background(), cfg())
	if err := f.m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.rt.Compiles() - before; n != 0 {
		t.Errorf("Close during the load still compiled %d modules", n)
	}
	if len(f.m.List()) != 0 {
		t.Errorf("plugins left after Close: %v", f.m.List())
	}
}

// eventually polls cond until it holds; the deadline guards against a
// hang and is not a speed assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChainedMiddlewareLoadsFirst: middleware a chain names load before
// the other plugins, since every request on its paths waits for them.
func TestChainedMiddlewareLoadsFirst(t *testing.T) {
	f := newFixture(t, nil)
	var mu sync.Mutex
	var order []string
	f.m.beforeStart = func(_ context.Context, name string) {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	c := cfg()
	c.Middleware.PostAuth = []config.MiddlewareGroup{{Name: "api", Plugins: []string{"redact"}}}
	c.Middleware.PreAuth = []config.MiddlewareGroup{{Name: "all", Plugins: []string{"headers"}}}
	f.m.LoadAll(context.Background(), c)
	mu.Lock()
	defer mu.Unlock()
	if len(order) < 3 || order[0] != "headers" || order[1] != "redact" {
		t.Errorf("load order: %v, want headers and redact first", order)
	}
}
