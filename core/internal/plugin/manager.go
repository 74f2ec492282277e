package plugin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/tracing"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/httpwasm"
)

// State is where a plugin is in its life.
type State string

// States: loading -> active <-> disabled; failed.
const (
	Loading  State = "loading"
	Active   State = "active"
	Disabled State = "disabled"

	// DisabledByConfig and DisabledByAPI say why a plugin is disabled.
	DisabledByConfig       = "config"
	DisabledByAPI          = "api"
	Failed           State = "failed"
)

// Serves says whether a plugin in this state answers calls: active, or
// loading (a call waits for the load). Lists of what can be called (MCP
// tools, agent cards, triggers) hold the plugins that serve.
func (s State) Serves() bool { return s == Active || s == Loading }

// Errors of the manager, for errors.Is; the API maps them to codes.
var (
	ErrNotFound      = errors.New("not found")
	ErrDisabled      = errors.New("plugin is disabled")
	ErrFailed        = errors.New("plugin has failed")
	ErrSkillConflict = errors.New("skill name already taken")
	ErrInput         = errors.New("invalid skill input")
)

// Event types the manager publishes.
const (
	EventLoaded   = "plugin.loaded"
	EventReloaded = "plugin.reloaded"
	EventDisabled = "plugin.disabled"
	EventEnabled  = "plugin.enabled"
	EventFailed   = "plugin.failed"
)

// source is where a plugin's manifest and module come from.
type source struct {
	fsys fs.FS    // the plugin's directory
	desc string   // "embedded" or the directory path
	pack *PackRef // the pack it came from; nil for plugins not from a pack
}

func (s source) read(name string) ([]byte, error) { return fs.ReadFile(s.fsys, name) }

// fixed says whether the source's files cannot change while the process
// runs (they are compiled into the binary).
func (s source) fixed() bool { return s.desc == "embedded" || s.desc == bundledDesc }

// rereader reads e's module again where its source is fixed; a module
// from a directory is kept instead, since the file may change (a failed
// reload keeps the old version serving, so its bytes must stay).
func rereader(e *entry) func() ([]byte, error) {
	if !e.src.fixed() {
		return nil
	}
	return func() ([]byte, error) { return e.src.read(e.manifest.Module) }
}

// entry is one plugin version in a registry snapshot. It is not modified
// after the snapshot is published; changes make a new entry.
type entry struct {
	name     string
	src      source
	cfg      config.PluginEntry
	manifest *Manifest
	plugin   *hostapi.Plugin // nil unless active
	host     *pluginHost
	hook     *hookRunner          // set for an active hook plugin
	mw       *httpwasm.Middleware // set for an active middleware plugin
	state    State
	// disabledBy says who keeps a disabled plugin off: the config
	// (enabled = false) or the API (POST .../disable).
	disabledBy string
	lastErr    string
	loadedAt   time.Time
	sha        string
	size       int
	granted    []string
	// loading is set while StartLoading's background load of this entry
	// runs (state loading); sub is a hook plugin's subscription made
	// before its load, handed to its runner.
	loading *loadWait
	sub     *events.Subscription
}

// registry is the immutable set of plugins and their skills.
type registry struct {
	plugins map[string]*entry
	skills  map[string]*entry

	routesOnce sync.Once // routeList is built on first use
	skillsOnce sync.Once // skillsJSON is built on first use
	skillsJSON []byte
	routeList  []routeEntry
	gen        uint64 // registryGen when made
}

func (r *registry) with(e *entry) *registry {
	n := &registry{plugins: make(map[string]*entry, len(r.plugins)+1), skills: map[string]*entry{}, gen: registryGen.Add(1)}
	for k, v := range r.plugins {
		n.plugins[k] = v
	}
	if e != nil {
		n.plugins[e.name] = e
	}
	n.index()
	return n
}

func (r *registry) without(name string) *registry {
	n := r.with(nil)
	delete(n.plugins, name)
	n.index()
	return n
}

// index maps skill names to their plugins; entries whose manifest was
// checked against the others (by admit) never collide here.
func (r *registry) index() {
	r.skills = map[string]*entry{}
	for _, e := range r.plugins {
		if e.manifest == nil {
			continue
		}
		for _, s := range e.manifest.Skills {
			r.skills[s.Name] = e
		}
	}
}

