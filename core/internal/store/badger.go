package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Options configure Open.
type Options struct {
	// InMemory keeps everything in memory (tests); Dir is then ignored.
	InMemory bool
	// MemTableBytes and CacheBytes size Badger's write tables and block
	// cache; zero picks 16 MiB and 64 MiB.
	MemTableBytes int64
	CacheBytes    int64
	// IndexCacheBytes bounds the cache of table indexes and bloom filters;
	// zero keeps every index in memory.
	IndexCacheBytes int64
	Logger          *slog.Logger
}

// Badger is the embedded Store. It holds the data dir's lock while open.
type Badger struct {
	db     *badger.DB
	dir    string // Badger's directory; "" in memory
	lock   *os.File
	closed atomic.Bool
}

var _ Store = (*Badger)(nil)

// DBDir is the folder inside the data dir that holds Badger's files.
const DBDir = "db"

// Open opens (creating if needed) the store in dataDir. It fails fast with
// ErrLocked when another process holds the data dir, and with a clear error
// when the dir cannot be written.
func Open(dataDir string, opts Options) (*Badger, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 16 << 20
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 64 << 20
	}
	s := &Badger{}
	bo := badger.DefaultOptions("")
	if opts.InMemory {
		bo = bo.WithInMemory(true)
	} else {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir %s cannot be created: %w", dataDir, err)
		}
		lock, err := lockDir(dataDir)
		if err != nil {
			return nil, err
		}
		s.lock = lock
		s.dir = filepath.Join(dataDir, DBDir)
		bo = badger.DefaultOptions(s.dir)
	}
	bo = bo.WithLogger(badgerLogger{opts.Logger}).
		WithMemTableSize(opts.MemTableBytes).
		WithBlockCacheSize(opts.CacheBytes).
		WithIndexCacheSize(opts.IndexCacheBytes).
		WithNumMemtables(3).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(256 << 20).
		// Badger requires values kept in the LSM to fit its batch size,
		// 15% of a memtable; keep the threshold under that for small tables.
		WithValueThreshold(min(1<<20, opts.MemTableBytes/10)).
		WithSyncWrites(false) // durable writes ask for Sync explicitly
	db, err := badger.Open(bo)
	if err != nil {
		s.unlock()
		return nil, fmt.Errorf("open store in %s: %w", dataDir, err)
	}
	s.db = db
	return s, nil
}

// OpenMemory opens an empty in-memory store, for tests and tools.
func OpenMemory() (*Badger, error) { return Open("", Options{InMemory: true}) }

func (s *Badger) unlock() {
	if s.lock != nil {
		unlockDir(s.lock)
		s.lock = nil
	}
}

// Close flushes and closes the database and releases the data dir.
func (s *Badger) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.db.Close()
	s.unlock()
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

func (s *Badger) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (s *Badger) sync(opts []WriteOption) error {
	if wantSync(opts) && !s.db.Opts().InMemory {
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("sync store: %w", err)
		}
	}
	return nil
}

// Get implements KV.
func (s *Badger) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := (&badgerTxn{txn}).Get(key)
		out = v
		return err
	})
	return out, err
}

// Set implements KV.
func (s *Badger) Set(ctx context.Context, key, value []byte, opts ...WriteOption) error {
	return s.Update(ctx, func(tx Txn) error { return tx.Set(key, value) }, opts...)
}

// Delete implements KV.
func (s *Badger) Delete(ctx context.Context, key []byte, opts ...WriteOption) error {
	return s.Update(ctx, func(tx Txn) error { return tx.Delete(key) }, opts...)
}

// maxConflictRetries bounds Update's retries of a conflicting transaction.
// With the randomized backoff below, running out of them takes a livelock,
// not mere contention: a hot key hammered by a few writers conflicts for
// more than 16 attempts in a row often enough to lose writes.
const maxConflictRetries = 1000

