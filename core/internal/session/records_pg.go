package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/porticohq/portico/core/internal/store"
)

// ErrBusy is a turn that waited for another node's turn of the same
// session (or use of the same Idempotency-Key) longer than
// storage.postgres.statement_timeout.
var ErrBusy = errors.New("session is busy")

// pgRecords keeps records in PostgreSQL's tables (migration 2 in
// store/postgres_schema.go): every node sees every session, lists go
// through the tables' indexes, and a session's turns are serialized
// across nodes by an advisory lock held for the turn.
type pgRecords struct {
	db    *store.Postgres
	locks keyedLocks // this node's turns queue here, not on connections
}

var _ records = (*pgRecords)(nil)

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// heldConn is the context key of the connection that holds a lock: what
// runs under the lock uses it, so a turn takes one connection.
type heldConn struct{}

func (r *pgRecords) q(ctx context.Context) querier {
	if c, ok := ctx.Value(heldConn{}).(*pgxpool.Conn); ok && c != nil {
		return c
	}
	return r.db.Pool()
}

// unheld returns ctx without the lock's connection, for work (a skill
// call) that may run on other goroutines: a connection serves one at a
// time.
func unheld(ctx context.Context) context.Context {
	if c, ok := ctx.Value(heldConn{}).(*pgxpool.Conn); ok && c != nil {
		return context.WithValue(ctx, heldConn{}, (*pgxpool.Conn)(nil))
	}
	return ctx
}

func (r *pgRecords) fail(ctx context.Context, err error) error { return r.db.Fail(ctx, err) }

// sqlCount is the number of sessions, kept in portico_counters by create
// (sessions are terminated, never deleted): no count over the table.
const sqlCount = `SELECT n FROM portico_counters WHERE name = 'sessions'`

func (r *pgRecords) count(ctx context.Context) (int, error) {
	var n int
	err := r.q(ctx).QueryRow(ctx, sqlCount).Scan(&n)
	return n, r.fail(ctx, err)
}