// Deps are the core services plugins reach.
type Deps struct {
	Runtime *hostapi.Runtime
	Store   store.KV
	Bus     *events.Bus
	Audit   *audit.Trail
	Logger  *slog.Logger
	// Embedded are first-party plugins carried in the binary: a directory
	// per plugin name.
	Embedded fs.FS
	Names    []string
	// Bundled are plugins an embedding program carries: trees of plugin
	// directories (<name>/plugin.toml and its module), loaded whatever
	// plugin.embedded says; see bundled.go.
	Bundled []fs.FS
	// LLM serves llm_complete for the named plugin, whose llm_models
	// allow-list (empty: any configured model) it must enforce; nil
	// answers "no LLM provider is configured".
	LLM func(ctx context.Context, plugin string, models []string, request []byte) ([]byte, error)
	// MCP serves mcp_call_tool for the named plugin (the upstream MCP
	// servers); nil answers that none is configured.
	MCP func(ctx context.Context, plugin string, request []byte) ([]byte, error)
	// Tracer makes spans of skill calls and hook deliveries; nil: off.
	Tracer *tracing.Tracer
	// InstallDir holds plugins installed over the API, a directory each;
	// empty turns installing off.
	InstallDir string
}

// Manager owns the plugins. All changes are serialized; reads (calls,
// listings) take the current snapshot without locking.
type Manager struct {
	d   Deps
	mu  sync.Mutex
	cfg *config.Config
	reg atomic.Pointer[registry]
	// slots hold each middleware plugin's current version by name
	// (*nethttp.Slot), so a chain follows reloads without
	// dropping requests.
	slots sync.Map
	// logLimits are the live log.* settings plugin log lines are limited
	// by; logDrops counts the lines dropped per plugin (*atomic.Uint64).
	logLimits atomic.Pointer[config.Log]
	// hookWindow is plugin.hook_commit_window, for the hook runners.
	hookWindow atomic.Int64
	logDrops   sync.Map
	// packs are the installed packs by name; replaced, never modified,
	// with m.mu held.
	packs atomic.Pointer[map[string]*installedPack]
	// loaded is set by LoadAll; Apply before it only keeps the config.
	loaded bool
	// loadDone is closed when StartLoading's background load ends;
	// cancelLoad cuts it short (Close).
	loadDone   atomic.Pointer[chan struct{}]
	cancelLoad atomic.Pointer[context.CancelFunc]
	// deferring is set while the start's load runs; pending is the last
	// config Apply was given meanwhile, applied when the load ends.
	pendMu    sync.Mutex
	deferring bool
	pending   *config.Config
	// beforeStart, set by tests, runs as a background load takes a plugin.
	beforeStart func(ctx context.Context, name string)
}

// setConfig makes c the manager's config, with the live settings its
// goroutines read (under mu, or before the manager is shared).
func (m *Manager) setConfig(c *config.Config) {
	m.cfg = c
	m.logLimits.Store(&c.Log)
	m.hookWindow.Store(int64(c.Plugin.HookCommitWindow))
}

// NewManager returns a manager with no plugins; LoadAll loads them.
func NewManager(d Deps) *Manager {
	m := &Manager{d: d}
	m.setConfig(config.Default())
	m.reg.Store(&registry{plugins: map[string]*entry{}, skills: map[string]*entry{}, gen: registryGen.Add(1)})
	return m
}

// registryGen numbers registry snapshots, across managers: a snapshot's
// gen differs from every other's.
var registryGen atomic.Uint64

// Generation identifies the registry snapshot in force: it changes with
// every change of any plugin (loaded, reloaded, disabled, failed, removed),
// so what is built from the registry (middleware chains) knows when to
// build again.
func (m *Manager) Generation() uint64 { return m.reg.Load().gen }

func disabledKey(name string) []byte { return []byte("plugins/disabled/" + name) }