// maxConflictBackoff caps the randomized wait between conflicting attempts.
const maxConflictBackoff = 10 * time.Millisecond

// conflictBackoff waits a random time that grows with attempt, so writers
// that conflicted with each other do not retry in lockstep; it returns early
// with the context's error.
func conflictBackoff(ctx context.Context, attempt int) error {
	limit := min(time.Microsecond<<min(attempt, 20), maxConflictBackoff)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(limit))) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Update implements KV.
func (s *Badger) Update(ctx context.Context, fn func(Txn) error, opts ...WriteOption) error {
	for attempt := 0; ; attempt++ {
		if err := s.check(ctx); err != nil {
			return err
		}
		err := s.db.Update(func(txn *badger.Txn) error { return fn(&badgerTxn{txn}) })
		if errors.Is(err, badger.ErrConflict) {
			if attempt >= maxConflictRetries {
				return fmt.Errorf("store: update still conflicts after %d attempts: %w", attempt+1, err)
			}
			if err := conflictBackoff(ctx, attempt); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		return s.sync(opts)
	}
}

// Scan implements KV.
func (s *Badger) Scan(ctx context.Context, prefix []byte, opts ScanOptions, fn func(key, value []byte) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.db.View(func(txn *badger.Txn) error {
		io := badger.DefaultIteratorOptions
		io.Prefix = prefix
		io.Reverse = opts.Reverse
		io.PrefetchValues = !opts.KeysOnly
		it := txn.NewIterator(io)
		defer it.Close()
		start := prefix
		if opts.Reverse {
			// Seek to just past the last key with the prefix.
			start = append(append([]byte{}, prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		}
		n := 0
		for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			var val []byte
			if !opts.KeysOnly {
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				val = v
			}
			if err := fn(item.Key(), val); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		return nil
	})
}

// Backup implements Store with Badger's own backup stream: a consistent
// snapshot taken while the store keeps serving.
func (s *Badger) Backup(ctx context.Context, w io.Writer) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	cw := &ctxWriter{ctx: ctx, w: w}
	// One producer means one read transaction for the whole stream: a
	// consistent snapshot. Badger's default (several producers, each with
	// its own transaction) could catch a concurrent commit half applied.
	stream := s.db.NewStream()
	stream.NumGo = 1
	stream.LogPrefix = "portico.Backup"
	if _, err := stream.Backup(cw, 0); err != nil {
		// Badger's stream reports the cancellation of its own workers
		// rather than the write error that caused it: report the cause.
		if werr := cw.failure(); werr != nil {
			err = werr
		}
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// ctxWriter stops a backup when its context ends (a client that hung up),
// and remembers the first error of a write.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer

	mu  sync.Mutex
	err error
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.fail(err)
		return 0, err
	}
	n, err := c.w.Write(p)
	if err != nil {
		c.fail(err)
	}
	return n, err
}

func (c *ctxWriter) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *ctxWriter) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Empty reports whether the store holds no keys.
func (s *Badger) Empty(ctx context.Context) (bool, error) {
	empty := true
	err := s.Scan(ctx, nil, ScanOptions{KeysOnly: true}, func(_, _ []byte) error {
		empty = false
		return ErrStop
	})
	return empty, err
}

// Restore loads a backup made by Backup into the store. With replace, the
// store's current data is dropped first; without it the store must be empty.
func (s *Badger) Restore(ctx context.Context, r io.Reader, replace bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if replace {
		if err := s.db.DropAll(); err != nil {
			return fmt.Errorf("restore: drop current data: %w", err)
		}
	} else if empty, err := s.Empty(ctx); err != nil {
		return err
	} else if !empty {
		return fmt.Errorf("restore: %w; restore into an empty data dir, or replace its data explicitly", ErrNotEmpty)
	}
	if err := s.db.Load(&frameReader{r: r}, 256); err != nil {
		// Leave the store empty rather than half restored.
		if derr := s.db.DropAll(); derr != nil {
			return fmt.Errorf("restore: %w (and dropping the partial data failed: %v)", err, derr)
		}
		return fmt.Errorf("restore: %w; the data dir was left empty", err)
	}
	return s.sync([]WriteOption{Sync})
}

// CollectGarbage implements Store.
func (s *Badger) CollectGarbage(discardRatio float64) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n := 0
	for {
		err := s.db.RunValueLogGC(discardRatio)
		switch {
		case err == nil:
			n++
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrGCInMemoryMode):
			return n, nil
		default:
			return n, fmt.Errorf("value log gc: %w", err)
		}
	}
}

