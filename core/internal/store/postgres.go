package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresOptions configure a PostgreSQL store (storage.postgres.*).
type PostgresOptions struct {
	URL string // a libpq URL or key=value string
	// MaxConns bounds the pool (0: pgx's default, the larger of 4 and
	// the number of CPUs).
	MaxConns int32
	// StatementTimeout ends a statement the server has run for this long
	// (0: the server's setting).
	StatementTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (0: 10 s).
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Postgres is a Store on PostgreSQL: the key-value surface is one table,
// portico_kv (k bytea primary key, v bytea), and features that need more
// than keys (sessions) have their own tables, created by the versioned
// migrations in postgres_schema.go. Every write is durable when it
// returns (the server's synchronous_commit), so Sync changes nothing.
type Postgres struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
	log    *slog.Logger
}

// OpenPostgres connects, checks the server answers, and brings the schema
// up to date under an advisory lock (MigratePostgres); it refuses a
// database whose schema is newer than this build knows.
func OpenPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	pool, err := openPool(ctx, o)
	if err != nil {
		return nil, err
	}
	s := &Postgres{pool: pool, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if _, err := migrate(ctx, pool, s.log); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func openPool(ctx context.Context, o PostgresOptions) (*pgxpool.Pool, error) {
	if strings.TrimSpace(o.URL) == "" {
		return nil, errors.New("storage.postgres.url is empty: set it to the database's URL, such as postgres://portico@db:5432/portico")
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("storage.postgres.url: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	if o.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	}
	rp := cfg.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = "portico"
	}
	// Statements outside Update's transactions rely on a snapshot per
	// statement (a session turn reads its session in the pipeline that
	// waits for its lock), whatever the server's default is.
	rp["default_transaction_isolation"] = "read committed"
	if o.StatementTimeout > 0 {
		rp["statement_timeout"] = strconv.FormatInt(max(1, o.StatementTimeout.Milliseconds()), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage.postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage.postgres: %w: %w", ErrUnavailable, err)
	}
	return pool, nil
}

// Pool is the connection pool, for features that keep their own tables.
func (s *Postgres) Pool() *pgxpool.Pool { return s.pool }

func (s *Postgres) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Fail turns a pgx error into the store's: ErrClosed after Close,
// ErrUnavailable when the server cannot be reached or cannot serve now,
// and other errors unchanged. Callers' context errors stay theirs.
func (s *Postgres) Fail(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case s.closed.Load():
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case unreachable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// unreachable reports whether err means the database could not serve the
// statement at all (connection refused or lost, the server shutting down
// or refusing connections, a statement timeout), as opposed to refusing
// the statement itself.
func unreachable(err error) bool {
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, cannot connect now
			pe.Code == "53300", // too many connections
			pe.Code == "57014": // statement timeout
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) || strings.Contains(err.Error(), "conn closed")
}

// retryable reports a serialization failure or deadlock: the transaction
// lost to a concurrent one and runs again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Get implements KV.
func (s *Postgres) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT v FROM portico_kv WHERE k = $1`, key).Scan(&v)
	if err != nil {
		return nil, s.Fail(ctx, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

const (
	sqlUpsert = `INSERT INTO portico_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`
	sqlDelete = `DELETE FROM portico_kv WHERE k = $1`
	// sqlWrite applies a transaction's writes in one statement: the
	// deletes in a data-modifying CTE, then the upserts.
	sqlWrite = `WITH d AS (DELETE FROM portico_kv WHERE k = ANY($3::bytea[]))
INSERT INTO portico_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`
)

// errEmptyKey refuses an empty key, as Badger does.
var errEmptyKey = errors.New("store: the key is empty")

// Set implements KV.
func (s *Postgres) Set(ctx context.Context, key, value []byte, _ ...WriteOption) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(key) == 0 {
		return errEmptyKey
	}
	if value == nil {
		value = []byte{}
	}
	_, err := s.pool.Exec(ctx, sqlUpsert, key, value)
	return s.Fail(ctx, err)
}

// Delete implements KV.
func (s *Postgres) Delete(ctx context.Context, key []byte, _ ...WriteOption) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(key) == 0 {
		return errEmptyKey
	}
	_, err := s.pool.Exec(ctx, sqlDelete, key)
	return s.Fail(ctx, err)
}

// Update implements KV. The transaction is SERIALIZABLE and begins at
// fn's first read; one that lost to a concurrent transaction runs again,
// as Badger's does. A transaction that only writes needs no BEGIN: its
// writes are one statement, atomic on its own.
func (s *Postgres) Update(ctx context.Context, fn func(Txn) error, _ ...WriteOption) error {
	for attempt := 0; ; attempt++ {
		if err := s.check(ctx); err != nil {
			return err
		}
		err := s.update(ctx, fn)
		if retryable(err) && attempt < maxConflictRetries {
			if err := conflictBackoff(ctx, attempt); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// update runs fn once; fn's own errors come back unchanged.
func (s *Postgres) update(ctx context.Context, fn func(Txn) error) (err error) {
	t := &pgTxn{s: s, ctx: ctx, writes: map[string][]byte{}}
	defer func() {
		if t.tx != nil {
			t.tx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit
		}
	}()
	if err := fn(t); err != nil {
		if t.failed != nil && errors.Is(err, t.failed) && retryable(t.failed) {
			return t.failed // the read lost to a concurrent transaction: run again
		}
		return err
	}
	if len(t.writes) > 0 {
		keys := make([]string, 0, len(t.writes))
		for k := range t.writes {
			keys = append(keys, k)
		}
		slices.Sort(keys) // one order for every writer: no deadlocks between them
		var sk, sv, del [][]byte
		for _, k := range keys {
			if v := t.writes[k]; v == nil {
				del = append(del, []byte(k))
			} else {
				sk, sv = append(sk, []byte(k)), append(sv, v)
			}
		}
		var q interface {
			Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
		} = s.pool
		if t.tx != nil {
			q = t.tx
		}
		if _, err := q.Exec(ctx, sqlWrite, sk, sv, del); err != nil {
			return s.failTx(ctx, err)
		}
	}
	if t.tx != nil {
		if err := t.tx.Commit(ctx); err != nil {
			return s.failTx(ctx, err)
		}
	}
	return nil
}

// failTx keeps a serialization failure as it is, for Update to retry.
func (s *Postgres) failTx(ctx context.Context, err error) error {
	if retryable(err) {
		return err
	}
	return s.Fail(ctx, err)
}

// pgTxn buffers writes (a nil value is a delete) and reads through them.
type pgTxn struct {
	s      *Postgres
	ctx    context.Context
	tx     pgx.Tx
	writes map[string][]byte
	failed error // the first database error a read returned
}

func (t *pgTxn) Get(key []byte) ([]byte, error) {
	if v, ok := t.writes[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	if t.tx == nil {
		tx, err := t.s.pool.BeginTx(t.ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			t.failed = t.s.Fail(t.ctx, err)
			return nil, t.failed
		}
		t.tx = tx
	}
	var v []byte
	err := t.tx.QueryRow(t.ctx, `SELECT v FROM portico_kv WHERE k = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		t.failed = t.s.failTx(t.ctx, err)
		return nil, t.failed
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (t *pgTxn) Set(key, value []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	t.writes[string(key)] = append([]byte{}, value...) // never nil
	return nil
}

func (t *pgTxn) Delete(key []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	t.writes[string(key)] = nil
	return nil
}

// scanPage is how many rows one query of a Scan reads. A Scan is a series
// of such pages (keyset paging on the primary key), so fn runs while no
// statement is open and may use the store; unlike Badger's, one Scan is
// not one snapshot: a key written behind the cursor during the scan is
// not seen.
const scanPage = 256

// Scan implements KV.
func (s *Postgres) Scan(ctx context.Context, prefix []byte, opts ScanOptions, fn func(key, value []byte) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	cols := "k, v"
	if opts.KeysOnly {
		cols = "k, NULL::bytea"
	}
	end := prefixEnd(prefix)
	var cursor []byte
	for {
		where, args := []string{"k >= $1"}, []any{prefix}
		if end != nil {
			args = append(args, end)
			where = append(where, "k < $"+strconv.Itoa(len(args)))
		}
		order := "k"
		if cursor != nil {
			args = append(args, cursor)
			op := " > $"
			if opts.Reverse {
				op = " < $"
			}
			where = append(where, "k"+op+strconv.Itoa(len(args)))
		}
		if opts.Reverse {
			order = "k DESC"
		}
		q := "SELECT " + cols + " FROM portico_kv WHERE " + strings.Join(where, " AND ") + " ORDER BY " + order + " LIMIT " + strconv.Itoa(scanPage)
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return s.Fail(ctx, err)
		}
		var keys, vals [][]byte
		for rows.Next() {
			var k, v []byte
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return s.Fail(ctx, err)
			}
			if v == nil && !opts.KeysOnly {
				v = []byte{}
			}
			keys, vals = append(keys, k), append(vals, v)
		}
		if err := rows.Err(); err != nil {
			return s.Fail(ctx, err)
		}
		for i, k := range keys {
			if err := fn(k, vals[i]); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		if len(keys) < scanPage {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cursor = keys[len(keys)-1]
	}
}

// prefixEnd is the smallest key greater than every key with prefix, or
// nil when there is none (an empty prefix, or one of 0xff bytes only).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Backup implements Store: PostgreSQL is backed up with its own tools.
func (s *Postgres) Backup(context.Context, io.Writer) error { return s.BackupUnsupported() }

// BackupUnsupported implements NoBackup.
func (s *Postgres) BackupUnsupported() error {
	return fmt.Errorf("%w: on PostgreSQL, back up the database with pg_dump and restore it with pg_restore (docs/operations.md)", ErrBackupUnsupported)
}

// CollectGarbage implements Store: PostgreSQL's autovacuum reclaims space.
func (s *Postgres) CollectGarbage(float64) (int, error) { return 0, nil }

// Size implements Store; the database's size is PostgreSQL's to report.
func (s *Postgres) Size() Size { return Size{} }

// Close implements Store.
func (s *Postgres) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}