// wanted lists the plugins a config asks for: the embedded ones (unless
// turned off or overridden by a [[plugins]] table of the same name) and
// the configured directories.
func (m *Manager) wanted(c *config.Config) map[string]struct {
	src source
	cfg config.PluginEntry
} {
	out := map[string]struct {
		src source
		cfg config.PluginEntry
	}{}
	if c.Plugin.Embedded && m.d.Embedded != nil {
		for _, n := range m.d.Names {
			sub, err := fs.Sub(m.d.Embedded, n)
			if err == nil {
				out[n] = struct {
					src source
					cfg config.PluginEntry
				}{source{fsys: sub, desc: "embedded"}, config.PluginEntry{Name: n}}
			}
		}
	}
	for name, src := range m.bundled() {
		out[name] = struct {
			src source
			cfg config.PluginEntry
		}{src, config.PluginEntry{Name: name}}
	}
	if m.d.InstallDir != "" {
		dirs, _ := os.ReadDir(m.d.InstallDir)
		for _, d := range dirs {
			if !d.IsDir() || !PluginName.MatchString(d.Name()) {
				continue
			}
			path := filepath.Join(m.d.InstallDir, d.Name())
			if _, err := os.Stat(filepath.Join(path, ManifestFile)); err == nil {
				out[d.Name()] = struct {
					src source
					cfg config.PluginEntry
				}{source{fsys: os.DirFS(path), desc: path}, config.PluginEntry{Name: d.Name()}}
			}
		}
	}
	for name, w := range m.packsWanted(c) {
		if _, taken := out[name]; !taken { // InstallPack refuses taken names
			out[name] = w
		}
	}
	for _, p := range c.Plugins {
		path := p.Path
		if path == "" {
			if e, ok := out[p.Name]; ok && e.src.pack != nil {
				continue // packsWanted applied this table
			}
			// A table without a path grants and configures the embedded
			// or installed plugin of that name.
			if e, ok := out[p.Name]; ok && (e.src.desc == "embedded" || e.src.desc == bundledDesc) {
				out[p.Name] = struct {
					src source
					cfg config.PluginEntry
				}{e.src, p}
				continue
			}
			// A table for a plugin not installed yet grants and configures
			// it ahead of its install (configFor): a normal state, so the
			// plugin is not listed until it is installed.
			if m.d.InstallDir == "" {
				continue
			}
			path = filepath.Join(m.d.InstallDir, p.Name)
			if _, err := os.Stat(filepath.Join(path, ManifestFile)); err != nil {
				continue
			}
		}
		out[p.Name] = struct {
			src source
			cfg config.PluginEntry
		}{source{fsys: os.DirFS(path), desc: path}, p}
	}
	return out
}

// LoadAll loads every plugin the config asks for and returns once each
// is active or failed: StartLoading, then WaitLoaded.
func (m *Manager) LoadAll(ctx context.Context, c *config.Config) {
	m.StartLoading(ctx, c)
	m.WaitLoaded(ctx)
}

