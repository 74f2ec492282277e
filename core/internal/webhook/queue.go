package webhook

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
)

// Delivery states.
const (
	Pending   = "pending"   // queued: waiting for its next attempt, or being attempted
	Delivered = "delivered" // the receiver answered 2xx
	Dead      = "dead"      // webhooks.max_attempts failed; in the dead-letter list until redelivered or swept
)

// Delivery is one event on its way to one hook.
type Delivery struct {
	ID            string          `json:"id"` // also the Portico-Delivery header: the receivers' idempotency key
	HookID        string          `json:"hook_id"`
	Event         string          `json:"event"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	CreatedAt     time.Time       `json:"created_at"`
	NextAttemptAt time.Time       `json:"next_attempt_at,omitzero"` // while pending
	LastAttemptAt time.Time       `json:"last_attempt_at,omitzero"`
	LastStatus    int             `json:"last_status,omitempty"` // the receiver's HTTP status; 0 when none came
	LastError     string          `json:"last_error,omitempty"`
	FinishedAt    time.Time       `json:"finished_at,omitzero"` // when it became delivered or dead
	Payload       json.RawMessage `json:"payload"`              // the request body: the event as JSON
}

// Store layout, under "webhook/". Every delivery has its record, a state
// index entry, and exactly one of a due entry (pending) or a done entry
// (delivered, dead); put keeps them in step inside one transaction.
//
//	h/<hook>                    the hook, with its secrets
//	d/<hook>/<delivery>         the delivery
//	s/<hook>/<state>/<delivery> empty: lists one state of one hook
//	q/<next attempt><delivery>  hook id: the queue, in due order
//	f/<finished at><delivery>   hook id: finished deliveries, oldest first, for the sweep
//
// Times in keys are big-endian Unix nanoseconds; ids are 32 hex digits.
const (
	hookPrefix     = "h/"
	deliveryPrefix = "d/"
	statePrefix    = "s/"
	duePrefix      = "q/"
	donePrefix     = "f/"
	idLen          = 32
)

func hookKey(id string) []byte { return []byte(hookPrefix + id) }

func deliveryKey(hookID, id string) []byte {
	return []byte(deliveryPrefix + hookID + "/" + id)
}

func stateKey(hookID, state, id string) []byte {
	return []byte(statePrefix + hookID + "/" + state + "/" + id)
}

func timeKey(prefix string, t time.Time, id string) []byte {
	k := make([]byte, 0, len(prefix)+8+len(id))
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

// parseTimeKey splits a due or done key (without its prefix).
func parseTimeKey(k []byte) (time.Time, string, bool) {
	if len(k) != 8+idLen {
		return time.Time{}, "", false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))), string(k[8:]), true
}

// put writes d and its index entries, replacing those of old (the same
// delivery as it was) when old is not nil.
func put(tx store.Txn, old, d *Delivery) error {
	if old != nil {
		if err := unindex(tx, old); err != nil {
			return err
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("webhook: encode delivery: %w", err)
	}
	if err := tx.Set(deliveryKey(d.HookID, d.ID), b); err != nil {
		return err
	}
	if err := tx.Set(stateKey(d.HookID, d.State, d.ID), nil); err != nil {
		return err
	}
	if d.State == Pending {
		return tx.Set(timeKey(duePrefix, d.NextAttemptAt, d.ID), []byte(d.HookID))
	}
	return tx.Set(timeKey(donePrefix, d.FinishedAt, d.ID), []byte(d.HookID))
}

// unindex deletes d's index entries.
func unindex(tx store.Txn, d *Delivery) error {
	if err := tx.Delete(stateKey(d.HookID, d.State, d.ID)); err != nil {
		return err
	}
	if d.State == Pending {
		return tx.Delete(timeKey(duePrefix, d.NextAttemptAt, d.ID))
	}
	return tx.Delete(timeKey(donePrefix, d.FinishedAt, d.ID))
}

// remove deletes d and its index entries.
func remove(tx store.Txn, d *Delivery) error {
	if err := unindex(tx, d); err != nil {
		return err
	}
	return tx.Delete(deliveryKey(d.HookID, d.ID))
}

func getDelivery(tx store.Txn, hookID, id string) (*Delivery, error) {
	b, err := tx.Get(deliveryKey(hookID, id))
	if err != nil {
		return nil, err
	}
	var d Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("webhook: decode delivery %s: %w", id, err)
	}
	return &d, nil
}

// maxBatch bounds the events the intake writes in one synced transaction.
const maxBatch = 256

// intake turns events into queued deliveries until the subscription is
// closed. It drains whatever has arrived into one batch, so a burst costs
// one synced write rather than one per event (group commit).
func (s *Service) intake(sub *events.Subscription) {
	defer close(s.intakeDone)
	ctx := context.Background() // the store outlives the Service; Close waits for this loop
	var dropped uint64
	batch := make([]events.Event, 0, maxBatch)
	for e := range sub.Events() {
		batch = append(batch[:0], e)
	drain:
		for len(batch) < maxBatch {
			select {
			case e, ok := <-sub.Events():
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		if err := s.enqueue(ctx, batch); err != nil {
			s.log.Error("webhook deliveries not queued", "events", len(batch), "error", err)
		}
		if d := sub.Dropped(); d > dropped {
			s.log.Warn("events dropped before webhook deliveries could be queued; raise events.buffer", "dropped", d-dropped)
			dropped = d
		}
	}
}

// enqueue writes one pending delivery per event and matching hook, synced,
// in one transaction (split when the store refuses it as too large).
func (s *Service) enqueue(ctx context.Context, evs []events.Event) error {
	hooks := s.hooks.Load().list
	if len(hooks) == 0 {
		return nil
	}
	var ds []*Delivery
	for _, e := range evs {
		var payload []byte
		for _, h := range hooks {
			if !h.matches(e.Type) {
				continue
			}
			if payload == nil {
				b, err := json.Marshal(e)
				if err != nil {
					s.log.Error("event cannot be encoded for webhooks; skipped", "event", e.Type, "error", err)
					break
				}
				payload = b
			}
			now := s.now().UTC()
			ds = append(ds, &Delivery{ID: newID(now), HookID: h.ID, Event: e.Type, State: Pending,
				CreatedAt: now, NextAttemptAt: now, Payload: payload})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	err := s.write(ctx, ds)
	s.kick()
	return err
}

func (s *Service) write(ctx context.Context, ds []*Delivery) error {
	err := s.kv.Update(ctx, func(tx store.Txn) error {
		for _, d := range ds {
			if err := put(tx, nil, d); err != nil {
				return err
			}
		}
		return nil
	}, store.Sync)
	if err == nil || len(ds) == 1 || errors.Is(err, store.ErrClosed) || ctx.Err() != nil {
		return err
	}
	half := len(ds) / 2
	return errors.Join(s.write(ctx, ds[:half]), s.write(ctx, ds[half:]))
}

// due is one queue entry handed to a worker.
type due struct {
	key        []byte // its q/ key
	hookID, id string
}

// dispatch starts attempts for due deliveries, at most webhooks.workers at
// once, until ctx ends.
func (s *Service) dispatch(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next, err := s.launchDue(ctx)
		wait := time.Minute // nothing due: new work kicks the loop
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Error("webhook queue unreadable; trying again", "error", err)
			}
			wait = time.Second
		case !next.IsZero():
			wait = max(next.Sub(s.now()), 0)
		}
		if s.shared {
			// Other nodes queue deliveries, and leave leased ones behind,
			// without kicking this loop.
			wait = min(wait, s.config().PollInterval.D())
		}
		timer.Reset(wait) // since Go 1.23, Reset leaves no stale tick behind
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// launchDue starts an attempt for each due delivery that is not in flight
// while workers are free. It returns when the next delivery comes due, or
// zero when nothing is waiting for time (the queue is empty, or every
// worker is busy and a finishing one will kick the loop).
func (s *Service) launchDue(ctx context.Context) (time.Time, error) {
	s.qmu.Lock()
	free := int(s.config().Workers) - len(s.inflight)
	s.qmu.Unlock()
	if free <= 0 {
		return time.Time{}, nil
	}
	now := s.now()
	var next time.Time
	var batch []due
	err := s.kv.Scan(ctx, []byte(duePrefix), store.ScanOptions{}, func(k, v []byte) error {
		t, id, ok := parseTimeKey(k[len(duePrefix):])
		if !ok {
			return nil
		}
		if t.After(now) {
			next = t
			return store.ErrStop
		}
		s.qmu.Lock()
		busy := s.inflight[id]
		s.qmu.Unlock()
		if busy {
			return nil
		}
		batch = append(batch, due{key: bytes.Clone(k), hookID: string(v), id: id})
		if len(batch) == free {
			return store.ErrStop
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	for _, d := range batch {
		s.qmu.Lock()
		s.inflight[d.id] = true
		s.qmu.Unlock()
		s.attempts.Add(1)
		go s.attempt(d)
	}
	if len(batch) == free {
		return time.Time{}, nil
	}
	return next, nil
}

// attempt sends one delivery once and records the outcome.
func (s *Service) attempt(q due) {
	defer func() {
		s.qmu.Lock()
		delete(s.inflight, q.id)
		s.qmu.Unlock()
		s.attempts.Done()
		s.kick()
	}()
	ctx := s.attemptCtx
	d, err := s.load(ctx, q.hookID, q.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.dropDue(ctx, q.key) // an index entry without its record
		return
	case err != nil:
		s.log.Error("webhook delivery unreadable", "delivery", q.id, "error", err)
		return
	case d.State != Pending || !bytes.Equal(q.key, timeKey(duePrefix, d.NextAttemptAt, d.ID)):
		// The entry was read before the delivery changed (an attempt that
		// just finished moved it): not due under this key.
		s.dropDue(ctx, q.key)
		return
	}
	if s.shared {
		if d, err = s.claim(ctx, q, d); err != nil || d == nil {
			if err != nil && ctx.Err() == nil {
				s.log.Warn("webhook delivery not claimed; trying again", "delivery", q.id, "error", err)
			}
			return // or another node claimed it first
		}
	}
	h, err := s.hook(d.HookID)
	if err != nil && s.shared && s.Refresh(ctx) == nil {
		h, err = s.hook(d.HookID) // a hook another node created
	}
	if err != nil { // the hook was deleted and its deliveries not all removed
		s.removeDelivery(ctx, d)
		return
	}
	status, sendErr := s.send(ctx, h, d)
	if ctx.Err() != nil {
		return // shutting down: the delivery stays pending for the next start
	}
	cfg := s.config()
	now := s.now().UTC()
	var outcome *Delivery
	err = s.kv.Update(ctx, func(tx store.Txn) error {
		cur, err := getDelivery(tx, d.HookID, d.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // its hook was deleted meanwhile
		}
		if err != nil {
			return err
		}
		if cur.State != Pending {
			return nil
		}
		n := *cur
		n.Attempts++
		n.LastAttemptAt, n.LastStatus, n.LastError = now, status, ""
		n.NextAttemptAt = time.Time{}
		switch {
		case sendErr == nil:
			n.State, n.FinishedAt = Delivered, now
		case n.Attempts >= int(cfg.MaxAttempts):
			n.State, n.FinishedAt, n.LastError = Dead, now, sendErr.Error()
		default:
			n.LastError = sendErr.Error()
			n.NextAttemptAt = now.Add(backoff(n.Attempts, cfg, s.rand))
		}
		outcome = &n
		return put(tx, cur, &n)
	}, store.Sync)
	s.counters.attempts.Add(1)
	if outcome != nil {
		switch outcome.State {
		case Delivered:
			s.counters.delivered.Add(1)
		case Dead:
			s.counters.dead.Add(1)
		case Pending:
			s.counters.retries.Add(1)
		}
	}
	switch {
	case err != nil:
		s.log.Error("webhook delivery outcome not recorded; it will be sent again", "delivery", d.ID, "hook", d.HookID, "error", err)
	case outcome == nil:
	case outcome.State == Dead:
		s.log.Warn("webhook delivery dead after its last attempt", "delivery", d.ID, "hook", d.HookID, "event", d.Event, "attempts", outcome.Attempts, "error", outcome.LastError)
	case outcome.State == Pending:
		s.log.Debug("webhook delivery failed; retrying", "delivery", d.ID, "hook", d.HookID, "attempts", outcome.Attempts, "next_attempt_at", outcome.NextAttemptAt, "error", outcome.LastError)
	}
}

// claim leases a due delivery to this node on a store nodes share: its
// next attempt moves to the end of webhooks.claim_lease, so other nodes
// leave it while this one sends it, and send it themselves, with the same
// delivery id, if the lease runs out without an outcome (this node died).
// The outcome replaces the lease. It returns nil when the delivery is no
// longer due under q's key: another node claimed or finished it first.
func (s *Service) claim(ctx context.Context, q due, d *Delivery) (*Delivery, error) {
	until := s.now().UTC().Add(s.config().ClaimLease.D())
	var claimed *Delivery
	err := s.kv.Update(ctx, func(tx store.Txn) error {
		claimed = nil
		cur, err := getDelivery(tx, d.HookID, d.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.State != Pending || !bytes.Equal(q.key, timeKey(duePrefix, cur.NextAttemptAt, cur.ID)) {
			return nil
		}
		n := *cur
		n.NextAttemptAt = until
		claimed = &n
		return put(tx, cur, &n)
	}, store.Sync)
	return claimed, err
}

// send POSTs d to the hook's URL, signed, within webhooks.timeout. It
// returns the response status (0 when none came) and an error unless the
// status is 2xx.
func (s *Service) send(ctx context.Context, h *hook, d *Delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.config().Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, err
	}
	now := s.now()
	ts := strconv.FormatInt(now.Unix(), 10)
	hd := req.Header
	hd.Set("Content-Type", "application/json")
	hd.Set("User-Agent", "Portico-Webhooks/1")
	hd.Set(HeaderDelivery, d.ID)
	hd.Set(HeaderEvent, d.Event)
	hd.Set(HeaderTimestamp, ts)
	hd.Set(HeaderSignature, Signature(h.secrets(now), ts, d.Payload))
	client := s.client.Load()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read a little of the body so the connection can be reused; what the
	// receiver says is not kept.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if client != s.client.Load() {
		client.CloseIdleConnections() // retired by Apply while this one was in flight
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// backoff is the wait after the attempts-th failed attempt: full jitter, a
// uniformly random duration from 0 to min(max_backoff, initial_backoff ×
// 2^(attempts-1)).
func backoff(attempts int, c config.Webhooks, rnd func(int64) int64) time.Duration {
	limit, top := c.InitialBackoff.D(), c.MaxBackoff.D()
	for i := 1; i < attempts && limit < top; i++ {
		limit *= 2
	}
	limit = min(limit, top)
	return time.Duration(rnd(int64(limit) + 1))
}

func (s *Service) load(ctx context.Context, hookID, id string) (*Delivery, error) {
	b, err := s.kv.Get(ctx, deliveryKey(hookID, id))
	if err != nil {
		return nil, err
	}
	var d Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("webhook: decode delivery %s: %w", id, err)
	}
	return &d, nil
}

func (s *Service) dropDue(ctx context.Context, key []byte) {
	if err := s.kv.Delete(ctx, key); err != nil {
		s.log.Warn("stale webhook queue entry not removed", "error", err)
	}
}

func (s *Service) removeDelivery(ctx context.Context, d *Delivery) {
	err := s.kv.Update(ctx, func(tx store.Txn) error {
		cur, err := getDelivery(tx, d.HookID, d.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return remove(tx, cur)
	})
	if err != nil {
		s.log.Warn("delivery of a deleted hook not removed", "delivery", d.ID, "error", err)
	}
}

// purgeBatch bounds the deliveries removed in one transaction.
const purgeBatch = 256

// purge removes every delivery of a hook, a batch per transaction.
func (s *Service) purge(ctx context.Context, hookID string) (int, error) {
	n := 0
	prefix := []byte(deliveryPrefix + hookID + "/")
	for {
		var batch []*Delivery
		err := s.kv.Scan(ctx, prefix, store.ScanOptions{}, func(_, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			batch = append(batch, &d)
			if len(batch) == purgeBatch {
				return store.ErrStop
			}
			return nil
		})
		if err != nil || len(batch) == 0 {
			return n, err
		}
		err = s.kv.Update(ctx, func(tx store.Txn) error {
			for _, d := range batch {
				// Read it again inside the transaction: an attempt that
				// finished since the scan may have moved it to another
				// queue key, and the read makes a concurrent change a
				// conflict that retries this transaction.
				cur, err := getDelivery(tx, d.HookID, d.ID)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := remove(tx, cur); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(batch)
	}
}

// ListDeliveries returns a page of a hook's deliveries, newest first, and
// how many there are; state "" lists every state.
func (s *Service) ListDeliveries(ctx context.Context, hookID, state string, limit, offset int) ([]Delivery, int, error) {
	if _, err := s.hook(hookID); err != nil {
		return nil, 0, err
	}
	prefix := deliveryPrefix + hookID + "/"
	switch state {
	case "":
	case Pending, Delivered, Dead:
		prefix = statePrefix + hookID + "/" + state + "/"
	default:
		return nil, 0, fmt.Errorf("%w: status must be pending, delivered or dead, got %q", ErrInvalid, state)
	}
	total := 0
	var ids []string
	err := s.kv.Scan(ctx, []byte(prefix), store.ScanOptions{Reverse: true, KeysOnly: true}, func(k, _ []byte) error {
		if total >= offset && total < offset+limit && len(k) >= idLen {
			ids = append(ids, string(k[len(k)-idLen:]))
		}
		total++
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Delivery, 0, len(ids))
	for _, id := range ids {
		d, err := s.load(ctx, hookID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // finished and swept, or redelivered, since the scan
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *d)
	}
	return out, total, nil
}

// Redeliver queues a delivered or dead delivery again, due at once and
// with a fresh count of attempts; its id stays the same.
func (s *Service) Redeliver(ctx context.Context, hookID, id string) (Delivery, error) {
	if _, err := s.hook(hookID); err != nil {
		return Delivery{}, err
	}
	if !validID(id) {
		return Delivery{}, fmt.Errorf("%w: delivery %q", ErrNotFound, id)
	}
	var out Delivery
	err := s.kv.Update(ctx, func(tx store.Txn) error {
		cur, err := getDelivery(tx, hookID, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: delivery %q of hook %q", ErrNotFound, id, hookID)
		}
		if err != nil {
			return err
		}
		if cur.State == Pending {
			return fmt.Errorf("%w: delivery %q is still pending (attempt %d of its queue)", ErrConflict, id, cur.Attempts+1)
		}
		n := *cur
		n.State, n.Attempts, n.FinishedAt = Pending, 0, time.Time{}
		n.NextAttemptAt = s.now().UTC()
		out = n
		return put(tx, cur, &n)
	}, store.Sync)
	if err != nil {
		return Delivery{}, err
	}
	s.kick()
	return out, nil
}

// sweepLoop sweeps at start and then every tenth of webhooks.retention,
// at least every hour and at most every second.
func (s *Service) sweepLoop(ctx context.Context) {
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("webhook deliveries not swept", "error", err)
		} else if n > 0 {
			s.log.Info("webhook deliveries swept", "count", n, "retention", s.config().Retention.D())
		}
		t := time.NewTimer(min(max(s.config().Retention.D()/10, time.Second), time.Hour))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Sweep deletes delivered and dead deliveries that finished more than
// webhooks.retention ago and returns how many.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.config().Retention.D())
	n := 0
	for {
		var keys [][]byte
		var hooks []string
		err := s.kv.Scan(ctx, []byte(donePrefix), store.ScanOptions{}, func(k, v []byte) error {
			t, _, ok := parseTimeKey(k[len(donePrefix):])
			if ok && t.After(cutoff) {
				return store.ErrStop
			}
			keys, hooks = append(keys, bytes.Clone(k)), append(hooks, string(v))
			if len(keys) == purgeBatch {
				return store.ErrStop
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return n, err
		}
		err = s.kv.Update(ctx, func(tx store.Txn) error {
			for i, k := range keys {
				_, id, ok := parseTimeKey(k[len(donePrefix):])
				if !ok {
					if err := tx.Delete(k); err != nil {
						return err
					}
					continue
				}
				d, err := getDelivery(tx, hooks[i], id)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if err == nil && d.State != Pending && bytes.Equal(k, timeKey(donePrefix, d.FinishedAt, d.ID)) {
					if err := remove(tx, d); err != nil {
						return err
					}
					continue
				}
				if err := tx.Delete(k); err != nil { // an entry without its delivery
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(keys)
	}
}
