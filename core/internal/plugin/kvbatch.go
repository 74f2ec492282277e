package plugin

import (
	"context"
	"errors"

	"github.com/porticohq/portico/core/internal/store"
)

// kvBatch holds a hook plugin's key-value writes across a run of queued
// event deliveries, committed together in one transaction when the run
// ends (flush): a hook that stores each event (the embedded audit plugin
// writes twice per event) costs one commit per run instead of one per
// write. The writes are held only while the events of the run are, which
// live in memory anyway until delivered; the hook's reads see its own
// writes, and the quota counts them as they are made. Used by the hook's
// one delivery goroutine only.
type kvBatch struct {
	h     *pluginHost
	vals  map[string][]byte // the latest value written; nil when deleted
	keys  []string          // in first-write order
	bytes int               // of the values held, to bound a run
	delta int64             // at most what the writes add to the plugin's usage (an estimate made as they are)
}

type batchKey struct{}

// maxBatchBytes and maxBatchKeys end a run early, well inside Badger's
// transaction limits.
const (
	maxBatchBytes = 4 << 20
	maxBatchKeys  = 512
)

func newKVBatch(h *pluginHost) *kvBatch { return &kvBatch{h: h, vals: map[string][]byte{}} }

// batchOf returns the run in ctx when it is h's.
func (h *pluginHost) batchOf(ctx context.Context) *kvBatch {
	b, _ := ctx.Value(batchKey{}).(*kvBatch)
	if b == nil || b.h != h {
		return nil
	}
	return b
}

// full reports whether the run should be committed now.
func (b *kvBatch) full() bool { return len(b.keys) >= maxBatchKeys || b.bytes >= maxBatchBytes }

// get returns the batch's value for key: held is false when the batch
// has not written it.
func (b *kvBatch) get(key []byte) (v []byte, found, held bool) {
	v, held = b.vals[string(key)]
	return v, held && v != nil, held
}

// oldSize is what key holds now (in the batch, else as the host knows it
// or the store has it): its key and value bytes, or 0 when absent.
func (b *kvBatch) oldSize(ctx context.Context, key []byte) (int64, error) {
	if v, found, held := b.get(key); held {
		if !found {
			return 0, nil
		}
		return int64(len(key) + len(v)), nil
	}
	b.h.wmu.Lock()
	n, known := b.h.sizes[string(key)]
	b.h.wmu.Unlock()
	if known {
		if n < 0 {
			return 0, nil
		}
		return int64(len(key) + n), nil
	}
	v, err := b.h.kv.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return int64(len(key) + len(v)), nil
}

// put records a write of value, or a delete, that changes usage by delta.
func (b *kvBatch) put(key, value []byte, del bool, delta int64) {
	k := string(key)
	if _, ok := b.vals[k]; !ok {
		b.keys = append(b.keys, k)
	}
	var v []byte // nil: deleted
	if !del {
		v = append(make([]byte, 0, len(value)), value...) // guest memory: copy
		b.bytes += len(v)
	}
	b.vals[k] = v
	b.delta += delta
}

// flush commits the run's writes in one transaction and empties it.
func (b *kvBatch) flush(ctx context.Context) error {
	if len(b.keys) == 0 {
		return nil
	}
	h := b.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	var delta int64
	err := h.kv.Update(ctx, func(tx store.Txn) error {
		delta = 0
		for _, k := range b.keys {
			key := []byte(k)
			old, known := h.sizes[k]
			if !known {
				v, err := tx.Get(key)
				switch {
				case errors.Is(err, store.ErrNotFound):
					old = -1
				case err != nil:
					return err
				default:
					old = len(v)
				}
			}
			if old >= 0 {
				delta -= int64(len(key) + old)
			}
			var err error
			if v := b.vals[k]; v != nil {
				delta += int64(len(key) + len(v))
				err = tx.Set(key, v)
			} else if old >= 0 {
				err = tx.Delete(key)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		h.used.Add(delta)
		for _, k := range b.keys {
			if v := b.vals[k]; v != nil {
				h.knowSize(k, len(v))
			} else {
				h.knowSize(k, -1)
			}
		}
	}
	clear(b.vals)
	b.keys, b.bytes, b.delta = b.keys[:0], 0, 0
	return err
}
