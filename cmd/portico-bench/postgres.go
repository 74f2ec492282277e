package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/porticohq/portico/internal/testtool"
)

// startOnPostgres runs Portico as the main target is run, with
// storage.backend = "postgres" on a new database of the server at
// o.postgres, and returns a func that drops the database. The target's
// CPU counts the PostgreSQL server's processes too: they do the work
// Badger does inside Portico.
func startOnPostgres(ctx context.Context, o options, work string) (*target, func(), error) {
	dbURL, dropDB, err := testtool.CreateDatabase(ctx, o.postgres, "portico_bench_")
	if err != nil {
		return nil, nil, fmt.Errorf("-postgres: %w", err)
	}
	drop := func() { dropDB() }
	cfg := filepath.Join(work, "bench-postgres.toml")
	body := benchConfig + loadedFirst + fmt.Sprintf("[storage]\nbackend = \"postgres\"\n[storage.postgres]\nurl = %q\n", dbURL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		drop()
		return nil, nil, err
	}
	dir := filepath.Join(work, "data-postgres")
	os.MkdirAll(dir, 0o700)
	fmt.Fprintln(os.Stderr, "starting portico on PostgreSQL...")
	t, _, err := startPortico(ctx, o.portico, dir, cfg)
	if err != nil {
		drop()
		return nil, nil, err
	}
	t.alsoCPU = postgresCPU
	return t, drop, nil
}

// postgresCPU is the user+system CPU time of every process named
// postgres on the machine (Linux), or -1.
func postgresCPU() time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	var total time.Duration
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != "postgres" {
			continue
		}
		total += statCPU(s[end+2:])
	}
	return total
}
