//go:build unix

package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/porticohq/portico/core/internal/store"
)

func TestLock(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	first, err := store.Open(dir, smallOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })

	second, err := store.Open(dir, smallOpts)
	if err == nil {
		second.Close()
		t.Fatal("second Open on a held data dir succeeded")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// The refused Open must not have disturbed the holder.
	mustSet(t, first, "k", "v")
	if got := mustGet(t, first, "k"); string(got) != "v" {
		t.Fatalf("Get = %q after a refused Open", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, store.LockFile)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, %v; want this pid", b, err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := store.Open(dir, smallOpts)
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	defer third.Close()
	if got := mustGet(t, third, "k"); string(got) != "v" {
		t.Fatalf("Get after reopen = %q", got)
	}
}

// TestLockReleasedWhenOpenFails checks that a failed Badger open gives the
// data dir's lock back, so fixing the dir and retrying works.
func TestLockReleasedWhenOpenFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, store.DBDir)
	if err := os.WriteFile(dbPath, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s, err := store.Open(dir, smallOpts)
		if err == nil {
			s.Close()
			t.Fatal("Open with a regular file where the db dir goes succeeded")
		}
		if errors.Is(err, store.ErrLocked) {
			t.Fatalf("attempt %d: Open = %v; the failed attempt kept the lock", i, err)
		}
		if !strings.Contains(err.Error(), dir) {
			t.Fatalf("error %q does not mention %s", err, dir)
		}
	}
	if err := os.Remove(dbPath); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(dir, smallOpts)
	if err != nil {
		t.Fatalf("Open after fixing the dir = %v", err)
	}
	s.Close()
}

func TestOpenUnwritable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		needsUser bool // root ignores permission bits
		setup     func(t *testing.T) string
	}{
		{"parent is a regular file", false, func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "data")
		}},
		{"data dir is a regular file", false, func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "data")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}},
		{"data dir is read-only", true, func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(d, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(d, 0o700) })
			return d
		}},
		{"parent is read-only", true, func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "parent")
			if err := os.Mkdir(p, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o700) })
			return filepath.Join(p, "data")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.needsUser && os.Geteuid() == 0 {
				t.Skip("running as root, which ignores permission bits, so the dir is writable anyway")
			}
			dir := c.setup(t)
			s, err := store.Open(dir, smallOpts)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", dir)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q does not mention %s", err, dir)
			}
			if errors.Is(err, store.ErrLocked) {
				t.Fatalf("Open = %v; an unwritable dir is not a locked one", err)
			}
		})
	}
}

// TestInMemoryIgnoresDir: an in-memory store touches no disk and takes no
// lock, so two can be opened "on" the same dir.
func TestInMemoryIgnoresDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "never")
	opts := store.Options{InMemory: true, MemTableBytes: 1 << 20, CacheBytes: 1 << 20}
	a, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := store.Open(dir, opts)
	if err != nil {
		t.Fatalf("second in-memory Open = %v", err)
	}
	defer b.Close()
	if err := a.Set(context.Background(), []byte("k"), []byte("v"), store.Sync); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, b, "k")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("in-memory Open created %s (stat: %v)", dir, err)
	}
}
