package config

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/knadh/koanf/maps"

	"github.com/porticohq/portico/internal/atomicfile"
)

// DefaultFileName is the config file used in the data dir when no file is
// named.
const DefaultFileName = "portico.toml"

// ErrFileInvalid is returned by Patch while the config file on disk does not
// parse: the API refuses to overwrite a file an operator is editing.
var ErrFileInvalid = errors.New("config file on disk is invalid")

// Snapshot is one applied configuration. It is immutable.
type Snapshot struct {
	Config     *Config
	Generation uint64            // 1 for the first, +1 per applied change
	Sources    map[string]string // key -> FromDefault, FromFile, FromEnv or FromFlag
	LoadedAt   time.Time
}

// Change tells subscribers about a reload attempt: either a new snapshot
// (Err nil) or a rejected one (Err set, New nil, Old still serving).
type Change struct {
	Old, New *Snapshot
	Source   string   // FromFile (the watcher) or FromAPI (PATCH)
	Changed  []string // keys whose value changed
	Restart  []string // changed keys that need a restart to take effect
	Err      error
}

// Status reports the manager's state for the status endpoint.
type Status struct {
	Generation     uint64    `json:"generation"`
	File           string    `json:"file"`
	FileExists     bool      `json:"file_exists"`
	LoadedAt       time.Time `json:"loaded_at"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	ReloadRequired []string  `json:"reload_required"`
}

// PatchResult is what Patch applied.
type PatchResult struct {
	Updated        []string          `json:"updated"`
	ReloadRequired []string          `json:"reload_required"`
	Overridden     map[string]string `json:"overridden,omitempty"` // key -> env variable or flag still winning over the file
	File           string            `json:"file"`
	Created        bool              `json:"created"`
	Generation     uint64            `json:"generation"`
}

// Manager owns the current Snapshot: it watches the file, applies valid
// changes atomically, keeps the old snapshot on invalid ones and tells
// subscribers. Current is safe for concurrent use and lock-free.
type Manager struct {
	log *slog.Logger

	path     string // set once by NewManager
	explicit bool

	mu       sync.Mutex // serializes reloads and patches
	base     map[string]any
	env      map[string]any
	flags    map[string]any
	file     map[string]any
	fileHash [sha256.Size]byte
	boot     *Config
	subs     []func(Change)

	cur     atomic.Pointer[Snapshot]
	lastErr atomic.Pointer[rejection]
}

type rejection struct {
	msg string
	at  time.Time
}

// NewManager loads the first snapshot from src; it fails, naming each bad
// key, if that configuration is invalid. A nil logger discards logs.
func NewManager(src Sources, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: log}
	var err error
	if m.env, err = readEnv(src.Env); err != nil {
		return nil, err
	}
	if m.flags, err = readFlags(src.Flags); err != nil {
		return nil, err
	}
	if m.base, err = readBase(src.Base); err != nil {
		return nil, err
	}
	m.path, m.explicit = src.File, src.File != ""
	if !m.explicit {
		for _, kv := range src.Env {
			if p, ok := strings.CutPrefix(kv, "PORTICO_CONFIG="); ok && p != "" {
				m.path, m.explicit = p, true
			}
		}
	}
	if !m.explicit {
		// The default file lives in the data dir, which the file itself
		// cannot move: take data_dir from defaults < env < flags.
		pre, _, err := build(layers{base: m.base, env: m.env, flags: m.flags})
		if err != nil {
			return nil, err
		}
		m.path = filepath.Join(pre.DataDir, DefaultFileName)
	}
	if _, err := parserFor(m.path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(m.path)
	switch {
	case err == nil:
		if m.file, err = parseFile(m.path, b); err != nil {
			return nil, err
		}
		m.fileHash = sha256.Sum256(b)
	case errors.Is(err, os.ErrNotExist) && !m.explicit:
		m.file = map[string]any{}
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("config file %s does not exist; create it or leave --config out to use the built-in defaults", m.path)
	default:
		return nil, fmt.Errorf("read config file: %w", err)
	}
	c, sources, err := build(layers{base: m.base, file: m.file, env: m.env, flags: m.flags})
	if err != nil {
		return nil, err
	}
	m.boot = c
	m.cur.Store(&Snapshot{Config: c, Generation: 1, Sources: sources, LoadedAt: time.Now()})
	return m, nil
}

// SetLogger sends the manager's logs to log from now on.
func (m *Manager) SetLogger(log *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = log
}

// Current returns the snapshot in force.
func (m *Manager) Current() *Snapshot { return m.cur.Load() }

// Config returns the configuration in force.
func (m *Manager) Config() *Config { return m.cur.Load().Config }

// File returns the config file path the manager reads and writes.
func (m *Manager) File() string { return m.path }

// Subscribe registers fn to be told of every reload attempt, in order. fn
// runs on the reloading goroutine and must not call Patch or Reload.
func (m *Manager) Subscribe(fn func(Change)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs = append(m.subs, fn)
}

// Status reports the current generation, the last rejected change and the
// keys that wait for a restart.
func (m *Manager) Status() Status {
	snap := m.cur.Load()
	exists, _ := fileExists(m.File())
	st := Status{
		Generation:     snap.Generation,
		File:           m.File(),
		FileExists:     exists,
		LoadedAt:       snap.LoadedAt,
		ReloadRequired: restartKeys(m.boot, snap.Config),
	}
	if r := m.lastErr.Load(); r != nil {
		st.LastError, st.LastErrorAt = r.msg, r.at
	}
	return st
}

// Reload re-reads the config file and applies it if it is valid and
// different; an invalid file keeps the current snapshot, is recorded in
// Status and is returned.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := os.ReadFile(m.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("config file %s was removed; keeping the current configuration", m.path)
		}
		return m.reject(FromFile, err)
	}
	h := sha256.Sum256(b)
	if h == m.fileHash && m.lastErr.Load() == nil {
		return nil // our own write, or a touch with no change
	}
	file, err := parseFile(m.path, b)
	if err != nil {
		return m.reject(FromFile, err)
	}
	c, sources, err := build(layers{base: m.base, file: file, env: m.env, flags: m.flags})
	if err != nil {
		return m.reject(FromFile, err)
	}
	m.file, m.fileHash = file, h
	m.apply(c, sources, FromFile)
	return nil
}

// Patch sets dotted keys in the config file's own layer (a nil value removes
// the key from the file), validates the whole result, writes the file
// atomically and applies it. Bad keys or values change nothing.
func (m *Manager) Patch(patch map[string]any) (PatchResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	clean := make(map[string]any, len(patch))
	for _, key := range sortedKeys(patch) {
		f, ok := Lookup(key)
		if !ok {
			errs = append(errs, &KeyError{Key: key, Source: FromAPI, Msg: unknownKeyMsg(key)})
			continue
		}
		if patch[key] == nil {
			clean[key] = nil
			continue
		}
		v, err := f.coerce(patch[key])
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Source: FromAPI, Msg: err.Error()})
			continue
		}
		clean[key] = v
	}
	if len(patch) == 0 {
		errs = append(errs, errors.New("the patch is empty; send an object of dotted keys to values, e.g. {\"log.level\":\"debug\"}"))
	}
	if err := joinInvalid(errs); err != nil {
		return PatchResult{}, err
	}

	// Start from the file as it is on disk now, not from memory: an edit
	// the watcher has not applied yet must not be lost.
	file := map[string]any{}
	created := false
	b, err := os.ReadFile(m.path)
	switch {
	case err == nil:
		if file, err = parseFile(m.path, b); err != nil {
			return PatchResult{}, fmt.Errorf("%w: %s: %v; fix the file first", ErrFileInvalid, m.path, Message(err))
		}
	case errors.Is(err, os.ErrNotExist):
		created = true
	default:
		return PatchResult{}, fmt.Errorf("read config file: %w", err)
	}
	for k, v := range clean {
		switch f, _ := Lookup(k); {
		case v == nil:
			delete(file, k)
		case f.MergeByName:
			file[k] = withoutBareTables(mergeTables(file[k], v), v)
		default:
			file[k] = v
		}
	}
	c, sources, err := build(layers{base: m.base, file: file, env: m.env, flags: m.flags})
	if err != nil {
		return PatchResult{}, err
	}
	out, err := marshalFile(m.path, file)
	if err != nil {
		return PatchResult{}, err
	}
	// What is written must read back as what was applied, or the next
	// start (and every later PATCH) would meet a file it cannot use.
	if err := roundTrip(m.path, out, c, layers{base: m.base, env: m.env, flags: m.flags}); err != nil {
		return PatchResult{}, err
	}
	if err := atomicfile.WriteFile(m.path, out, 0o600); err != nil {
		return PatchResult{}, fmt.Errorf("write config file: %w", err)
	}
	m.file, m.fileHash = file, sha256.Sum256(out)
	snap := m.apply(c, sources, FromAPI)

	res := PatchResult{Updated: sortedKeys(clean), ReloadRequired: []string{}, File: m.path, Created: created, Generation: snap.Generation}
	for _, k := range res.Updated {
		if f, _ := Lookup(k); f.Restart && slices.Contains(restartKeys(m.boot, c), k) {
			res.ReloadRequired = append(res.ReloadRequired, k)
		}
		if s := sources[k]; s == FromEnv || s == FromFlag {
			if res.Overridden == nil {
				res.Overridden = map[string]string{}
			}
			f, _ := Lookup(k)
			res.Overridden[k] = map[string]string{FromEnv: "env " + f.Env, FromFlag: FromFlag}[s]
		}
	}
	return res, nil
}

// apply swaps in a new snapshot and tells subscribers. m.mu is held.
func (m *Manager) apply(c *Config, sources map[string]string, source string) *Snapshot {
	old := m.cur.Load()
	snap := &Snapshot{Config: c, Generation: old.Generation + 1, Sources: sources, LoadedAt: time.Now()}
	m.cur.Store(snap)
	m.lastErr.Store(nil)
	ch := Change{Old: old, New: snap, Source: source, Changed: changedKeys(old.Config, c)}
	for _, k := range ch.Changed {
		if f, _ := Lookup(k); f.Restart {
			ch.Restart = append(ch.Restart, k)
		}
	}
	m.log.Info("config applied", "source", source, "generation", snap.Generation, "changed", ch.Changed, "restart_required", ch.Restart)
	for _, fn := range m.subs {
		fn(ch)
	}
	return snap
}

// reject records a refused change and tells subscribers. m.mu is held.
func (m *Manager) reject(source string, err error) error {
	m.lastErr.Store(&rejection{msg: Message(err), at: time.Now()})
	m.log.Error("config change rejected; the previous configuration keeps serving", "source", source, "file", m.path, "error", Message(err))
	ch := Change{Old: m.cur.Load(), Source: source, Err: err}
	for _, fn := range m.subs {
		fn(ch)
	}
	return err
}

// restartKeys lists restart-only keys whose value differs from boot.
func restartKeys(boot, now *Config) []string {
	out := []string{}
	for _, k := range changedKeys(boot, now) {
		if f, _ := Lookup(k); f.Restart {
			out = append(out, k)
		}
	}
	return out
}

// Watch reloads the config file whenever it changes until ctx ends. It
// watches the file's directory, so editors that write a new file and rename
// it over the old one are seen, and it waits for debounce of quiet before
// reading, so a burst of writes is applied once.
func (m *Manager) Watch(ctx context.Context, debounce time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config file: %w", err)
	}
	path := m.File()
	dir, name := filepath.Dir(path), filepath.Base(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		w.Close()
		return fmt.Errorf("watch config file: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch config dir %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) == name {
					timer.Reset(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				m.log.Warn("config watcher error", "error", err)
			case <-timer.C:
				_ = m.Reload() // logged and recorded by Reload
			}
		}
	}()
	return nil
}

// roundTrip decodes b, a config file about to be written, with the strict
// decoder a start uses, and checks that it gives the config c (with the
// other layers of l). Each key that would read back differently is an
// error, so nothing is written.
func roundTrip(path string, b []byte, c *Config, l layers) error {
	file, err := parseFile(path, b)
	if err != nil {
		return fmt.Errorf("%w: the file this change would write does not read back: %v", ErrInvalid, Message(err))
	}
	l.file = file
	back, _, err := build(l)
	if err != nil {
		return fmt.Errorf("%w: the file this change would write does not read back: %v", ErrInvalid, Message(err))
	}
	var errs []error
	for _, k := range changedKeys(c, back) {
		errs = append(errs, &KeyError{Key: k, Source: FromAPI, Msg: fmt.Sprintf("the value would not survive being written to %s (it reads back as %v); nothing was changed", filepath.Base(path), back.Flat(true)[k])})
	}
	return joinInvalid(errs)
}

// withoutBareTables drops, from a merged list, the tables the patch named
// that are left with nothing but their name: such a table says no more
// than its absence, and this is how a PATCH removes one (null every key
// it set).
func withoutBareTables(merged []any, patch any) []any {
	named := map[string]bool{}
	for _, t := range patch.([]any) {
		named[tableName(t.(map[string]any))] = true
	}
	out := merged[:0]
	for _, t := range merged {
		m := t.(map[string]any)
		if len(m) == 1 && named[tableName(m)] {
			continue
		}
		out = append(out, m)
	}
	return out
}

func marshalFile(path string, flat map[string]any) ([]byte, error) {
	p, err := parserFor(path)
	if err != nil {
		return nil, err
	}
	nested := maps.Unflatten(flat, ".")
	b, err := p.Marshal(nested)
	if err != nil {
		return nil, fmt.Errorf("encode config file: %w", err)
	}
	return b, nil
}

// DecodePatch reads a PATCH /api/v1/config body: one JSON object of dotted
// keys to values. Numbers keep their exact text so 1.5 is never taken for 1.
func DecodePatch(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var patch map[string]any
	if err := dec.Decode(&patch); err != nil {
		return nil, fmt.Errorf("body must be a JSON object of dotted keys to values, e.g. {\"log.level\":\"debug\"}: %v", err)
	}
	if dec.More() {
		return nil, errors.New("body must hold exactly one JSON object")
	}
	if patch == nil {
		return nil, errors.New("body must be a JSON object, not null")
	}
	return patch, nil
}
