package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/porticohq/portico/core/internal/store"
)

func TestPersistence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()

	s, err := store.Open(dir, smallOpts)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "synced", "v1", store.Sync)
	mustSet(t, s, "plain", "v2") // durable through a clean Close
	mustSet(t, s, "deleted", "x", store.Sync)
	if err := s.Delete(ctx, []byte("deleted"), store.Sync); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Txn) error {
		if err := tx.Set([]byte("txn/a"), []byte("a")); err != nil {
			return err
		}
		return tx.Set([]byte("txn/b"), []byte("b"))
	}, store.Sync)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, dir)
	for key, want := range map[string]string{"synced": "v1", "plain": "v2", "txn/a": "a", "txn/b": "b"} {
		if got := mustGet(t, s, key); string(got) != want {
			t.Errorf("after reopen %s = %q, want %q", key, got, want)
		}
	}
	wantMissing(t, s, "deleted")
}

// value returns the deterministic value of the i-th test key: every tenth
// one is 64 KiB, spanning many backup stream blocks.
func value(i int) []byte {
	n := 40
	if i%10 == 0 {
		n = 64 << 10
	}
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i*31 + j)
	}
	binary.BigEndian.PutUint32(v, uint32(i))
	return v
}

// fill writes n keys k/000.. with value(i).
func fill(t testing.TB, s store.KV, n int) map[string][]byte {
	t.Helper()
	want := make(map[string][]byte, n)
	for i := range n {
		k := fmt.Sprintf("k/%03d", i)
		want[k] = value(i)
		if err := s.Set(context.Background(), []byte(k), want[k]); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// hookWriter calls onFirst (once) before the first write reaches w, that is
// while the backup is in progress.
type hookWriter struct {
	w       io.Writer
	once    sync.Once
	onFirst func()
}

func (h *hookWriter) Write(p []byte) (int, error) {
	h.once.Do(h.onFirst)
	return h.w.Write(p)
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

// TestBackupRestore is not parallel: a Badger backup stream allocates a few
// hundred MiB of buffers, and the package's peak memory stays lower when it
// runs on its own.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	src := openDisk(t, t.TempDir())
	want := fill(t, src, 500)

	// A writer keeps writing other keys through the whole backup, and the
	// hook guarantees some writes land while the backup is streaming.
	var buf bytes.Buffer
	stop := make(chan struct{})
	started := make(chan struct{})
	var live atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := src.Set(ctx, fmt.Appendf(nil, "live/%06d", i), []byte("live")); err != nil {
				t.Errorf("live write: %v", err)
				return
			}
			if live.Add(1) == 1 {
				close(started)
			}
		}
	})
	<-started
	hw := &hookWriter{w: &buf, onFirst: func() {
		for i := range 20 {
			if err := src.Set(ctx, fmt.Appendf(nil, "during/%02d", i), []byte("x")); err != nil {
				t.Errorf("write during backup: %v", err)
			}
		}
	}}
	err := src.Backup(ctx, hw)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if live.Load() == 0 {
		t.Fatal("the live writer wrote nothing")
	}
	backup := buf.Bytes()

	t.Run("into a fresh store", func(t *testing.T) {
		dir := t.TempDir()
		dst := openDisk(t, dir)
		if empty, err := dst.Empty(ctx); err != nil || !empty {
			t.Fatalf("fresh store Empty = %v, %v; want true", empty, err)
		}
		if err := dst.Restore(ctx, bytes.NewReader(backup), false); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if empty, err := dst.Empty(ctx); err != nil || empty {
			t.Fatalf("restored store Empty = %v, %v; want false", empty, err)
		}
		checkKeys(t, dst, want)
		for _, k := range scanKeys(t, dst, "", store.ScanOptions{KeysOnly: true}) {
			if !strings.HasPrefix(k, "k/") && !strings.HasPrefix(k, "live/") && !strings.HasPrefix(k, "during/") {
				t.Fatalf("restored store holds unexpected key %q", k)
			}
		}

		// New writes must win over restored versions, and the restore
		// must survive a reopen.
		mustSet(t, dst, "k/001", "rewritten")
		if got := mustGet(t, dst, "k/001"); string(got) != "rewritten" {
			t.Fatalf("write after restore: Get = %q", got)
		}
		if err := dst.Delete(ctx, []byte("k/002")); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, dst, "k/002")
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		dst = openDisk(t, dir)
		if got := mustGet(t, dst, "k/001"); string(got) != "rewritten" {
			t.Fatalf("after reopen k/001 = %q", got)
		}
		wantMissing(t, dst, "k/002")
		if got := mustGet(t, dst, "k/010"); !bytes.Equal(got, want["k/010"]) {
			t.Fatalf("after reopen k/010 differs (%d bytes)", len(got))
		}
	})

	t.Run("into a non-empty store", func(t *testing.T) {
		dst := openDisk(t, t.TempDir())
		mustSet(t, dst, "only-target", "mine")
		mustSet(t, dst, "k/000", "target's")

		err := dst.Restore(ctx, bytes.NewReader(backup), false)
		if !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("Restore without replace = %v, want ErrNotEmpty", err)
		}
		if got := scanKeys(t, dst, "", store.ScanOptions{}); !slices.Equal(got, []string{"k/000", "only-target"}) {
			t.Fatalf("refused restore changed the keys: %q", got)
		}
		if got := mustGet(t, dst, "k/000"); string(got) != "target's" {
			t.Fatalf("refused restore changed k/000 to %d bytes", len(got))
		}

		if err := dst.Restore(ctx, bytes.NewReader(backup), true); err != nil {
			t.Fatalf("Restore with replace: %v", err)
		}
		wantMissing(t, dst, "only-target")
		checkKeys(t, dst, want)
	})

	t.Run("into an in-memory store", func(t *testing.T) {
		dst := openMemory(t)
		if err := dst.Restore(ctx, bytes.NewReader(backup), false); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		checkKeys(t, dst, want)
	})

	t.Run("truncated backup is an error", func(t *testing.T) {
		dst := openMemory(t)
		if err := dst.Restore(ctx, bytes.NewReader(backup[:len(backup)-1]), false); err == nil {
			t.Fatal("Restore of a truncated backup = nil, want error")
		}
	})
}

