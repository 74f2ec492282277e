package webhook

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
	"github.com/porticohq/portico/internal/testtool"
)

// twoNodes starts two services on one PostgreSQL database, each with its
// own connection pool and bus, as two gateway nodes run.
func twoNodes(t *testing.T, edit func(*config.Webhooks)) (*fixture, *fixture) {
	t.Helper()
	url := testtool.Postgres(t)
	open := func() *fixture {
		pg, err := store.OpenPostgres(context.Background(), store.PostgresOptions{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		return started(t, pg, edit)
	}
	return open(), open()
}

// TestTwoNodesDeliverOnce: with two nodes reading one queue, every
// delivery is sent once, whichever node's event made it, to a hook that
// one node created and the other learned from the store.
func TestTwoNodesDeliverOnce(t *testing.T) {
	if storetest.Name() != "postgres" {
		return // two nodes need the store they share; this runs in the postgres pass
	}
	a, b := twoNodes(t, nil)
	r := newReceiver(t, nil)
	h, _ := a.create(t, r.URL, "test.*")
	if err := b.s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	const each = 25
	for i := range each {
		a.bus.Publish(events.Event{Type: "test.a", Data: map[string]int{"i": i}})
		b.bus.Publish(events.Event{Type: "test.b", Data: map[string]int{"i": i}})
	}
	eventually(t, "every delivery delivered", func() bool { return len(a.deliveries(t, h.ID, Delivered)) == 2*each })
	time.Sleep(100 * time.Millisecond) // a second send would arrive by now
	seen := map[string]int{}
	for _, got := range r.requests() {
		seen[got.delivery]++
	}
	if len(seen) != 2*each {
		t.Fatalf("%d distinct deliveries received, want %d", len(seen), 2*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s sent %d times", id, n)
		}
	}
}

// TestLeaseOutlivesItsNode: a node that dies while sending (its attempts
// cut off, nothing recorded) leaves the delivery leased; once the lease
// has passed, the other node sends it, with the same delivery id.
func TestLeaseOutlivesItsNode(t *testing.T) {
	if storetest.Name() != "postgres" {
		return // as above
	}
	const lease = 600 * time.Millisecond
	a, b := twoNodes(t, func(w *config.Webhooks) {
		w.Timeout = config.Duration(500 * time.Millisecond)
		w.ClaimLease = config.Duration(lease)
		w.PollInterval = config.Duration(50 * time.Millisecond)
	})
	release := make(chan struct{})
	r := newReceiver(t, func(n int) int {
		if n == 1 {
			<-release // the first attempt hangs until its node is gone
		}
		return 204
	})
	defer close(release)
	h, _ := a.create(t, r.URL, "test.*")
	if err := b.s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// b starts no attempt of its own before a dies: it only sees the
	// delivery once a's lease is on it (and a is the node that queued it,
	// so a's dispatcher is the one kicked).
	a.bus.Publish(events.Event{Type: "test.once"})
	eventually(t, "the first attempt under way", func() bool { return len(r.requests()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	a.s.Close(ctx) // the node dies: its attempt is cut off, nothing recorded
	cancel()
	died := time.Now()
	eventually(t, "the other node delivering it", func() bool { return len(b.deliveries(t, h.ID, Delivered)) == 1 })
	if since := time.Since(died); since < lease/3 {
		t.Errorf("delivered %v after the node died, before its lease could pass", since)
	}
	got := r.requests()
	if len(got) != 2 || got[0].delivery != got[1].delivery {
		t.Fatalf("received %d requests (%v), want the same delivery twice", len(got), fmt.Sprint(got))
	}
	if d := b.deliveries(t, h.ID, Delivered)[0]; d.ID != got[0].delivery || d.Attempts != 1 {
		t.Fatalf("the delivery as recorded: %+v", d)
	}
}
