package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
)

// Errors of installing and uninstalling.
var (
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid plugin")
)

// EventInstalled and EventUninstalled announce API installs.
const (
	EventInstalled   = "plugin.installed"
	EventUninstalled = "plugin.uninstalled"
)

// installed reports whether a plugin's source is the install directory.
func (m *Manager) installed(e *entry) bool {
	return m.d.InstallDir != "" && filepath.Dir(e.src.desc) == filepath.Clean(m.d.InstallDir)
}

// Install checks, compiles and warms an uploaded plugin (manifest and
// module) before it becomes active, then stores it in the install
// directory. Installing a name that is already installed upgrades it; a
// name that comes from the config file or the binary is refused.
func (m *Manager) Install(ctx context.Context, manifest, module []byte) (Info, error) {
	if m.d.InstallDir == "" {
		return Info{}, fmt.Errorf("%w: installing plugins is turned off", ErrConflict)
	}
	man, err := ParseManifest(manifest)
	if err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.reg.Load()
	old, exists := reg.plugins[man.Name]
	if exists && !m.installed(old) {
		return Info{}, fmt.Errorf("%w: plugin %q comes from %s; change it there", ErrConflict, man.Name, old.src.desc)
	}
	if err := os.MkdirAll(m.d.InstallDir, 0o700); err != nil {
		return Info{}, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(m.d.InstallDir, ".install-"+man.Name+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return Info{}, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), manifest, 0o600); err != nil {
		return Info{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, man.Module), module, 0o600); err != nil {
		return Info{}, err
	}
	final := filepath.Join(m.d.InstallDir, man.Name)
	cfg := configFor(m.cfg, man.Name)
	e := m.build(ctx, man.Name, source{fsys: os.DirFS(tmp), desc: tmp}, cfg)
	if e.state == Failed {
		return Info{}, fmt.Errorf("%w: %s", ErrInvalid, e.lastErr)
	}
	if e = m.admit(reg.without(man.Name), e); e.state == Failed {
		return Info{}, fmt.Errorf("%w: %s", ErrConflict, e.lastErr)
	}
	// The new version works: put its files in place. Modules are read at
	// load, so the running version does not need the old files.
	if err := os.RemoveAll(final); err != nil {
		e.close(ctx)
		return Info{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		e.close(ctx)
		return Info{}, err
	}
	e.src = source{fsys: os.DirFS(final), desc: final}
	m.reg.Store(reg.with(e))
	if exists {
		old.close(ctx)
	}
	m.announce(EventInstalled, e)
	return e.info(), nil
}

// configFor returns the [[plugins]] table for name, or an empty one.
func configFor(c *config.Config, name string) config.PluginEntry {
	if c != nil {
		for _, p := range c.Plugins {
			if p.Name == name {
				return p
			}
		}
	}
	return config.PluginEntry{Name: name}
}

// Uninstall removes an installed plugin: its skills go away at once and its
// files are deleted. With purge its key-value data is deleted too;
// otherwise it stays for a later reinstall.
func (m *Manager) Uninstall(ctx context.Context, name string, purge bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg, e, err := m.find(name)
	if err != nil {
		return err
	}
	if !m.installed(e) {
		return fmt.Errorf("%w: plugin %q comes from %s, not an install; remove it there", ErrConflict, name, e.src.desc)
	}
	m.reg.Store(reg.without(name))
	e.close(ctx)
	if err := os.RemoveAll(e.src.desc); err != nil {
		return err
	}
	if err := m.d.Store.Delete(ctx, disabledKey(name), store.Sync); err != nil {
		return err
	}
	if purge {
		if err := purgePrefix(ctx, m.d.Store, kvPrefix(name)); err != nil {
			return fmt.Errorf("purge data of %s: %w", name, err)
		}
	}
	m.d.Bus.Publish(events.Event{Type: EventUninstalled, Data: map[string]any{"plugin": name, "purged": purge}})
	return nil
}

// purgePrefix deletes every key under prefix, in batches.
func purgePrefix(ctx context.Context, kv store.KV, prefix string) error {
	for {
		var keys [][]byte
		err := kv.Scan(ctx, []byte(prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			keys = append(keys, append([]byte{}, k...))
			if len(keys) == 1000 {
				return store.ErrStop
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = kv.Update(ctx, func(tx store.Txn) error {
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}, store.Sync)
		if err != nil {
			return err
		}
	}
}
