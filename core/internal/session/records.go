package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/porticohq/portico/core/internal/store"
)

// records is where sessions, their messages and idempotency records live:
// the key-value store with an in-memory index for one node (kvRecords),
// or PostgreSQL's tables for several nodes sharing one database
// (pgRecords). The Service holds the rules; records only store and find.
type records interface {
	count(ctx context.Context) (int, error)
	// get returns the stored session (its Status is the Service's to
	// compute) or ErrNotFound.
	get(ctx context.Context, id string) (Session, error)
	create(ctx context.Context, se *Session) error
	save(ctx context.Context, se *Session) error
	// append stores a message and its session in one transaction: a
	// crash leaves both or neither.
	append(ctx context.Context, m *Message, se *Session) error
	// history returns up to n of the session's latest messages, oldest
	// first.
	history(ctx context.Context, se *Session, n int) ([]HistoryItem, error)
	messages(ctx context.Context, id string, limit, offset int) ([]Message, error)
	// list returns a page, newest first, and the exact total.
	list(ctx context.Context, f Filter, idleBefore time.Time) ([]Session, int, error)
	channelStats(ctx context.Context, idleBefore time.Time) (map[string]ChannelStats, error)
	// latest returns the newest session of user on channel that is not
	// terminated, or "".
	latest(ctx context.Context, channel, user string) (string, error)
	// lock serializes what holds key (a session's turns, one
	// idempotency key) on every node sharing the records; the context
	// it returns is the one to use until unlock.
	lock(ctx context.Context, key string) (context.Context, func(), error)
	// lockSession is lock(id), then get(id) under the lock.
	lockSession(ctx context.Context, id string) (context.Context, Session, func(), error)
	idempotent(ctx context.Context, key string) (idemRecord, bool, error)
	remember(ctx context.Context, key string, rec idemRecord) error
	// forgetBefore deletes idempotency records made before t.
	forgetBefore(ctx context.Context, t time.Time) (int, error)
}

// kvRecords keeps records in the key-value store under "sessions/" (s/ID
// for a session, m/ID/SEQ for its messages, k/HASH for idempotency) and
// lists them through an in-memory index of every session, rebuilt when
// the service opens: a single node's optimisation.
type kvRecords struct {
	kv    store.KV
	idx   *index
	locks keyedLocks
}

var _ records = (*kvRecords)(nil)