// checkKeys asserts every key in want is in s with its value.
func checkKeys(t testing.TB, s store.KV, want map[string][]byte) {
	t.Helper()
	missing := 0
	for k, v := range want {
		got, err := s.Get(context.Background(), []byte(k))
		if err != nil || !bytes.Equal(got, v) {
			if missing++; missing <= 5 {
				t.Errorf("%s: got %d bytes, %v; want %d bytes", k, len(got), err, len(v))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d keys missing or different", missing, len(want))
	}
}

func TestBackupErrors(t *testing.T) {
	t.Parallel()
	s := openMemory(t)
	fill(t, s, 20)
	errDisk := errors.New("disk full")

	cases := []struct {
		name    string
		ctx     func() context.Context
		w       io.Writer
		wantErr error
	}{
		{"writer fails", context.Background, errWriter{errDisk}, errDisk},
		{"cancelled context", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, io.Discard, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := s.Backup(c.ctx(), c.w)
			if err == nil {
				t.Fatal("Backup = nil, want error")
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Backup = %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := b.open(t)
			steps := []struct {
				name string
				do   func() error
				want bool
			}{
				{"fresh", func() error { return nil }, true},
				{"after set", func() error { return s.Set(ctx, []byte("k"), []byte("v")) }, false},
				{"after delete", func() error { return s.Delete(ctx, []byte("k")) }, true},
			}
			for _, st := range steps {
				if err := st.do(); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if got, err := s.Empty(ctx); err != nil || got != st.want {
					t.Fatalf("%s: Empty = %v, %v; want %v", st.name, got, err, st.want)
				}
			}
		})
	}
}

func TestCollectGarbage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		s := openMemory(t)
		fill(t, s, 20)
		n, err := s.CollectGarbage(0.5)
		if n != 0 || err != nil {
			t.Fatalf("CollectGarbage = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("disk", func(t *testing.T) {
		t.Parallel()
		s := openDisk(t, t.TempDir())
		big := bytes.Repeat([]byte("v"), 256<<10) // beyond the value threshold
		for i := range 20 {
			for range 3 { // overwrites leave stale value-log entries
				if err := s.Set(ctx, fmt.Appendf(nil, "g/%d", i), big); err != nil {
					t.Fatal(err)
				}
			}
			if i%2 == 0 {
				if err := s.Delete(ctx, fmt.Appendf(nil, "g/%d", i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		n, err := s.CollectGarbage(0.5)
		if err != nil || n < 0 {
			t.Fatalf("CollectGarbage = %d, %v; want no error", n, err)
		}
		if got := scanKeys(t, s, "g/", store.ScanOptions{KeysOnly: true}); len(got) != 10 {
			t.Fatalf("after GC %d keys, want 10", len(got))
		}
		if got := mustGet(t, s, "g/1"); !bytes.Equal(got, big) {
			t.Fatalf("after GC g/1 is %d bytes", len(got))
		}
		if _, err := s.CollectGarbage(0); err == nil {
			t.Fatal("CollectGarbage(0) = nil, want an invalid-ratio error")
		}
	})
}

func TestClosed(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := b.open(t)
			mustSet(t, s, "k", "v")
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close = %v, want nil", err)
			}

			ctx := context.Background()
			ops := []struct {
				name string
				do   func() error
			}{
				{"Get", func() error { _, err := s.Get(ctx, []byte("k")); return err }},
				{"Set", func() error { return s.Set(ctx, []byte("k"), []byte("v")) }},
				{"Delete", func() error { return s.Delete(ctx, []byte("k")) }},
				{"Update", func() error {
					return s.Update(ctx, func(store.Txn) error { t.Error("fn ran on a closed store"); return nil })
				}},
				{"Scan", func() error {
					return s.Scan(ctx, nil, store.ScanOptions{}, func(_, _ []byte) error { return nil })
				}},
				{"Backup", func() error { return s.Backup(ctx, io.Discard) }},
				{"Restore", func() error { return s.Restore(ctx, strings.NewReader(""), true) }},
				{"Empty", func() error { _, err := s.Empty(ctx); return err }},
				{"CollectGarbage", func() error { _, err := s.CollectGarbage(0.5); return err }},
				{"Prefix Get", func() error { _, err := store.Prefix(s, "p/").Get(ctx, []byte("k")); return err }},
			}
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					if err := op.do(); !errors.Is(err, store.ErrClosed) {
						t.Fatalf("%s after Close = %v, want ErrClosed", op.name, err)
					}
				})
			}
		})
	}
}

