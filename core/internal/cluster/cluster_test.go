package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/store"
)

func TestRegistry(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	node := func(addr string) *Registry {
		r := New(st, Options{Version: "v1", Every: func() time.Duration { return time.Second },
			Plugins: func() (string, int) { return "digest", 3 }})
		r.SetAddress(addr)
		r.now = func() time.Time { return now }
		return r
	}
	a, b := node("10.0.0.1:3120"), node("10.0.0.2:3120")
	for _, r := range []*Registry{a, b} {
		if err := r.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := a.List(ctx)
	if err != nil || len(list) != 2 || !list[0].This || list[0].ID != a.ID() || list[0].Address != "10.0.0.1:3120" ||
		!list[0].Up || !list[1].Up || list[1].This || list[1].Plugins != 3 || list[1].PluginsDigest != "digest" {
		t.Fatalf("two fresh nodes: %+v, %v", list, err)
	}
	// b misses three beats: listed as down; a's later beats keep a up.
	now = now.Add(3500 * time.Millisecond)
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := a.List(ctx); !list[0].Up || list[1].Up {
		t.Fatalf("b silent for 3.5 beats: %+v", list)
	}
	// A node that stops cleanly removes its record; one silent for a
	// hundred beats is forgotten by another's heartbeat loop.
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	a.Run(runCtx)
	if list, _ := b.List(ctx); len(list) != 1 || list[0].ID != b.ID() {
		t.Fatalf("after a left: %+v", list)
	}
	c := node("10.0.0.3:3120")
	now = now.Add(time.Duration(forgetAfter+1) * time.Second)
	runCtx, cancel = context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	c.Run(runCtx) // beats, forgets b, then leaves
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Fatalf("b was not forgotten: %+v", list)
	}
}
