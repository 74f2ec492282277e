package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/pack"
	"github.com/porticohq/portico/hostapi"
)

// PacksDir is the directory under the install directory that holds the
// installed packs, one directory each, as they were verified.
const PacksDir = ".packs"

// Events of packs.
const (
	EventPackInstalled   = "pack.installed"
	EventPackUninstalled = "pack.uninstalled"
)

// PackRef names the pack (and its version) a plugin came from.
type PackRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// PackInfo describes an installed pack.
type PackInfo struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Description string    `json:"description"`
	ABI         string    `json:"abi"`
	Plugins     []string  `json:"plugins"`
	Digest      string    `json:"digest"`              // "sha256:<hex>", what a signature signs
	Trusted     bool      `json:"trusted"`             // signed by a key in packs.trusted_keys
	SignedBy    string    `json:"signed_by,omitempty"` // the signature's key, trusted or not
	Source      string    `json:"source"`              // its directory, or "memory"
	InstalledAt time.Time `json:"installed_at"`
	// Previous is the version this install replaced, if any.
	Previous string `json:"previous_version,omitempty"`
}

// installedPack is one pack the manager runs; not modified once stored.
type installedPack struct {
	p           *pack.Pack
	dir         string // "" when it lives in memory only
	installedAt time.Time
}

func (ip *installedPack) ref() *PackRef {
	return &PackRef{Name: ip.p.Manifest.Name, Version: ip.p.Manifest.Version}
}

func (ip *installedPack) info(c *config.Config) PackInfo {
	man := ip.p.Manifest
	d := ip.p.Digest()
	i := PackInfo{Name: man.Name, Version: man.Version, Description: man.Description, ABI: man.ABI,
		Digest: "sha256:" + hex.EncodeToString(d[:]), Source: ip.dir, InstalledAt: ip.installedAt.UTC(), Plugins: []string{}}
	if i.Source == "" {
		i.Source = "memory"
	}
	for _, pl := range man.Plugins {
		i.Plugins = append(i.Plugins, pl.Name)
	}
	if ip.p.Signature != nil {
		i.SignedBy = ip.p.Signature.Key
	}
	i.Trusted, _ = CheckPack(ip.p, c.Packs)
	return i
}

func (m *Manager) packSet() map[string]*installedPack {
	if p := m.packs.Load(); p != nil {
		return *p
	}
	return nil
}