// StartLoading registers every plugin the config asks for, from its
// manifest, and returns; their modules compile and start in the
// background. Until its load ends a plugin is in state loading: it is
// listed with its skills, and a call to it (a skill, a channel, a
// middleware) waits for it, up to its call timeout, moving it to the
// front of the queue. A plugin that fails to load is kept in state failed
// with its reason; it does not stop the others or the gateway. Changes
// (reload, install, a new config, Close) wait for the load to end.
func (m *Manager) StartLoading(ctx context.Context, c *config.Config) {
	m.mu.Lock()
	m.setConfig(c)
	m.loaded = true
	m.loadPacks(c)
	want := m.wanted(c)
	all := make([]*entry, 0, len(want))
	for name, w := range want {
		e, wasm := m.prepare(ctx, name, w.src, w.cfg)
		all = append(all, e)
		if e.state != Loading {
			continue
		}
		if slices.Contains(e.manifest.Kinds, hostapi.KindHook) {
			// Subscribed now, so the events of the load's seconds wait
			// in the hook's queue rather than pass it by.
			var err error
			if e.sub, err = m.d.Bus.SubscribeAny(e.manifest.Hooks.Events, int(c.Events.Buffer)); err != nil {
				m.fail(e, err)
				continue
			}
		}
		e.loading = &loadWait{done: make(chan struct{}), wasm: wasm, timeout: or(w.cfg.CallTimeout, c.Plugin.CallTimeout).D()}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	reg := m.reg.Load()
	var queue []*entry
	for _, e := range all {
		a := m.admit(reg, e)
		reg = reg.with(a)
		switch {
		case a.state == Loading:
			queue = append(queue, a)
		case e.loading != nil: // refused by admit: nothing to wait for
			close(e.loading.done)
			m.announce(EventLoaded, a)
		default:
			m.announce(EventLoaded, a)
		}
	}
	m.reg.Store(reg)
	// Middleware a chain names first: every request on its paths waits for
	// it, the readiness probe's included when a group covers every path.
	chained := map[string]bool{}
	for _, g := range append(slices.Clone(c.Middleware.PreAuth), c.Middleware.PostAuth...) {
		for _, n := range g.Plugins {
			chained[n] = true
		}
	}
	slices.SortStableFunc(queue, func(a, b *entry) int {
		return cmp.Compare(b2i(!chained[a.name]), b2i(!chained[b.name]))
	})
	done := make(chan struct{})
	m.loadDone.Store(&done)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancelLoad.Store(&cancel)
	m.pendMu.Lock()
	m.deferring = true
	m.pendMu.Unlock()
	// The load goroutine keeps m.mu until every plugin has loaded, so no
	// change interleaves with it; then it applies the config changes that
	// came meanwhile, the latest last.
	go func() {
		defer close(done)
		defer cancel()
		m.startQueued(lctx, queue)
		m.mu.Unlock()
		for {
			m.pendMu.Lock()
			c := m.pending
			m.pending = nil
			if c == nil || lctx.Err() != nil {
				m.deferring = false
				m.pendMu.Unlock()
				return
			}
			m.pendMu.Unlock()
			if err := m.apply(lctx, c); err != nil {
				m.d.Logger.Error("a config change made during the start's plugin load was not applied", "error", err)
			}
		}
	}()
}

// loadWait is how callers of a plugin still loading wait for it.
type loadWait struct {
	done    chan struct{} // closed when the load ended (the registry holds its outcome)
	wanted  atomic.Bool   // a call waits: load it next
	timeout time.Duration // how long a call waits: the plugin's call timeout
	wasm    []byte        // the module, until the load has started it
}

// startQueued loads the queued plugins one at a time, in order (chained
// middleware, then by name), a plugin a call waits for first, and publishes each outcome as it comes; m.mu is held.
// One at a time because compiles take turns anyway (each uses every CPU;
// hostapi), and so a plugin a call waits for waits for one compile at
// most before its own.
func (m *Manager) startQueued(ctx context.Context, queue []*entry) {
	begin, n := time.Now(), len(queue)
	for len(queue) > 0 {
		i := max(slices.IndexFunc(queue, func(e *entry) bool { return e.loading.wanted.Load() }), 0)
		e := queue[i]
		queue = slices.Delete(queue, i, i+1)
		out := m.finishLoad(ctx, e)
		// m.mu is held: the registry still holds e.
		m.reg.Store(m.reg.Load().with(out))
		m.announce(EventLoaded, out)
		close(e.loading.done)
	}
	if n > 0 {
		m.d.Logger.Info("plugins loaded", "count", n, "took", time.Since(begin).Round(time.Millisecond))
	}
}

// finishLoad starts a plugin StartLoading registered, and returns the
// entry that replaces the loading one: active, or failed with the reason.
func (m *Manager) finishLoad(ctx context.Context, e *entry) *entry {
	if m.beforeStart != nil {
		m.beforeStart(ctx, e.name)
	}
	wasm := e.loading.wasm
	e.loading.wasm = nil // its bytes go as soon as it has started
	s := *e
	s.loading, s.loadedAt = nil, time.Now()
	err := ctx.Err()
	if err == nil {
		err = m.start(ctx, &s, wasm)
	}
	if err != nil {
		if s.sub != nil {
			s.sub.Close()
			s.sub = nil
		}
		m.fail(&s, err)
	}
	return &s
}

// fail marks e failed with err, and logs it.
func (m *Manager) fail(e *entry, err error) {
	e.state, e.lastErr = Failed, err.Error()
	m.d.Logger.Error("plugin not loaded", "plugin", e.name, "source", e.src.desc, "error", err)
}

// WaitLoaded returns once the plugins StartLoading registered have each
// loaded or failed, or ctx ends.
func (m *Manager) WaitLoaded(ctx context.Context) {
	if done := m.loadDone.Load(); done != nil {
		select {
		case <-*done:
		case <-ctx.Done():
		}
	}
}

// awaitLoad waits for e, a plugin still loading, to load: its turn comes
// next, and the wait lasts up to its call timeout, ctx's end or the load's
// end, whichever comes first.
func (m *Manager) awaitLoad(ctx context.Context, e *entry) error {
	e.loading.wanted.Store(true)
	wait := e.loading.timeout
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-e.loading.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: plugin %q is still loading after %s (its call timeout)", hostapi.ErrTimeout, e.name, wait)
	}
}