// Size implements Store: the bytes the database's files take on disk.
// Badger's own Size gives their apparent size, and a value-log file is
// preallocated sparse (a new store would report hundreds of MiB); the
// blocks allocated are what an operator's disk holds.
func (s *Badger) Size() Size {
	var sz Size
	if m := s.db.BlockCacheMetrics(); m != nil {
		sz.BlockCacheBytes = int64(m.CostAdded() - m.CostEvicted())
	}
	if m := s.db.IndexCacheMetrics(); m != nil {
		sz.IndexCacheBytes = int64(m.CostAdded() - m.CostEvicted())
	}
	if s.dir == "" {
		sz.LSMBytes, sz.VlogBytes = s.db.Size()
		return sz
	}
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if n := diskBytes(fi); strings.HasSuffix(e.Name(), ".vlog") {
			sz.VlogBytes += n
		} else {
			sz.LSMBytes += n
		}
	}
	return sz
}

type badgerTxn struct{ txn *badger.Txn }

func (t *badgerTxn) Get(key []byte) ([]byte, error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (t *badgerTxn) Set(key, value []byte) error {
	if len(key) == 0 {
		return errors.New("store: empty key")
	}
	return t.txn.Set(append([]byte{}, key...), append([]byte{}, value...))
}

func (t *badgerTxn) Delete(key []byte) error {
	if len(key) == 0 {
		return errors.New("store: empty key")
	}
	return t.txn.Delete(append([]byte{}, key...))
}

// badgerLogger sends Badger's logs to slog; its chatty info lines go to
// debug. Badger ends its formats with a newline, which would end up inside
// the message (msg="...\n"): it is trimmed.
type badgerLogger struct{ l *slog.Logger }

func badgerMsg(f string, a []any) string {
	return strings.TrimRight(fmt.Sprintf(f, a...), "\r\n")
}

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(badgerMsg(f, a), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(badgerMsg(f, a), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(badgerMsg(f, a), "component", "badger")
}
func (b badgerLogger) Debugf(string, ...any) {}

// maxBackupFrame bounds one frame of a backup stream. Badger writes frames
// of at most ~100 MiB; a larger size field means a corrupt or foreign file,
// and Load would otherwise allocate whatever it says.
const maxBackupFrame = 256 << 20

// frameReader passes a backup stream through unchanged while checking each
// frame's 8-byte little-endian size header.
type frameReader struct {
	r    io.Reader
	left uint64 // bytes left in the current frame's body
	hdr  [8]byte
	nhdr int // header bytes read so far
}

func (f *frameReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.left == 0 {
		// Read (part of) the next header, pass it through, check when whole.
		n, err := f.r.Read(f.hdr[f.nhdr:][:min(len(p), 8-f.nhdr)])
		copy(p, f.hdr[f.nhdr:f.nhdr+n])
		f.nhdr += n
		if f.nhdr == 8 {
			f.nhdr = 0
			f.left = binary.LittleEndian.Uint64(f.hdr[:])
			if f.left > maxBackupFrame {
				return 0, fmt.Errorf("not a Portico backup, or a corrupt one: a frame claims %d bytes (limit %d)", f.left, maxBackupFrame)
			}
		}
		return n, err
	}
	n, err := f.r.Read(p[:min(uint64(len(p)), f.left)])
	f.left -= uint64(n)
	return n, err
}