func TestSize(t *testing.T) {
	t.Parallel()

	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		s := openMemory(t)
		fill(t, s, 20)
		if sz := s.Size(); sz.LSMBytes < 0 || sz.VlogBytes < 0 {
			t.Fatalf("Size = %+v, want non-negative", sz)
		}
	})
	t.Run("disk after reopen", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s, err := store.Open(dir, smallOpts)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s, 100)
		if err := s.Set(context.Background(), []byte("big"), bytes.Repeat([]byte("b"), 256<<10)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openDisk(t, dir)
		sz := s.Size()
		if sz.LSMBytes < 0 || sz.VlogBytes < 0 {
			t.Fatalf("Size = %+v, want non-negative", sz)
		}
		if sz.LSMBytes+sz.VlogBytes == 0 {
			t.Fatalf("Size = %+v after writing ~3 MiB and reopening, want > 0", sz)
		}
	})
}

// TestSizeOfAnEmptyStore: a new store's value log is preallocated sparse
// (its apparent size is hundreds of MiB); Size reports what the disk holds.
func TestSizeOfAnEmptyStore(t *testing.T) {
	t.Parallel()
	s := openDisk(t, t.TempDir())
	// Badger's own figure is refreshed once a minute (0 at first) and then
	// counts the value log's apparent 512 MiB; the files on disk hold a
	// few KiB: a manifest, a value-log header.
	if sz := s.Size(); sz.VlogBytes == 0 || sz.LSMBytes+sz.VlogBytes >= 1<<20 {
		t.Errorf("an empty store reports %+v, want more than 0 and under 1 MiB", sz)
	}
}

func TestRestoreRejectsCorruptFrames(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		data []byte
	}{
		{"huge frame size", binary.LittleEndian.AppendUint64(nil, 1<<40)},
		{"garbage body", append(binary.LittleEndian.AppendUint64(nil, 4), 0xff, 0xff, 0xff, 0xff)},
		{"truncated header", []byte{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.OpenMemory()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Restore(ctx, bytes.NewReader(tt.data), false); err == nil {
				t.Fatal("corrupt backup restored without error")
			}
			if empty, err := st.Empty(ctx); err != nil || !empty {
				t.Errorf("store not left empty: empty=%v err=%v", empty, err)
			}
		})
	}
}