// build reads, checks and (unless disabled) loads one plugin. It never
// fails: a problem gives an entry in state failed.
func (m *Manager) build(ctx context.Context, name string, src source, pc config.PluginEntry) *entry {
	e, wasm := m.prepare(ctx, name, src, pc)
	if e.state != Loading {
		return e
	}
	if err := m.start(ctx, e, wasm); err != nil {
		m.fail(e, err)
	}
	return e
}

// prepare reads and checks one plugin and returns it in state loading
// with its module, ready for start, or disabled, or failed with the
// reason (and no module).
func (m *Manager) prepare(ctx context.Context, name string, src source, pc config.PluginEntry) (*entry, []byte) {
	e := &entry{name: name, src: src, cfg: pc, state: Loading, loadedAt: time.Now()}
	fail := func(err error) (*entry, []byte) {
		m.fail(e, err)
		return e, nil
	}
	mb, err := src.read(ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("no plugin at %s (its %s is missing); fix path in the [[plugins]] table named %q, or leave path out to use the plugin installed under that name", src.desc, ManifestFile, name))
	}
	if err != nil {
		return fail(fmt.Errorf("read %s in %s: %w", ManifestFile, src.desc, err))
	}
	if e.manifest, err = ParseManifest(mb); err != nil {
		return fail(err)
	}
	if e.manifest.Name != name {
		return fail(fmt.Errorf("the manifest names the plugin %q, the config %q", e.manifest.Name, name))
	}
	wasm, err := src.read(e.manifest.Module)
	if err != nil {
		return fail(fmt.Errorf("read module: %w", err))
	}
	sum := sha256.Sum256(wasm)
	e.sha, e.size = hex.EncodeToString(sum[:]), len(wasm)
	for _, req := range e.manifest.Capabilities.Required {
		if !slices.Contains(pc.Grants, req) {
			return fail(fmt.Errorf("capability %q is required but not granted; add it to grants in the [[plugins]] table named %q", req, name))
		}
	}
	if err := m.checkExtensionGrants(pc.Grants); err != nil {
		return fail(err)
	}
	for _, g := range pc.Grants {
		if slices.Contains(e.manifest.Capabilities.Required, g) || slices.Contains(e.manifest.Capabilities.Optional, g) {
			e.granted = append(e.granted, g)
		}
	}
	if pc.Off() {
		e.state, e.disabledBy = Disabled, DisabledByConfig
		return e, nil
	}
	if _, err := m.d.Store.Get(ctx, disabledKey(name)); err == nil {
		e.state, e.disabledBy = Disabled, DisabledByAPI
		return e, nil
	}
	return e, wasm
}

// start loads e's module through the runtime with its limits and grants.
func (m *Manager) start(ctx context.Context, e *entry, wasm []byte) error {
	c := m.cfg.Plugin
	pc := e.cfg
	host, err := newHost(ctx, e.name, m.d.Store, c.KVQuotaBytes, pc.Config, m.d.Bus, m.d.Audit, m.d.Logger)
	if err != nil {
		return err
	}
	host.logLim = newLogLimiter(&m.logLimits, m.logDropCounter(e.name))
	host.invoke, host.maxDepth, host.llm, host.llmModels = m.Invoke, int(c.MaxCallDepth), m.d.LLM, slices.Clone(pc.LLMModels)
	host.mcp = m.d.MCP
	host.http = newHTTPPolicy(pc.HTTPAllow, pc.HTTPPrivate, c.HTTPTimeout.D(), c.HTTPMaxResponse)
	opts := hostapi.Options{
		Name: e.name, Host: host, Grants: e.granted,
		MemoryLimitBytes: uint64(or(pc.MemoryBytes, c.MemoryBytes)),
		CallTimeout:      or(pc.CallTimeout, c.CallTimeout).D(),
		MaxOutputBytes:   int(c.MaxOutputBytes),
		PoolOptions: hostapi.PoolOptions{
			MinInstances:     minInstances(or(pc.MinInstances, c.MinInstances)),
			MaxInstances:     int(or(pc.MaxInstances, c.MaxInstances)),
			AcquireTimeout:   c.AcquireTimeout.D(),
			FailureThreshold: int(c.FailureThreshold),
			IdleRelease:      or(pc.IdleRelease, c.IdleReleaseAfter).D(),
			OnFailed:         func(err error) { m.markFailed(e.name, err) },
			// Dormant, an embedded plugin keeps not even its module's
			// bytes: they are read again from the binary.
			Source: rereader(e),
		},
		MaxHTTPRequests: int(c.HTTPMaxRequests),
		Kinds:           e.manifest.Kinds,
	}
	if slices.Contains(e.manifest.Kinds, hostapi.KindMiddleware) {
		return m.startMiddleware(ctx, e, wasm, host, opts)
	}
	p, err := m.d.Runtime.Load(ctx, wasm, opts)
	if err != nil {
		return err
	}
	e.plugin, e.host, e.state, e.lastErr = p, host, Active, ""
	if slices.Contains(e.manifest.Kinds, hostapi.KindHook) {
		if err := m.startHooks(e, int(m.cfg.Events.Buffer)); err != nil {
			p.Close(ctx)
			return err
		}
	}
	return nil
}

