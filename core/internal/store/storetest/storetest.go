// Package storetest runs a feature's tests on every storage backend: a
// package's TestMain calls Run, which runs the whole suite once per
// backend of Backends, and the suite's helpers open their stores with
// Open, which gives the backend of the pass under way.
//
//	func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
//
// Without a PostgreSQL server (testtool.PostgresEnv) the postgres pass
// is skipped with a line saying so; under testtool.RequireEnv it fails.
package storetest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/internal/testtool"
)

// A Backend opens a new, empty store for one test, closed when it ends.
type Backend struct {
	Name string
	Open func(t testing.TB) store.Store
	// Needs is the environment variable the backend needs, if any.
	Needs string
}

// Backends are every backend of the store.
var Backends = []Backend{
	{Name: "badger", Open: func(t testing.TB) store.Store {
		t.Helper()
		s, err := store.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{Name: "postgres", Needs: testtool.PostgresEnv, Open: func(t testing.TB) store.Store {
		t.Helper()
		s, err := store.OpenPostgres(context.Background(), store.PostgresOptions{URL: testtool.Postgres(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

var current = Backends[0]

// Open opens a new store on the backend of the pass under way.
func Open(t testing.TB) store.Store {
	t.Helper()
	return current.Open(t)
}

// Name is the backend of the pass under way.
func Name() string { return current.Name }

// Run runs m once per backend and returns the first failing pass's code.
func Run(m *testing.M) int { return RunOnly(m, "") }

// RunOnly is Run whose passes after the first (the default backend's,
// which runs everything) run only the tests that pattern matches, unless
// -test.run chose them: for a suite where most tests never touch the
// store, so its slow parts do not run twice.
func RunOnly(m *testing.M, pattern string) int {
	flag.Parse()
	chosen := flag.Lookup("test.run").Value.String() != ""
	code := 0
	for i, b := range Backends {
		if i > 0 && pattern != "" && !chosen {
			flag.Set("test.run", pattern)
		}
		if b.Needs != "" && os.Getenv(b.Needs) == "" {
			if os.Getenv(testtool.RequireEnv) != "" {
				fmt.Fprintf(os.Stderr, "storetest: %s is not set, so the %s pass cannot run, and %s is set\n", b.Needs, b.Name, testtool.RequireEnv)
				return 1
			}
			fmt.Fprintf(os.Stderr, "storetest: the %s pass is skipped: %s is not set\n", b.Name, b.Needs)
			continue
		}
		current = b
		fmt.Fprintf(os.Stderr, "storetest: the %s pass\n", b.Name)
		if c := m.Run(); c != 0 {
			fmt.Fprintf(os.Stderr, "storetest: the %s pass failed\n", b.Name)
			if code == 0 {
				code = c
			}
		}
	}
	return code
}

// UsesIndex fails t unless PostgreSQL's plan of sql reads table through
// an index, with no sequential scan of it.
func UsesIndex(t testing.TB, db *store.Postgres, table, sql string, args ...any) {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if strings.Contains(plan, "Seq Scan on "+table) || !strings.Contains(plan, "Index") {
		t.Errorf("the query scans %s:\n%s\n%s", table, sql, plan)
	}
}
