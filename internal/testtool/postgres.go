package testtool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names a PostgreSQL server tests may create databases on,
// as a URL whose user may CREATE DATABASE (.ci/run starts one).
const PostgresEnv = "PORTICO_TEST_POSTGRES_URL"

// Postgres returns the URL of a new, empty database on the server of
// PostgresEnv, dropped when the test ends; without the variable it skips
// (fails under RequireEnv).
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		msg := PostgresEnv + " is not set (a PostgreSQL server; .ci/run starts one)"
		if os.Getenv(RequireEnv) != "" {
			t.Fatal(msg + " and " + RequireEnv + " is set")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "portico_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s must be a postgres:// URL: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}
