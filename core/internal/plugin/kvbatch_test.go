package plugin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
	"github.com/porticohq/portico/hostapi"
)

// countingKV counts the write transactions that reach the store.
type countingKV struct {
	store.KV
	updates atomic.Int64
}

func (c *countingKV) Update(ctx context.Context, fn func(store.Txn) error, opts ...store.WriteOption) error {
	c.updates.Add(1)
	return c.KV.Update(ctx, fn, opts...)
}

func TestKVBatch(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := newHost(ctx, "hook", st, 100, nil, events.New(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newHost(ctx, "other", st, 1<<20, nil, events.New(), nil, log)
	counting := &countingKV{KV: h.kv}
	h.kv = counting
	if err := h.KVSet(ctx, []byte("gone"), []byte("soon")); err != nil { // 8 bytes, committed
		t.Fatal(err)
	}
	counting.updates.Store(0)

	b := newKVBatch(h)
	bctx := context.WithValue(ctx, batchKey{}, b)
	inStore := func(k string) (string, bool) {
		v, err := st.Get(ctx, []byte(kvPrefix("hook")+k))
		return string(v), err == nil
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.KVSet(bctx, []byte("seq"), []byte("1")))
	must(h.KVSet(bctx, []byte("seq"), []byte("2")))
	must(h.KVSet(bctx, []byte("empty"), nil)) // an empty value, not a delete
	must(h.KVDelete(bctx, []byte("gone")))
	must(other.KVSet(bctx, []byte("theirs"), []byte("x"))) // another plugin's write is not batched

	if v, ok, _ := h.KVGet(bctx, []byte("seq")); !ok || string(v) != "2" {
		t.Errorf("the hook reads %q %v, want its own write", v, ok)
	}
	if _, ok, _ := h.KVGet(bctx, []byte("gone")); ok {
		t.Error("the hook still reads a key it deleted")
	}
	if v, ok, _ := h.KVGet(bctx, []byte("empty")); !ok || len(v) != 0 {
		t.Errorf("empty value: %q %v", v, ok)
	}
	if _, ok := inStore("seq"); ok || counting.updates.Load() != 0 {
		t.Fatalf("a batched write reached the store before the flush (%d transactions)", counting.updates.Load())
	}
	if _, ok, _ := other.KVGet(ctx, []byte("theirs")); !ok {
		t.Error("another plugin's write was held in the hook's batch")
	}
	// The quota counts what the batch holds: 100 bytes, 3+1 + 5+0 held,
	// 8 freed; 93 more bytes would be 101.
	if err := h.KVSet(bctx, []byte("big"), make([]byte, 90)); !errors.Is(err, hostapi.ErrQuota) {
		t.Errorf("over the quota with the batch's bytes: %v", err)
	}

	must(b.flush(ctx))
	if counting.updates.Load() != 1 {
		t.Errorf("flush took %d transactions, want 1", counting.updates.Load())
	}
	if v, _ := inStore("seq"); v != "2" {
		t.Errorf("seq = %q after flush", v)
	}
	if _, ok := inStore("gone"); ok {
		t.Error("the delete was not committed")
	}
	if v, ok := inStore("empty"); !ok || v != "" {
		t.Errorf("empty = %q %v after flush", v, ok)
	}
	if got := h.used.Load(); got != 4+5 {
		t.Errorf("usage after flush %d, want 9", got)
	}
	if _, _, held := b.get([]byte("seq")); held || b.delta != 0 || len(b.keys) != 0 {
		t.Error("the batch was not emptied")
	}
	must(b.flush(ctx)) // empty: no transaction
	if counting.updates.Load() != 1 {
		t.Errorf("an empty flush committed")
	}
}