func openKV(ctx context.Context, kv store.KV) (*kvRecords, error) {
	r := &kvRecords{kv: store.Prefix(kv, "sessions/"), idx: newIndex()}
	err := r.kv.Scan(ctx, []byte("s/"), store.ScanOptions{}, func(_, v []byte) error {
		var se Session
		if err := json.Unmarshal(v, &se); err != nil {
			return fmt.Errorf("session record: %w", err)
		}
		r.idx.add(entryOf(&se))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading sessions: %w", err)
	}
	r.idx.sort()
	return r, nil
}

func sessionKey(id string) []byte { return []byte("s/" + id) }

func messagePrefix(sessionID string) []byte { return []byte("m/" + sessionID + "/") }

func messageKey(sessionID string, seq int64) []byte {
	return fmt.Appendf(messagePrefix(sessionID), "%012d", seq)
}

func (r *kvRecords) count(context.Context) (int, error) { return r.idx.len(), nil }

func (r *kvRecords) get(ctx context.Context, id string) (Session, error) {
	if r.idx.get(id) == nil {
		return Session{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := r.kv.Get(ctx, sessionKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Session{}, err
	}
	return decodeSession(id, b)
}

// decodeSession decodes a stored session record.
func decodeSession(id string, b []byte) (Session, error) {
	var se Session
	if err := json.Unmarshal(b, &se); err != nil {
		return Session{}, fmt.Errorf("session record %q: %w", id, err)
	}
	return se, nil
}

func (r *kvRecords) put(ctx context.Context, se *Session) error {
	b, err := json.Marshal(se)
	if err != nil {
		return err
	}
	if err := r.kv.Set(ctx, sessionKey(se.ID), b); err != nil {
		return fmt.Errorf("storing session: %w", err)
	}
	return nil
}

func (r *kvRecords) create(ctx context.Context, se *Session) error {
	if err := r.put(ctx, se); err != nil {
		return err
	}
	r.idx.add(entryOf(se))
	return nil
}

func (r *kvRecords) save(ctx context.Context, se *Session) error {
	if err := r.put(ctx, se); err != nil {
		return err
	}
	r.idx.update(entryOf(se))
	return nil
}

func (r *kvRecords) append(ctx context.Context, m *Message, se *Session) error {
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	sb, err := json.Marshal(se)
	if err != nil {
		return err
	}
	mk, sk := messageKey(m.SessionID, m.Seq), sessionKey(se.ID)
	err = r.kv.Update(ctx, func(tx store.Txn) error {
		if err := tx.Set(mk, mb); err != nil {
			return err
		}
		return tx.Set(sk, sb)
	})
	if err != nil {
		return fmt.Errorf("storing message: %w", err)
	}
	r.idx.update(entryOf(se))
	return nil
}

// history reads the messages directly: their keys are known from the
// message count.
func (r *kvRecords) history(ctx context.Context, se *Session, n int) ([]HistoryItem, error) {
	out := []HistoryItem{}
	for seq := max(1, se.MessageCount-int64(n)+1); seq <= se.MessageCount; seq++ {
		b, err := r.kv.Get(ctx, messageKey(se.ID, seq))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("message record: %w", err)
		}
		out = append(out, HistoryItem{Role: m.Role, Text: m.Text})
	}
	return out, nil
}

func (r *kvRecords) messages(ctx context.Context, id string, limit, offset int) ([]Message, error) {
	out := []Message{}
	i := 0
	err := r.kv.Scan(ctx, messagePrefix(id), store.ScanOptions{}, func(_, v []byte) error {
		if i++; i <= offset {
			return nil
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		out = append(out, m)
		if len(out) == limit {
			return store.ErrStop
		}
		return nil
	})
	return out, err
}

func (r *kvRecords) list(ctx context.Context, f Filter, idleBefore time.Time) ([]Session, int, error) {
	ids, total := r.idx.page(f, idleBefore)
	out := make([]Session, 0, len(ids))
	for _, id := range ids {
		se, err := r.get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, se)
	}
	return out, total, nil
}

func (r *kvRecords) channelStats(_ context.Context, idleBefore time.Time) (map[string]ChannelStats, error) {
	return r.idx.channelStats(idleBefore), nil
}

func (r *kvRecords) latest(_ context.Context, channel, user string) (string, error) {
	return r.idx.latest(channel, user), nil
}

func (r *kvRecords) lock(ctx context.Context, key string) (context.Context, func(), error) {
	return ctx, r.locks.lock(key), nil
}

func (r *kvRecords) lockSession(ctx context.Context, id string) (context.Context, Session, func(), error) {
	unlock := r.locks.lock(id)
	se, err := r.get(ctx, id)
	if err != nil {
		unlock()
		return ctx, Session{}, nil, err
	}
	return ctx, se, unlock, nil
}

func (r *kvRecords) idempotent(ctx context.Context, key string) (idemRecord, bool, error) {
	b, err := r.kv.Get(ctx, []byte("k/"+key))
	if errors.Is(err, store.ErrNotFound) {
		return idemRecord{}, false, nil
	}
	if err != nil {
		return idemRecord{}, false, err
	}
	var rec idemRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return idemRecord{}, false, fmt.Errorf("idempotency record: %w", err)
	}
	return rec, true, nil
}

func (r *kvRecords) remember(ctx context.Context, key string, rec idemRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return r.kv.Set(ctx, []byte("k/"+key), b)
}

func (r *kvRecords) forgetBefore(ctx context.Context, t time.Time) (int, error) {
	var stale [][]byte
	err := r.kv.Scan(ctx, []byte("k/"), store.ScanOptions{}, func(k, v []byte) error {
		var rec idemRecord
		if json.Unmarshal(v, &rec) != nil || rec.At.Before(t) {
			stale = append(stale, append([]byte{}, k...))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range stale {
		if err := r.kv.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}
