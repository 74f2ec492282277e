package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/store"
)

// Store is the storage backend a program may give the gateway instead of
// the embedded Badger database: an ordered key-value store. The gateway
// keeps everything in it (keys, users, sessions, messages, plugin data,
// webhook queues, the audit trail), namespaced by key prefix. All methods
// must be safe for concurrent use; a write must be durable when it returns
// if the data should survive a crash.
//
// Keys and values are opaque bytes. The gateway never keeps a slice it
// passes in or gets back beyond the call, and a Store must not either:
// copy what it keeps, and return copies.
type Store interface {
	// Get returns the value at key, or an error matching ErrNotFound.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Set writes value at key.
	Set(ctx context.Context, key, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key []byte) error
	// Scan calls fn for every key that starts with prefix, in ascending
	// byte order (descending when reverse is set). An error from fn ends
	// the scan and Scan returns it unchanged. fn may call the store's
	// other methods.
	Scan(ctx context.Context, prefix []byte, reverse bool, fn func(key, value []byte) error) error
	// Update runs fn in one atomic transaction: fn's reads see a
	// consistent state, and its writes apply all together when fn returns
	// nil, or not at all. A store may retry fn on a conflict, so fn has no
	// other effects.
	Update(ctx context.Context, fn func(tx Txn) error) error
	// Close releases the store; the gateway calls it once, at Shutdown.
	Close() error
}

// Txn is one transaction of Store.Update.
type Txn interface {
	// Get returns the value at key as the transaction sees it (its own
	// writes included), or an error matching ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Set writes value at key when the transaction commits.
	Set(key, value []byte) error
	// Delete removes key when the transaction commits.
	Delete(key []byte) error
}

// NewMemoryStore returns a Store that keeps everything in memory, for
// tests and demos: nothing survives Close or the process. It is also the
// reference for the Store contract (its source is short).
func NewMemoryStore() Store { return &memoryStore{m: map[string][]byte{}} }

type memoryStore struct {
	mu     sync.RWMutex
	m      map[string][]byte
	closed bool
}

var errStoreClosed = errors.New("store is closed")

func (s *memoryStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errStoreClosed
	}
	v, ok := s.m[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *memoryStore) Set(ctx context.Context, key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	s.m[string(key)] = append([]byte{}, value...)
	return nil
}

func (s *memoryStore) Delete(ctx context.Context, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	delete(s.m, string(key))
	return nil
}

// Scan copies the matching pairs under the lock and calls fn without it,
// so fn may write to the store.
func (s *memoryStore) Scan(ctx context.Context, prefix []byte, reverse bool, fn func(key, value []byte) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errStoreClosed
	}
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if reverse {
		slices.Reverse(keys)
	}
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = bytes.Clone(s.m[k])
	}
	s.mu.RUnlock()
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Update holds the write lock for the whole transaction: simple, and
// atomic by construction.
func (s *memoryStore) Update(ctx context.Context, fn func(tx Txn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	tx := &memoryTxn{s: s, writes: map[string][]byte{}}
	if err := fn(tx); err != nil {
		return err
	}
	for k, v := range tx.writes {
		if v == nil {
			delete(s.m, k)
		} else {
			s.m[k] = v
		}
	}
	return nil
}

func (s *memoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.m = nil
	return nil
}

// memoryTxn buffers writes; a nil value is a delete.
type memoryTxn struct {
	s      *memoryStore
	writes map[string][]byte
}

func (t *memoryTxn) Get(key []byte) ([]byte, error) {
	if v, ok := t.writes[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	v, ok := t.s.m[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t *memoryTxn) Set(key, value []byte) error {
	t.writes[string(key)] = append([]byte{}, value...) // never nil
	return nil
}

func (t *memoryTxn) Delete(key []byte) error {
	t.writes[string(key)] = nil
	return nil
}

// openStore opens the store storage.backend names, unless the program
// gave one.
func openStore(ctx context.Context, given store.Store, c *config.Config, log *slog.Logger) (store.Store, error) {
	switch {
	case given != nil:
		return given, nil
	case c.Storage.Backend == "postgres":
		p := c.Storage.Postgres
		return store.OpenPostgres(ctx, store.PostgresOptions{URL: p.URL, MaxConns: int32(p.MaxConns),
			StatementTimeout: p.StatementTimeout.D(), ConnectTimeout: p.ConnectTimeout.D(), Logger: log})
	}
	return openBadger(c, log)
}

// openBadger opens the embedded store in data_dir with the storage.* sizes.
func openBadger(c *config.Config, log *slog.Logger) (*store.Badger, error) {
	return store.Open(c.DataDir, store.Options{MemTableBytes: c.Storage.MemTableBytes, CacheBytes: c.Storage.CacheBytes,
		IndexCacheBytes: c.Storage.IndexCacheBytes, Logger: log})
}

// storeAdapter turns a public Store into the core's store.Store.
type storeAdapter struct{ s Store }

var _ store.Store = (*storeAdapter)(nil)

// ErrBackupUnsupported is what an online backup (POST
// /api/v1/admin/backup, portico backup) answers when the gateway runs on
// a Store given in Options: only the embedded database can stream one.
var ErrBackupUnsupported = store.ErrBackupUnsupported

func notFound(err error) error {
	if err != nil && errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return err
}

func (a *storeAdapter) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := a.s.Get(ctx, key)
	return v, notFound(err)
}

func (a *storeAdapter) Set(ctx context.Context, key, value []byte, _ ...store.WriteOption) error {
	return a.s.Set(ctx, key, value)
}

func (a *storeAdapter) Delete(ctx context.Context, key []byte, _ ...store.WriteOption) error {
	return a.s.Delete(ctx, key)
}

func (a *storeAdapter) Update(ctx context.Context, fn func(store.Txn) error, _ ...store.WriteOption) error {
	return a.s.Update(ctx, func(tx Txn) error { return fn(txnAdapter{tx}) })
}

func (a *storeAdapter) Scan(ctx context.Context, prefix []byte, opts store.ScanOptions, fn func(key, value []byte) error) error {
	err := a.s.Scan(ctx, prefix, opts.Reverse, func(k, v []byte) error {
		if opts.KeysOnly {
			v = nil
		}
		return fn(k, v)
	})
	if errors.Is(err, store.ErrStop) {
		return nil
	}
	return err
}

func (a *storeAdapter) Backup(ctx context.Context, w io.Writer) error { return a.BackupUnsupported() }

// BackupUnsupported implements store.NoBackup.
func (a *storeAdapter) BackupUnsupported() error {
	return fmt.Errorf("%w: back up your Store by its own means", ErrBackupUnsupported)
}

// CollectGarbage has nothing to do: space is the Store's own business.
func (a *storeAdapter) CollectGarbage(float64) (int, error) { return 0, nil }

func (a *storeAdapter) Size() store.Size { return store.Size{} }

func (a *storeAdapter) Close() error { return a.s.Close() }

type txnAdapter struct{ tx Txn }

func (t txnAdapter) Get(key []byte) ([]byte, error) {
	v, err := t.tx.Get(key)
	return v, notFound(err)
}
func (t txnAdapter) Set(key, value []byte) error { return t.tx.Set(key, value) }
func (t txnAdapter) Delete(key []byte) error     { return t.tx.Delete(key) }
