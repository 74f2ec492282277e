package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A migration moves the PostgreSQL schema one version up. Migrations are
// only ever appended: a released one never changes.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = []migration{
	{1, "key-value table", `CREATE TABLE portico_kv (k bytea PRIMARY KEY, v bytea NOT NULL)`},
	{2, "sessions and messages", `
CREATE TABLE portico_sessions (
	id              text PRIMARY KEY,
	owner           text NOT NULL,
	channel         text NOT NULL,
	user_id         text NOT NULL,
	created_at      timestamptz NOT NULL,
	last_activity   timestamptz NOT NULL,
	last_message_at timestamptz,
	terminated      boolean NOT NULL DEFAULT false,
	record          bytea NOT NULL
);
CREATE INDEX portico_sessions_created ON portico_sessions (created_at DESC, id DESC);
CREATE INDEX portico_sessions_owner ON portico_sessions (owner, created_at DESC, id DESC);
CREATE INDEX portico_sessions_channel ON portico_sessions (channel, created_at DESC, id DESC);
CREATE INDEX portico_sessions_user ON portico_sessions (user_id, created_at DESC, id DESC);
CREATE INDEX portico_sessions_activity ON portico_sessions (terminated, last_activity);
CREATE TABLE portico_messages (
	session_id text NOT NULL REFERENCES portico_sessions (id) ON DELETE CASCADE,
	seq        bigint NOT NULL,
	record     bytea NOT NULL,
	PRIMARY KEY (session_id, seq)
);
CREATE TABLE portico_idempotency (
	key        text PRIMARY KEY,
	created_at timestamptz NOT NULL,
	turn       bytea NOT NULL
);
CREATE INDEX portico_idempotency_created ON portico_idempotency (created_at);
-- Exact totals that no index can count cheaply (every session).
CREATE TABLE portico_counters (name text PRIMARY KEY, n bigint NOT NULL);
INSERT INTO portico_counters (name, n) VALUES ('sessions', 0);`},
	{3, "audit trail", `
CREATE TABLE portico_audit (
	id     text PRIMARY KEY,
	at     bigint NOT NULL, -- the entry's time in Unix nanoseconds, as exact as Badger's keys
	actor  text NOT NULL,
	action text NOT NULL,
	entry  bytea NOT NULL
);
CREATE INDEX portico_audit_at ON portico_audit (at DESC, id DESC);
CREATE INDEX portico_audit_actor ON portico_audit (actor, at DESC, id DESC);
CREATE INDEX portico_audit_action ON portico_audit (action, at DESC, id DESC);
INSERT INTO portico_counters (name, n) VALUES ('audit', 0);`},
	{4, "usage ledger", `
CREATE TABLE portico_usage (
	day           date NOT NULL,
	account       text NOT NULL,
	model         text NOT NULL,
	input_tokens  bigint NOT NULL,
	output_tokens bigint NOT NULL,
	requests      bigint NOT NULL,
	PRIMARY KEY (day, account, model)
);
CREATE INDEX portico_usage_account ON portico_usage (account, day);`},
}

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrationLock is the advisory lock key that serializes migrations
// across nodes starting at once ("portico" in ASCII, truncated).
const migrationLock int64 = 0x706f727469636f

const sqlMigrationsTable = `CREATE TABLE IF NOT EXISTS portico_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate applies the migrations the database lacks, each in its own
// transaction, holding the advisory lock so that of two nodes starting at
// once one migrates and the other then finds nothing to do. It returns
// how many it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage.postgres: %w: %w", ErrUnavailable, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return 0, fmt.Errorf("storage.postgres: taking the migration lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // closing the session lets the lock go
		}
	}()
	if _, err := conn.Exec(ctx, sqlMigrationsTable); err != nil {
		return 0, fmt.Errorf("storage.postgres: creating portico_schema_migrations: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM portico_schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("storage.postgres: reading the schema version: %w", err)
	}
	if current > SchemaVersion() {
		return 0, fmt.Errorf("%w: the database is at version %d and this build knows up to %d; run the newer Portico, or restore a backup made before it migrated", ErrSchemaTooNew, current, SchemaVersion())
	}
	n := 0
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO portico_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("storage.postgres: migration %d (%s): %w", m.version, m.name, err)
		}
		log.Info("schema migrated", "version", m.version, "name", m.name)
		n++
	}
	return n, nil
}

// MigrationState is one migration as a database has it.
type MigrationState struct {
	Version   int        `json:"version"`
	Name      string     `json:"name"`
	AppliedAt *time.Time `json:"applied_at"` // nil: pending
	// Known is false for a migration the database has from a newer build.
	Known bool `json:"known"`
}

// PostgresMigrations reports every migration this build knows and every
// one the database has, oldest first, without changing anything.
func PostgresMigrations(ctx context.Context, o PostgresOptions) ([]MigrationState, error) {
	pool, err := openPool(ctx, o)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	applied := map[int]MigrationState{}
	rows, err := pool.Query(ctx, `SELECT version, name, applied_at FROM portico_schema_migrations ORDER BY version`)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table: nothing applied yet
	case err != nil:
		return nil, fmt.Errorf("storage.postgres: reading portico_schema_migrations: %w", err)
	default:
		for rows.Next() {
			var m MigrationState
			var at time.Time
			if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
				rows.Close()
				return nil, err
			}
			m.AppliedAt = &at
			applied[m.Version] = m
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	var out []MigrationState
	for _, m := range migrations {
		st := MigrationState{Version: m.version, Name: m.name, Known: true}
		if a, ok := applied[m.version]; ok {
			st.AppliedAt = a.AppliedAt
			delete(applied, m.version)
		}
		out = append(out, st)
	}
	for _, v := range slices.Sorted(maps.Keys(applied)) {
		out = append(out, applied[v])
	}
	return out, nil
}
