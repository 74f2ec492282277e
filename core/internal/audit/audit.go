// Package audit is the audit trail: who did what, to what, when, and with
// what outcome, kept in the store (synced, newest first) and pruned after a
// retention period.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/porticohq/portico/core/internal/store"
)

// Outcomes of an audited action.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Entry is one audited action.
type Entry struct {
	ID        string         `json:"id"`
	Time      time.Time      `json:"time"`
	Actor     string         `json:"actor"`  // who: a key id, "system", "file", "cli"
	Action    string         `json:"action"` // what: "config.patch", "store.backup"
	Target    string         `json:"target,omitempty"`
	Outcome   string         `json:"outcome"`
	RequestID string         `json:"request_id,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// Trail records and lists entries.
type Trail struct {
	kv  store.KV
	pg  *store.Postgres // set: the entries are in portico_audit instead
	now func() time.Time
}

// New returns a trail that keeps its entries in kv under its own prefix,
// or, when kv is PostgreSQL, in its own table (postgres.go), whose
// indexes serve List's filters and pages.
func New(kv store.KV) *Trail {
	pg, _ := kv.(*store.Postgres)
	return &Trail{kv: store.Prefix(kv, "audit/"), pg: pg, now: time.Now}
}

// key orders entries by time: 8 bytes of big-endian nanoseconds, then 8
// random bytes so two entries in one nanosecond never collide.
func key(t time.Time, id []byte) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	copy(k[8:], id)
	return k
}

// Record stores e durably, filling in ID and Time; Actor, Action and
// Outcome are required.
func (t *Trail) Record(ctx context.Context, e Entry) error {
	if e.Actor == "" || e.Action == "" || e.Outcome == "" {
		return fmt.Errorf("audit: entry needs actor, action and outcome (got %q, %q, %q)", e.Actor, e.Action, e.Outcome)
	}
	if e.Time.IsZero() {
		e.Time = t.now()
	}
	id := make([]byte, 8)
	rand.Read(id)
	k := key(e.Time, id)
	e.ID = hex.EncodeToString(k)
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode entry: %w", err)
	}
	if t.pg != nil {
		err = t.pgRecord(ctx, &e, b)
	} else {
		err = t.kv.Set(ctx, k, b, store.Sync)
	}
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return nil
}

// Query filters List. Zero fields match everything.
type Query struct {
	Actor  string
	Action string
	Since  time.Time
	Limit  int // default 50
	Offset int
}

// List returns matching entries newest first, and how many match in all.
func (t *Trail) List(ctx context.Context, q Query) ([]Entry, int, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if t.pg != nil {
		return t.pgList(ctx, q)
	}
	var out []Entry
	total := 0
	err := t.kv.Scan(ctx, nil, store.ScanOptions{Reverse: true}, func(k, v []byte) error {
		if !q.Since.IsZero() && len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) < q.Since.UnixNano() {
			return store.ErrStop
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("audit: decode entry %x: %w", k, err)
		}
		if (q.Actor != "" && e.Actor != q.Actor) || (q.Action != "" && e.Action != q.Action) {
			return nil
		}
		if total >= q.Offset && len(out) < q.Limit {
			out = append(out, e)
		}
		total++
		return nil
	})
	if out == nil {
		out = []Entry{}
	}
	return out, total, err
}

// Prune deletes entries older than before and returns how many it deleted.
func (t *Trail) Prune(ctx context.Context, before time.Time) (int, error) {
	if t.pg != nil {
		return t.pgPrune(ctx, before)
	}
	var old [][]byte
	err := t.kv.Scan(ctx, nil, store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) >= before.UnixNano() {
			return store.ErrStop
		}
		old = append(old, append([]byte{}, k...))
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i, k := range old {
		if err := t.kv.Delete(ctx, k); err != nil {
			return i, fmt.Errorf("audit: prune: %w", err)
		}
	}
	return len(old), nil
}