func (r *pgRecords) get(ctx context.Context, id string) (Session, error) {
	var b []byte
	err := r.q(ctx).QueryRow(ctx, `SELECT record FROM portico_sessions WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Session{}, r.fail(ctx, err)
	}
	return decodeSession(id, b)
}

// columns are a session's indexed fields beside its record.
func columns(se *Session) (last time.Time, lastMessage *time.Time, terminated bool, record []byte, err error) {
	record, err = json.Marshal(se)
	return se.LastActivity, se.LastMessageAt, se.TerminatedAt != nil, record, err
}

func (r *pgRecords) create(ctx context.Context, se *Session) error {
	last, lastMsg, term, rec, err := columns(se)
	if err != nil {
		return err
	}
	_, err = r.q(ctx).Exec(ctx, `WITH s AS (INSERT INTO portico_sessions (id, owner, channel, user_id, created_at, last_activity, last_message_at, terminated, record)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING 1)
UPDATE portico_counters SET n = n + (SELECT count(*) FROM s) WHERE name = 'sessions'`, se.ID, se.Owner, se.Channel, se.UserID, se.CreatedAt, last, lastMsg, term, rec)
	if err != nil {
		return fmt.Errorf("storing session: %w", r.fail(ctx, err))
	}
	return nil
}

const sqlSaveSession = `UPDATE portico_sessions SET last_activity = $2, last_message_at = $3, terminated = $4, record = $5 WHERE id = $1`

func (r *pgRecords) save(ctx context.Context, se *Session) error {
	last, lastMsg, term, rec, err := columns(se)
	if err != nil {
		return err
	}
	if _, err := r.q(ctx).Exec(ctx, sqlSaveSession, se.ID, last, lastMsg, term, rec); err != nil {
		return fmt.Errorf("storing session: %w", r.fail(ctx, err))
	}
	return nil
}

// append is one statement (a data-modifying CTE), so it commits on its
// own: the message and its session, or neither. The primary key refuses
// a second message at the same place in the transcript.
func (r *pgRecords) append(ctx context.Context, m *Message, se *Session) error {
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	last, lastMsg, term, rec, err := columns(se)
	if err != nil {
		return err
	}
	_, err = r.q(ctx).Exec(ctx, `WITH m AS (INSERT INTO portico_messages (session_id, seq, record) VALUES ($1, $6, $7))
`+sqlSaveSession, se.ID, last, lastMsg, term, rec, m.Seq, mb)
	if err != nil {
		return fmt.Errorf("storing message: %w", r.fail(ctx, err))
	}
	return nil
}

func (r *pgRecords) history(ctx context.Context, se *Session, n int) ([]HistoryItem, error) {
	rows, err := r.q(ctx).Query(ctx, `SELECT record FROM portico_messages WHERE session_id = $1 AND seq > $2 ORDER BY seq`, se.ID, se.MessageCount-int64(n))
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	out := []HistoryItem{}
	err = scanRecords(rows, func(m *Message) { out = append(out, HistoryItem{Role: m.Role, Text: m.Text}) })
	return out, r.fail(ctx, err)
}

func (r *pgRecords) messages(ctx context.Context, id string, limit, offset int) ([]Message, error) {
	rows, err := r.q(ctx).Query(ctx, `SELECT record FROM portico_messages WHERE session_id = $1 ORDER BY seq LIMIT $2 OFFSET $3`, id, limit, offset)
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	out := []Message{}
	err = scanRecords(rows, func(m *Message) { out = append(out, *m) })
	return out, r.fail(ctx, err)
}

// scanRecords decodes rows of one record column into T and hands each to
// fn; it closes rows.
func scanRecords[T any](rows pgx.Rows, fn func(*T)) error {
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		fn(&v)
	}
	return rows.Err()
}

// listWhere is a Filter as SQL conditions and their arguments; each
// condition has an index that leads with its column (migration 2).
func listWhere(f Filter, idleBefore time.Time) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.AnyOwner {
		add("owner = ?", f.Owner)
	}
	if f.UserID != "" {
		add("user_id = ?", f.UserID)
	}
	if f.Channel != "" {
		add("channel = ?", f.Channel)
	}
	switch f.Status {
	case Terminated:
		conds = append(conds, "terminated")
	case Idle:
		add("NOT terminated AND last_activity <= ?", idleBefore)
	case Active:
		add("NOT terminated AND last_activity > ?", idleBefore)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// listQueries are the page and total queries of a filter.
func listQueries(f Filter, idleBefore time.Time) (page, total string, args []any) {
	where, args := listWhere(f, idleBefore)
	n := len(args)
	page = "SELECT record FROM portico_sessions" + where + " ORDER BY created_at DESC, id DESC LIMIT $" + strconv.Itoa(n+1) + " OFFSET $" + strconv.Itoa(n+2)
	total = sqlCount
	if where != "" {
		total = "SELECT count(*) FROM portico_sessions" + where
	}
	return page, total, args
}

func (r *pgRecords) list(ctx context.Context, f Filter, idleBefore time.Time) ([]Session, int, error) {
	page, total, args := listQueries(f, idleBefore)
	q := r.q(ctx)
	var n int
	if err := q.QueryRow(ctx, total, args...).Scan(&n); err != nil {
		return nil, 0, r.fail(ctx, err)
	}
	rows, err := q.Query(ctx, page, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, r.fail(ctx, err)
	}
	out := []Session{}
	if err := scanRecords(rows, func(se *Session) { out = append(out, *se) }); err != nil {
		return nil, 0, r.fail(ctx, err)
	}
	return out, n, nil
}

func (r *pgRecords) channelStats(ctx context.Context, idleBefore time.Time) (map[string]ChannelStats, error) {
	rows, err := r.q(ctx).Query(ctx, `SELECT channel, count(*) FILTER (WHERE NOT terminated AND last_activity > $1), max(last_message_at)
FROM portico_sessions GROUP BY channel`, idleBefore)
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	defer rows.Close()
	out := map[string]ChannelStats{}
	for rows.Next() {
		var name string
		var st ChannelStats
		if err := rows.Scan(&name, &st.ActiveSessions, &st.LastMessageAt); err != nil {
			return nil, r.fail(ctx, err)
		}
		if st.LastMessageAt != nil {
			t := st.LastMessageAt.UTC()
			st.LastMessageAt = &t
		}
		out[name] = st
	}
	return out, r.fail(ctx, rows.Err())
}

func (r *pgRecords) latest(ctx context.Context, channel, user string) (string, error) {
	var id string
	err := r.q(ctx).QueryRow(ctx, `SELECT id FROM portico_sessions WHERE user_id = $1 AND channel = $2 AND NOT terminated
ORDER BY created_at DESC, id DESC LIMIT 1`, user, channel).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, r.fail(ctx, err)
}

// lock takes this node's lock on key, then a session-level advisory lock
// on one connection, which what runs under the lock then uses (a lock
// taken under another reuses its connection). The wait for another
// node's holder is bounded by storage.postgres.statement_timeout.
func (r *pgRecords) lock(ctx context.Context, key string) (context.Context, func(), error) {
	held, _, unlock, err := r.locked(ctx, key, "")
	return held, unlock, err
}

// lockSession locks the session and reads it in one round trip: the read
// is a second statement of the same pipeline, which PostgreSQL runs once
// the lock is granted, with a snapshot taken then (READ COMMITTED), so it
// sees the last turn another node committed before letting go.
func (r *pgRecords) lockSession(ctx context.Context, id string) (context.Context, Session, func(), error) {
	held, b, unlock, err := r.locked(ctx, id, id)
	if err != nil {
		return ctx, Session{}, nil, err
	}
	if b == nil {
		unlock()
		return ctx, Session{}, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	se, err := decodeSession(id, b)
	if err != nil {
		unlock()
		return ctx, Session{}, nil, err
	}
	return held, se, unlock, nil
}

// locked takes the lock on key and, when read is a session id, reads that
// session's record in the same round trip (nil: no such session).
func (r *pgRecords) locked(ctx context.Context, key, read string) (context.Context, []byte, func(), error) {
	unlockLocal := r.locks.lock(key)
	conn, _ := ctx.Value(heldConn{}).(*pgxpool.Conn)
	owned := conn == nil
	if owned {
		c, err := r.db.Pool().Acquire(ctx)
		if err != nil {
			unlockLocal()
			return ctx, nil, nil, r.fail(ctx, err)
		}
		conn = c
	}
	id := lockID(key)
	unlock := func() {
		_, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, id)
		if owned {
			if err != nil {
				conn.Hijack().Close(context.WithoutCancel(ctx)) // the lock goes with the session
			} else {
				conn.Release()
			}
		}
		unlockLocal()
	}
	var b []byte
	var err error
	if read == "" {
		_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, id)
	} else {
		batch := &pgx.Batch{}
		batch.Queue(`SELECT pg_advisory_lock($1)`, id)
		batch.Queue(`SELECT record FROM portico_sessions WHERE id = $1`, read)
		br := conn.SendBatch(ctx, batch)
		if _, err = br.Exec(); err == nil {
			if err = br.QueryRow().Scan(&b); errors.Is(err, pgx.ErrNoRows) {
				b, err = nil, nil
			}
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				unlock() // the lock was granted; the read failed
				return ctx, nil, nil, r.fail(ctx, err)
			}
		} else {
			br.Close()
		}
	}
	if err != nil {
		if owned {
			// The wait was cut short: close the session, so that a lock
			// granted just then cannot outlive it.
			conn.Hijack().Close(context.WithoutCancel(ctx))
		}
		unlockLocal()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "57014" && ctx.Err() == nil {
			return ctx, nil, nil, fmt.Errorf("%w: another node held it longer than storage.postgres.statement_timeout", ErrBusy)
		}
		return ctx, nil, nil, r.fail(ctx, err)
	}
	return context.WithValue(ctx, heldConn{}, conn), b, unlock, nil
}

// lockID is key's advisory lock, the same on every node (FNV-1a): keys
// that collide only wait for each other.
func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int64(h.Sum64())
}

func (r *pgRecords) idempotent(ctx context.Context, key string) (idemRecord, bool, error) {
	var rec idemRecord
	var b []byte
	err := r.q(ctx).QueryRow(ctx, `SELECT created_at, turn FROM portico_idempotency WHERE key = $1`, key).Scan(&rec.At, &b)
	if errors.Is(err, pgx.ErrNoRows) {
		return idemRecord{}, false, nil
	}
	if err != nil {
		return idemRecord{}, false, r.fail(ctx, err)
	}
	if err := json.Unmarshal(b, &rec.Turn); err != nil {
		return idemRecord{}, false, fmt.Errorf("idempotency record: %w", err)
	}
	return rec, true, nil
}

func (r *pgRecords) remember(ctx context.Context, key string, rec idemRecord) error {
	b, err := json.Marshal(rec.Turn)
	if err != nil {
		return err
	}
	_, err = r.q(ctx).Exec(ctx, `INSERT INTO portico_idempotency (key, created_at, turn) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET created_at = EXCLUDED.created_at, turn = EXCLUDED.turn`, key, rec.At, b)
	return r.fail(ctx, err)
}

func (r *pgRecords) forgetBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := r.q(ctx).Exec(ctx, `DELETE FROM portico_idempotency WHERE created_at < $1`, t)
	return int(tag.RowsAffected()), r.fail(ctx, err)
}