// minInstances is the config's min_instances for hostapi, whose 0 means
// its default: none is a negative value there.
func minInstances(n int64) int {
	if n == 0 {
		return -1
	}
	return int(n)
}

// Trim lets every plugin's instances that stayed idle for its
// idle_release_after go (down to its min_instances), and returns how many
// went.
func (m *Manager) Trim(now time.Time) int {
	n := 0
	for _, e := range m.reg.Load().plugins {
		if e.plugin != nil {
			n += e.plugin.Trim(now)
		}
		if e.mw != nil {
			n += e.mw.Trim(now)
		}
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// admit refuses an entry whose skills another plugin already provides.
func (m *Manager) admit(reg *registry, e *entry) *entry {
	if e.manifest == nil {
		return e
	}
	for _, s := range e.manifest.Skills {
		if other, ok := reg.skills[s.Name]; ok && other.name != e.name {
			e.close(context.Background())
			f := *e
			f.plugin, f.hook, f.state, f.loading, f.sub = nil, nil, Failed, nil, nil
			f.lastErr = fmt.Sprintf("%v: skill %q is already provided by plugin %q", ErrSkillConflict, s.Name, other.name)
			f.manifest = &Manifest{Name: e.manifest.Name, Version: e.manifest.Version, Description: e.manifest.Description, Kinds: e.manifest.Kinds}
			m.d.Logger.Error("plugin not loaded", "plugin", e.name, "error", f.lastErr)
			return &f
		}
	}
	return e
}

func (m *Manager) announce(typ string, e *entry) {
	data := map[string]any{"plugin": e.name, "state": e.state}
	if e.manifest != nil {
		data["version"] = e.manifest.Version
	}
	if e.lastErr != "" {
		data["error"] = e.lastErr
	}
	m.d.Bus.Publish(events.Event{Type: typ, Data: data})
}

// markFailed is the breaker's callback: the plugin leaves the active set.
func (m *Manager) markFailed(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.reg.Load()
	e, ok := reg.plugins[name]
	if !ok || e.state != Active {
		return
	}
	f := *e
	f.state, f.lastErr = Failed, err.Error()
	m.reg.Store(reg.with(&f))
	if e.hook != nil {
		go e.hook.stop() // called from a call's goroutine, maybe the hook's own
	}
	m.d.Logger.Error("plugin failed: too many traps or timeouts in a row", "plugin", name, "error", err)
	m.announce(EventFailed, &f)
}

// Reload loads the plugin again from its source (a new module or manifest)
// and swaps it in; calls in flight finish on the old instances, which are
// then closed. A reload that fails keeps the old version serving.
func (m *Manager) Reload(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg, old, err := m.find(name)
	if err != nil {
		return err
	}
	e := m.build(ctx, name, old.src, old.cfg)
	if e.state == Failed {
		if old.plugin != nil {
			// Keep serving the old version; remember why the reload failed.
			k := *old
			k.lastErr = "reload failed: " + e.lastErr
			m.reg.Store(reg.with(&k))
		} else {
			m.reg.Store(reg.with(e))
		}
		return fmt.Errorf("reload %s: %s", name, e.lastErr)
	}
	e = m.admit(reg.without(name), e)
	m.reg.Store(reg.with(e))
	if e.state == Disabled {
		m.middlewareOff(name)
	}
	old.close(ctx)
	m.announce(EventReloaded, e)
	if e.state == Failed {
		return fmt.Errorf("reload %s: %s", name, e.lastErr)
	}
	return nil
}

// find looks a plugin up in the current snapshot; m.mu is held.
func (m *Manager) find(name string) (*registry, *entry, error) {
	reg := m.reg.Load()
	e, ok := reg.plugins[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: plugin %q", ErrNotFound, name)
	}
	return reg, e, nil
}

// Disable stops a plugin: its skills answer 409 plugin_disabled, its
// instances close once idle. The state survives restarts.
func (m *Manager) Disable(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg, old, err := m.find(name)
	if err != nil {
		return err
	}
	if err := m.d.Store.Set(ctx, disabledKey(name), []byte("1"), store.Sync); err != nil {
		return err
	}
	e := *old
	e.plugin, e.hook, e.mw, e.state = nil, nil, nil, Disabled
	if e.disabledBy == "" {
		e.disabledBy = DisabledByAPI
	}
	m.reg.Store(reg.with(&e))
	m.middlewareOff(name)
	old.close(ctx)
	m.announce(EventDisabled, &e)
	return nil
}

// Enable loads a disabled (or failed) plugin again.
func (m *Manager) Enable(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg, old, err := m.find(name)
	if err != nil {
		return err
	}
	if old.state == Active {
		return nil
	}
	if old.cfg.Off() {
		return fmt.Errorf("%w: plugin %q is disabled by the config (enabled = false in its [[plugins]] table); set enabled = true there or remove the key", ErrConflict, name)
	}
	if err := m.d.Store.Delete(ctx, disabledKey(name), store.Sync); err != nil {
		return err
	}
	e := m.admit(reg.without(name), m.build(ctx, name, old.src, old.cfg))
	m.reg.Store(reg.with(e))
	m.announce(EventEnabled, e)
	if e.state != Active {
		return fmt.Errorf("enable %s: %s", name, e.lastErr)
	}
	return nil
}

// Apply loads plugins a new config adds, closes the ones it removes and
// reloads those whose table changed; the others are untouched. Before
// LoadAll it only keeps c for it. During the start's background load it
// keeps c for the load's end and returns at once, so the config's other
// parts apply meanwhile; the last config kept wins.
func (m *Manager) Apply(ctx context.Context, c *config.Config) error {
	m.pendMu.Lock()
	if m.deferring {
		m.pending = c
		m.logLimits.Store(&c.Log)
		m.pendMu.Unlock()
		return nil
	}
	m.pendMu.Unlock()
	return m.apply(ctx, c)
}

func (m *Manager) apply(ctx context.Context, c *config.Config) error {
	m.mu.Lock()
	if !m.loaded {
		m.setConfig(c)
		m.mu.Unlock()
		return nil
	}
	oldWant := m.wanted(m.cfg)
	m.setConfig(c)
	newWant := m.wanted(c)
	m.mu.Unlock()
	for name := range oldWant {
		if _, ok := newWant[name]; !ok {
			m.remove(ctx, name)
		}
	}
	for name, w := range newWant {
		o, had := oldWant[name]
		switch {
		case !had:
			m.add(ctx, name, w.src, w.cfg)
		case !equalEntry(o.cfg, w.cfg) || o.src.desc != w.src.desc:
			m.mu.Lock()
			if e, ok := m.reg.Load().plugins[name]; ok {
				n := *e
				n.src, n.cfg = w.src, w.cfg
				m.reg.Store(m.reg.Load().with(&n))
			}
			m.mu.Unlock()
			if err := m.Reload(ctx, name); err != nil {
				m.d.Logger.Error("plugin reload after a config change failed", "plugin", name, "error", err)
			}
		}
	}
	return nil
}

func equalEntry(a, b config.PluginEntry) bool {
	return a.Name == b.Name && a.Path == b.Path && slices.Equal(a.Grants, b.Grants) && a.MinInstances == b.MinInstances &&
		slices.Equal(a.HTTPAllow, b.HTTPAllow) && a.HTTPPrivate == b.HTTPPrivate && slices.Equal(a.LLMModels, b.LLMModels) &&
		a.MaxInstances == b.MaxInstances && a.MemoryBytes == b.MemoryBytes && a.CallTimeout == b.CallTimeout && mapsEqual(a.Config, b.Config) &&
		a.Trusted == b.Trusted && a.Off() == b.Off()
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (m *Manager) add(ctx context.Context, name string, src source, pc config.PluginEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.reg.Load()
	e := m.admit(reg, m.build(ctx, name, src, pc))
	m.reg.Store(reg.with(e))
	m.announce(EventLoaded, e)
}

func (m *Manager) remove(ctx context.Context, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reg := m.reg.Load()
	if e, ok := reg.plugins[name]; ok {
		m.reg.Store(reg.without(name))
		m.middlewareOff(name)
		e.close(ctx)
	}
}

// Close closes every plugin.
func (m *Manager) Close(ctx context.Context) error {
	if cancel := m.cancelLoad.Load(); cancel != nil {
		(*cancel)() // plugins not started yet are not
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.reg.Load().plugins {
		e.close(ctx)
	}
	m.reg.Store(&registry{plugins: map[string]*entry{}, skills: map[string]*entry{}, gen: registryGen.Add(1)})
	return nil
}

// Envelope builds ABI v1's call envelope for a skill and its input.
func Envelope(skill string, input []byte) []byte {
	b := make([]byte, 0, 2+len(skill)+len(input))
	b = binary.BigEndian.AppendUint16(b, uint16(len(skill)))
	return append(append(b, skill...), input...)
}

// Invoke calls a skill with its input (JSON text) and returns its reply and
// the plugin that gave it.
//
// A failed call's error matches one Kind (KindOf).
func (m *Manager) Invoke(ctx context.Context, skill string, input []byte) ([]byte, string, error) {
	out, name, err := m.invoke(ctx, skill, input, nil)
	return out, name, withKind(err)
}

// Stream is Invoke with the reply handed to sink chunk by chunk as the
// skill writes it (sdk.Write), for callers that forward it as it comes.
func (m *Manager) Stream(ctx context.Context, skill string, input []byte, sink func(chunk []byte) error) (string, error) {
	_, plugin, err := m.invoke(ctx, skill, input, sink)
	return plugin, withKind(err)
}

func (m *Manager) invoke(ctx context.Context, skill string, input []byte, sink func([]byte) error) ([]byte, string, error) {
	env := Envelope(skill, input)
	for attempt := 0; ; attempt++ {
		e, ok := m.reg.Load().skills[skill]
		if !ok {
			return nil, "", fmt.Errorf("%w: no skill %q", ErrNotFound, skill)
		}
		if attempt == 0 {
			for i := range e.manifest.Skills {
				if s := &e.manifest.Skills[i]; s.Name == skill {
					if err := s.CheckInput(input); err != nil {
						return nil, e.name, fmt.Errorf("%w: %v", ErrInput, err)
					}
				}
			}
		}
		switch e.state {
		case Loading:
			if err := m.awaitLoad(ctx, e); err != nil {
				return nil, e.name, err
			}
			continue
		case Disabled:
			return nil, e.name, fmt.Errorf("%w: skill %q belongs to plugin %q, which is disabled; enable it with POST /api/v1/plugins/%s/enable", ErrDisabled, skill, e.name, e.name)
		case Failed:
			return nil, e.name, fmt.Errorf("%w: plugin %q: %s", ErrFailed, e.name, e.lastErr)
		}
		var out []byte
		var err error
		ctx, end := m.d.Tracer.Plugin(ctx, "skill", skill, e.name)
		if sink != nil {
			err = e.plugin.Stream(ctx, env, sink)
		} else {
			out, err = e.plugin.Call(ctx, env)
		}
		end(err)
		// A reload or disable between the lookup and the call closed the
		// version we found: look again, a few times at most.
		if errors.Is(err, hostapi.ErrClosed) && attempt < maxSwapRetries && m.reg.Load().skills[skill] != e {
			continue
		}
		return out, e.name, err
	}
}

func (m *Manager) logDropCounter(name string) *atomic.Uint64 {
	c, _ := m.logDrops.LoadOrStore(name, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// LogLinesDropped returns, per plugin, how many of its log lines were
// dropped by the log.plugin_lines_per_second limit since the start.
func (m *Manager) LogLinesDropped() map[string]uint64 {
	out := map[string]uint64{}
	m.logDrops.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// maxSwapRetries bounds how often a call follows a newer version of its
// plugin after the one it found was closed under it. Each retry needs a
// new registry snapshot, so it only counts back-to-back reloads; three
// proved too few under the race detector with reloads in a tight loop.
const maxSwapRetries = 16
