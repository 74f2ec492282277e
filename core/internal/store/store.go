// Package store is Portico's storage: a narrow key-value interface that
// sessions, keys, plugin data, queues and the audit trail are written
// against, with an embedded Badger implementation (on disk, or in memory for
// tests) and a PostgreSQL one for several nodes sharing one database. Keys
// are namespaced by prefix ("audit/", "plugin/notes/").
package store

import (
	"context"
	"errors"
	"io"
)

// Errors callers decide on with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrLocked   = errors.New("data dir is locked")
	ErrClosed   = errors.New("store is closed")
	// ErrNotEmpty refuses a restore into a store that already holds data.
	ErrNotEmpty = errors.New("the data dir already holds data")
	// ErrStop ends a Scan early without an error.
	ErrStop = errors.New("stop scan")
	// ErrUnavailable is a store that cannot be reached or cannot serve
	// now (PostgreSQL down or restarting); nothing was written. The API
	// answers it 503 store_unavailable.
	ErrUnavailable = errors.New("the store is unavailable")
	// ErrBackupUnsupported is a backend whose backups are made with its
	// own tools.
	ErrBackupUnsupported = errors.New("online backup is not supported by this storage backend")
	// ErrSchemaTooNew refuses a database migrated by a newer Portico.
	ErrSchemaTooNew = errors.New("the database schema is newer than this build knows")
)

// WriteOption changes how a write is made.
type WriteOption int

// Sync makes a write durable before it returns: use it where losing the
// write in a crash is not acceptable (keys, delivery queues, audit).
const Sync WriteOption = 1

// ScanOptions shape a Scan.
type ScanOptions struct {
	Reverse  bool // newest-last keys come first
	KeysOnly bool // value is nil; much cheaper for counting
}

// KV is the key-value surface that features write against. All methods are
// safe for concurrent use.
type KV interface {
	// Get returns a copy of the value at key or ErrNotFound.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Set writes value at key.
	Set(ctx context.Context, key, value []byte, opts ...WriteOption) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key []byte, opts ...WriteOption) error
	// Update runs fn in one atomic read-write transaction, retrying it when
	// it conflicts with a concurrent one, so fn must have no side effects.
	Update(ctx context.Context, fn func(Txn) error, opts ...WriteOption) error
	// Scan calls fn for every key with prefix in key order (or reverse
	// order). key and value are valid only during the call. fn returns
	// ErrStop to end the scan early.
	Scan(ctx context.Context, prefix []byte, opts ScanOptions, fn func(key, value []byte) error) error
}

// Txn is one transaction inside Update.
type Txn interface {
	Get(key []byte) ([]byte, error)
	Set(key, value []byte) error
	Delete(key []byte) error
}

// Size is the on-disk size of the store.
type Size struct {
	LSMBytes  int64 `json:"lsm_bytes"`
	VlogBytes int64 `json:"vlog_bytes"`
	// What the block and index caches hold now (0 for a store without them).
	BlockCacheBytes int64 `json:"block_cache_used_bytes"`
	IndexCacheBytes int64 `json:"index_cache_used_bytes"`
}

// Store is a KV plus the operations on the whole database.
type Store interface {
	KV
	// Backup streams a consistent online backup of the whole store to w.
	Backup(ctx context.Context, w io.Writer) error
	// CollectGarbage reclaims stale value-log space; it returns how many
	// value-log files were rewritten.
	CollectGarbage(discardRatio float64) (int, error)
	Size() Size
	Close() error
}

// NoBackup is a Store whose backups are made by other means: the API
// says so before it starts a backup stream.
type NoBackup interface {
	// BackupUnsupported is the error Backup returns, saying what to use.
	BackupUnsupported() error
}

func wantSync(opts []WriteOption) bool {
	for _, o := range opts {
		if o == Sync {
			return true
		}
	}
	return false
}

// Prefix returns a KV that reads and writes only keys under prefix, which it
// adds and strips; a feature given a Prefix cannot see other namespaces.
func Prefix(kv KV, prefix string) KV {
	return &prefixed{kv: kv, p: []byte(prefix)}
}

type prefixed struct {
	kv KV
	p  []byte
}

func (p *prefixed) k(key []byte) []byte {
	out := make([]byte, 0, len(p.p)+len(key))
	return append(append(out, p.p...), key...)
}

func (p *prefixed) Get(ctx context.Context, key []byte) ([]byte, error) {
	return p.kv.Get(ctx, p.k(key))
}

func (p *prefixed) Set(ctx context.Context, key, value []byte, opts ...WriteOption) error {
	return p.kv.Set(ctx, p.k(key), value, opts...)
}

func (p *prefixed) Delete(ctx context.Context, key []byte, opts ...WriteOption) error {
	return p.kv.Delete(ctx, p.k(key), opts...)
}

func (p *prefixed) Update(ctx context.Context, fn func(Txn) error, opts ...WriteOption) error {
	return p.kv.Update(ctx, func(tx Txn) error { return fn(&prefixedTxn{tx: tx, p: p}) }, opts...)
}

func (p *prefixed) Scan(ctx context.Context, prefix []byte, opts ScanOptions, fn func(key, value []byte) error) error {
	n := len(p.p)
	return p.kv.Scan(ctx, p.k(prefix), opts, func(key, value []byte) error { return fn(key[n:], value) })
}

type prefixedTxn struct {
	tx Txn
	p  *prefixed
}

func (t *prefixedTxn) Get(key []byte) ([]byte, error) { return t.tx.Get(t.p.k(key)) }
func (t *prefixedTxn) Set(key, value []byte) error    { return t.tx.Set(t.p.k(key), value) }
func (t *prefixedTxn) Delete(key []byte) error        { return t.tx.Delete(t.p.k(key)) }
