package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/internal/testtool"
)

// TestPostgresMigrations starts several stores at once on an empty
// database: the migrations run once, every store opens, and a schema
// newer than the build is refused.
func TestPostgresMigrations(t *testing.T) {
	t.Parallel()
	url := testtool.Postgres(t)
	ctx := context.Background()
	pending, err := store.PostgresMigrations(ctx, store.PostgresOptions{URL: url})
	if err != nil {
		t.Fatalf("PostgresMigrations on an empty database: %v", err)
	}
	for _, m := range pending {
		if m.AppliedAt != nil || !m.Known {
			t.Fatalf("empty database: %+v, want pending and known", m)
		}
	}
	if len(pending) != store.SchemaVersion() {
		t.Fatalf("%d migrations listed, want %d", len(pending), store.SchemaVersion())
	}

	const nodes = 4
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			s, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url})
			if err == nil {
				err = s.Set(ctx, []byte{byte('a' + i)}, []byte("v"))
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM portico_schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != store.SchemaVersion() || distinct != rows {
		t.Fatalf("portico_schema_migrations has %d rows (%d versions), want each of %d once", rows, distinct, store.SchemaVersion())
	}
	applied, err := store.PostgresMigrations(ctx, store.PostgresOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range applied {
		if m.AppliedAt == nil {
			t.Fatalf("after start: %+v is still pending", m)
		}
	}

	if _, err := conn.Exec(ctx, `INSERT INTO portico_schema_migrations (version, name) VALUES ($1, 'from the future')`, store.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if s, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url}); !errors.Is(err, store.ErrSchemaTooNew) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenPostgres on a newer schema = %v, want ErrSchemaTooNew", err)
	}
	listed, err := store.PostgresMigrations(ctx, store.PostgresOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if last := listed[len(listed)-1]; last.Known || last.Version != store.SchemaVersion()+1 || last.AppliedAt == nil {
		t.Fatalf("the newer migration is listed as %+v", last)
	}
}

// TestPostgresUnreachable: a server that cannot be reached is
// ErrUnavailable, and a bad URL a plain error naming the key.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: "postgres://nobody@127.0.0.1:1/none", ConnectTimeout: time.Second})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("OpenPostgres on a closed port = %v, want ErrUnavailable", err)
	}
	for _, url := range []string{"", "postgres://[::1", "postgres://db:notaport/x"} {
		_, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url})
		if err == nil || errors.Is(err, store.ErrUnavailable) || !bytes.Contains([]byte(err.Error()), []byte("storage.postgres")) {
			t.Errorf("OpenPostgres(%q) = %v, want an error naming storage.postgres.url", url, err)
		}
	}
}

// TestPostgresUpdateRetriesSerialization: two transactions that read and
// write the same keys in opposite orders both land (one is retried).
func TestPostgresUpdateRetriesSerialization(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	ctx := context.Background()
	mustSet(t, s, "x", "0")
	mustSet(t, s, "y", "0")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			a, b := []byte("x"), []byte("y")
			if i%2 == 1 {
				a, b = b, a
			}
			err := s.Update(ctx, func(tx store.Txn) error {
				va, err := tx.Get(a)
				if err != nil {
					return err
				}
				vb, err := tx.Get(b)
				if err != nil {
					return err
				}
				// Write each key with the other's value plus one mark:
				// lost updates would show as a mark missing.
				if err := tx.Set(a, append(vb, '.')); err != nil {
					return err
				}
				return tx.Set(b, append(va, '.'))
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	x, y := mustGet(t, s, "x"), mustGet(t, s, "y")
	if got := len(x) + len(y) - 2; got != 40 {
		t.Fatalf("x=%q y=%q: %d marks, want 40 (an update was lost)", x, y, got)
	}
}