// Packs lists the installed packs, by name.
func (m *Manager) Packs() []PackInfo {
	m.mu.Lock()
	c := m.cfg
	m.mu.Unlock()
	out := []PackInfo{}
	for _, ip := range m.packSet() {
		out = append(out, ip.info(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// packConfig is the configuration of a pack's plugin: its [[plugins]]
// table, plus the grants the pack requests when the pack is signed by a
// trusted key and packs.grant_requested is on.
func packConfig(c *config.Config, p *pack.Pack, pl pack.Plugin) config.PluginEntry {
	pc := configFor(c, pl.Name)
	if trusted, _ := CheckPack(p, c.Packs); trusted && c.Packs.GrantRequested {
		pc.Grants = slices.Clone(pc.Grants)
		for _, g := range pl.Grants {
			if !slices.Contains(pc.Grants, g) {
				pc.Grants = append(pc.Grants, g)
			}
		}
	}
	return pc
}

// packSource is where a pack's plugin loads from: the pack in memory (so
// a reload reads what was verified, not files changed on disk since).
func packSource(ip *installedPack, name string) (source, error) {
	sub, err := ip.p.PluginFS(name)
	if err != nil {
		return source{}, err
	}
	desc := "pack " + ip.p.Manifest.Name
	if ip.dir != "" {
		desc = filepath.Join(ip.dir, name)
	}
	return source{fsys: sub, desc: desc, pack: ip.ref()}, nil
}

// packsWanted lists the plugins of the installed packs for wanted.
func (m *Manager) packsWanted(c *config.Config) map[string]struct {
	src source
	cfg config.PluginEntry
} {
	out := map[string]struct {
		src source
		cfg config.PluginEntry
	}{}
	for _, ip := range m.packSet() {
		for _, pl := range ip.p.Manifest.Plugins {
			src, err := packSource(ip, pl.Name)
			if err != nil {
				continue // not reached: the pack lists pl
			}
			out[pl.Name] = struct {
				src source
				cfg config.PluginEntry
			}{src, packConfig(c, ip.p, pl)}
		}
	}
	return out
}

// loadPacks reads the packs installed in earlier runs from the install
// directory, checking each again (limits, ABI, signature policy): a pack
// that no longer passes is not loaded, and the reason is logged. m.mu is
// held.
func (m *Manager) loadPacks(c *config.Config) {
	if m.d.InstallDir == "" {
		return
	}
	dirs, _ := os.ReadDir(filepath.Join(m.d.InstallDir, PacksDir))
	set := map[string]*installedPack{}
	for name, ip := range m.packSet() {
		set[name] = ip
	}
	for _, d := range dirs {
		if !d.IsDir() || !PluginName.MatchString(d.Name()) {
			continue // temporary and old directories start with "."
		}
		dir := filepath.Join(m.d.InstallDir, PacksDir, d.Name())
		p, err := pack.ParseDir(dir, PackLimits(c.Packs))
		if err == nil && p.Manifest.Name != d.Name() {
			err = fmt.Errorf("%w: the directory is named %q but the pack %q", pack.ErrInvalid, d.Name(), p.Manifest.Name)
		}
		if err == nil {
			err = p.CheckABI(hostapi.ABIMajor, hostapi.ABIMinor)
		}
		if err == nil {
			_, err = CheckPack(p, c.Packs)
		}
		if err != nil {
			m.d.Logger.Error("installed pack not loaded", "pack", d.Name(), "dir", dir, "error", err)
			continue
		}
		st, _ := os.Stat(filepath.Join(dir, pack.ManifestFile))
		ip := &installedPack{p: p, dir: dir, installedAt: time.Now()}
		if st != nil {
			ip.installedAt = st.ModTime()
		}
		set[p.Manifest.Name] = ip
	}
	m.packs.Store(&set)
}

// InstallPack installs a pack, or upgrades the installed pack of the same
// name, all or nothing. It checks the pack (ABI, and the signature against
// packs.trusted_keys as packs.signatures says), then loads and warms every
// plugin of the new version while the running ones keep serving, stores the
// pack in the install directory (in memory only when the manager has
// none), and swaps them all in with one registry snapshot; calls in flight
// finish on the old versions, which are then closed. On any error nothing
// changes. Errors wrap pack.ErrUnsigned, pack.ErrSignature,
// pack.ErrUntrusted, pack.ErrABI, ErrInvalid (a plugin that does not load)
// or ErrConflict (a plugin or skill name taken by something else).
//
// A pack parsed from an fs.FS (pack.Parse, e.g. an embed.FS) installs the
// same way as an uploaded archive (pack.Read). Call it after LoadAll.
func (m *Manager) InstallPack(ctx context.Context, p *pack.Pack) (PackInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cfg
	name := p.Manifest.Name
	if err := p.CheckABI(hostapi.ABIMajor, hostapi.ABIMinor); err != nil {
		return PackInfo{}, err
	}
	if _, err := CheckPack(p, c.Packs); err != nil {
		return PackInfo{}, err
	}
	reg := m.reg.Load()
	old := m.packSet()[name]
	base := reg
	if old != nil {
		for _, pl := range old.p.Manifest.Plugins {
			base = base.without(pl.Name)
		}
	}
	for _, pl := range p.Manifest.Plugins {
		if e, ok := base.plugins[pl.Name]; ok && !awaited(e) {
			return PackInfo{}, fmt.Errorf("%w: pack %q: plugin %q already comes from %s; remove it there or rename it in the pack", ErrConflict, name, pl.Name, e.src.desc)
		}
	}
	ip := &installedPack{p: p, installedAt: time.Now()}
	if m.d.InstallDir != "" {
		ip.dir = filepath.Join(m.d.InstallDir, PacksDir, name)
	}
	var built []*entry
	fail := func(err error) (PackInfo, error) {
		for _, e := range built {
			e.close(ctx)
		}
		return PackInfo{}, err
	}
	for _, pl := range p.Manifest.Plugins {
		src, err := packSource(ip, pl.Name)
		if err != nil {
			return fail(err)
		}
		// Middleware would go live as it loads (its slot swaps at once),
		// before the pack is known to be whole: packs carry no middleware.
		mb, err := src.read(ManifestFile)
		if err != nil {
			return fail(fmt.Errorf("%w: pack %q: %v", ErrInvalid, name, err))
		}
		man, err := ParseManifest(mb)
		if err != nil {
			return fail(fmt.Errorf("%w: pack %q: plugin %q: %w", ErrInvalid, name, pl.Name, err))
		}
		if slices.Contains(man.Kinds, hostapi.KindMiddleware) {
			return fail(fmt.Errorf("%w: pack %q: plugin %q is middleware; packs carry skills, hooks and channels, install middleware with POST /api/v1/plugins", ErrInvalid, name, pl.Name))
		}
		e := m.build(ctx, pl.Name, src, packConfig(c, p, pl))
		if e.state == Failed {
			msg := e.lastErr
			if !strings.Contains(msg, strconv.Quote(pl.Name)) {
				msg = fmt.Sprintf("plugin %q: %s", pl.Name, msg)
			}
			if strings.Contains(msg, "is required but not granted") && slices.ContainsFunc(pl.Grants, func(g string) bool { return strings.Contains(msg, strconv.Quote(g)) }) {
				msg += "; or, when the pack is signed by a trusted key, set packs.grant_requested = true to grant what its pack.toml requests"
			}
			return fail(fmt.Errorf("%w: pack %q: %s", ErrInvalid, name, msg))
		}
		if e = m.admit(base, e); e.state == Failed { // admit closed it
			return fail(fmt.Errorf("%w: pack %q: plugin %q: %s", ErrConflict, name, pl.Name, e.lastErr))
		}
		base = base.with(e)
		built = append(built, e)
	}
	if ip.dir != "" {
		if err := storePack(p, ip.dir); err != nil {
			return fail(fmt.Errorf("store pack %q: %w", name, err))
		}
	}
	// All new plugins are warm: one swap makes the whole pack live.
	m.reg.Store(base)
	set := map[string]*installedPack{}
	for k, v := range m.packSet() {
		set[k] = v
	}
	set[name] = ip
	m.packs.Store(&set)
	if old != nil {
		for _, pl := range old.p.Manifest.Plugins {
			if e, ok := reg.plugins[pl.Name]; ok {
				e.close(ctx)
			}
		}
	}
	for _, e := range built {
		m.announce(EventInstalled, e)
	}
	info := ip.info(c)
	data := map[string]any{"pack": name, "version": p.Manifest.Version, "plugins": info.Plugins, "trusted": info.Trusted}
	if old != nil {
		info.Previous = old.p.Manifest.Version
		data["previous_version"] = info.Previous
	}
	m.d.Bus.Publish(events.Event{Type: EventPackInstalled, Data: data})
	return info, nil
}

// awaited reports whether e only stands for a [[plugins]] table without a
// path whose plugin is not there yet (it failed to read a manifest): a
// pack may provide it.
func awaited(e *entry) bool {
	return e.cfg.Path == "" && e.src.pack == nil && e.src.desc != "embedded" && e.manifest == nil
}

// storePack writes p to dir, replacing what is there: the new version is
// written beside the old, then renamed into place.
func storePack(p *pack.Pack, dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	suffix := filepath.Base(dir) + "-" + hex.EncodeToString(rnd[:])
	tmp, prev := filepath.Join(parent, ".new-"+suffix), filepath.Join(parent, ".old-"+suffix)
	if err := p.WriteDir(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	hadOld := true
	if err := os.Rename(dir, prev); errors.Is(err, os.ErrNotExist) {
		hadOld = false
	} else if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if hadOld {
			os.Rename(prev, dir)
		}
		os.RemoveAll(tmp)
		return err
	}
	if hadOld {
		os.RemoveAll(prev)
	}
	return nil
}

// UninstallPack removes an installed pack: its plugins leave the registry
// in one swap and are closed, and its directory is deleted. With purge the
// plugins' key-value data is deleted too.
func (m *Manager) UninstallPack(ctx context.Context, name string, purge bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ip, ok := m.packSet()[name]
	if !ok {
		return fmt.Errorf("%w: pack %q", ErrNotFound, name)
	}
	reg := m.reg.Load()
	next := reg
	for _, pl := range ip.p.Manifest.Plugins {
		next = next.without(pl.Name)
	}
	m.reg.Store(next)
	set := map[string]*installedPack{}
	for k, v := range m.packSet() {
		if k != name {
			set[k] = v
		}
	}
	m.packs.Store(&set)
	var errs []error
	for _, pl := range ip.p.Manifest.Plugins {
		if e, ok := reg.plugins[pl.Name]; ok {
			e.close(ctx)
		}
		errs = append(errs, m.d.Store.Delete(ctx, disabledKey(pl.Name), store.Sync))
		if purge {
			errs = append(errs, purgePrefix(ctx, m.d.Store, kvPrefix(pl.Name)))
		}
	}
	if ip.dir != "" {
		errs = append(errs, os.RemoveAll(ip.dir))
	}
	m.d.Bus.Publish(events.Event{Type: EventPackUninstalled, Data: map[string]any{"pack": name, "version": ip.p.Manifest.Version, "purged": purge}})
	return errors.Join(errs...)
}

// PackLimits returns the limits the packs.max_* config keys set.
func PackLimits(c config.Packs) pack.Limits {
	return pack.Limits{MaxEntries: int(c.MaxEntries), MaxEntryBytes: c.MaxEntryBytes, MaxTotalBytes: c.MaxTotalBytes}
}

// CheckPack applies the packs.signatures and packs.trusted_keys policy of c
// to p (pack.Check).
func CheckPack(p *pack.Pack, c config.Packs) (trusted bool, err error) {
	return pack.Check(p, c.TrustedKeys, c.SignaturesRequired())
}
