package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/internal/testtool"
)

// TestPostgresOffline: the offline commands on the postgres backend.
// migrate status reads the schema without changing it, keys work on the
// shared database, and backup and restore point to PostgreSQL's tools.
func TestPostgresOffline(t *testing.T) {
	env := []string{"PORTICO_STORAGE__BACKEND=postgres", "PORTICO_STORAGE__POSTGRES__URL=" + testtool.Postgres(t)}
	dir := t.TempDir()
	args := func(a ...string) []string { return append([]string{"--data-dir", dir}, a...) }

	out, err := run(t, env, args("migrate", "status")...)
	if err != nil || strings.Count(out, "pending") < 2 {
		t.Fatalf("migrate status on an empty database: %v\n%s", err, out)
	}
	g, err := core.New(core.Options{Settings: map[string]string{"data_dir": dir, "plugin.embedded": "false", "log.level": "error"}, Environ: append(append([]string{}, smallEnv...), env...), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, env, args("migrate", "status")...)
	if err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "sessions and messages") {
		t.Fatalf("migrate status after a start: %v\n%s", err, out)
	}

	out, err = run(t, env, args("keys", "create", "--name", "ci")...)
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, out)
	}
	id := strings.Fields(strings.Split(out, "\n")[0])[2]
	if out, err := run(t, env, args("keys", "list")...); err != nil || !strings.Contains(out, id) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}

	file := filepath.Join(t.TempDir(), "b.backup")
	if _, err := run(t, env, args("backup", file)...); err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("backup on postgres: %v", err)
	}
	if err := os.WriteFile(file, []byte("not a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, env, args("restore", file)...); err == nil || !strings.Contains(err.Error(), "pg_restore") {
		t.Errorf("restore on postgres: %v", err)
	}
	if _, err := run(t, nil, args("migrate", "status")...); err == nil || !strings.Contains(err.Error(), "only the postgres backend") {
		t.Errorf("migrate status on badger: %v", err)
	}
}
