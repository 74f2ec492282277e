package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/channel"
	"github.com/porticohq/portico/core/internal/cluster"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/httpapi"
	"github.com/porticohq/portico/core/internal/llm"
	logring "github.com/porticohq/portico/core/internal/logs"
	"github.com/porticohq/portico/core/internal/mcp"
	"github.com/porticohq/portico/core/internal/metrics"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/ratelimit"
	"github.com/porticohq/portico/core/internal/session"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/tlscert"
	"github.com/porticohq/portico/core/internal/tracing"
	"github.com/porticohq/portico/core/internal/webhook"
	"github.com/porticohq/portico/core/pack"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/plugins"
)

// Version is the gateway's version, set at build time with
// -ldflags "-X github.com/porticohq/portico/core.Version=v1.2.3"; without it
// the module version from the build info is used, or "dev".
var Version = ""

// VersionString returns Version or the best version the build info knows.
func VersionString() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// AddrFile is the file in the data dir where a serving gateway records the
// address it listens on, so local tools (portico backup) can find it.
const AddrFile = "portico.addr"

// LocalURL returns the URL of the gateway serving dataDir, from its AddrFile,
// or "" when none is recorded.
func LocalURL(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, AddrFile))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if hostPort, ok := strings.CutPrefix(s, "https://"); ok { // TLS on
		return "https" + strings.TrimPrefix(ClientURL(hostPort), "http")
	}
	return ClientURL(s)
}

// Gateway is one Portico. Build it with New; it serves from Start to
// Shutdown. Its methods are safe for concurrent use.
type Gateway struct {
	cfg   *config.Manager
	log   *slog.Logger
	level *slog.LevelVar
	store store.Store
	bus   *events.Bus
	audit *audit.Trail
	api   *httpapi.API

	auth     *auth.Service
	limits   *ratelimit.Limiter
	failures *ratelimit.Limiter
	shared   *ratelimit.Shared // cluster.redis_url: buckets shared in Redis
	nodes    *cluster.Registry // this node's heartbeat, every node's list
	runtime  *hostapi.Runtime
	llm      *llm.Service
	plugins  *plugin.Manager
	hooks    *webhook.Service
	sessions *session.Service
	channels *channel.Service
	mcp      *mcp.Service
	logs     *logWriter    // nil when log.flush_interval is 0
	ring     *logring.Ring // recent log lines, for the API
	metrics  *metrics.Metrics
	packs    []*pack.Pack    // the embedder's, installed by Start
	tls      *tlscert.Source // nil: TLS off
	tracer   *tracing.Tracer // nil: tracing off

	// parts are the services in the order New built them: each applied
	// configuration goes to them in that order, and they close in reverse.
	parts parts

	debounce time.Duration
	started  time.Time
	dataDir  string // as at start: data_dir changes need a restart

	mu       sync.Mutex
	state    int // stateNew, stateStarted, stateStopped
	srv      *http.Server
	ln       net.Listener
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	serveErr chan error

	subMu sync.Mutex
	subs  map[*Subscription]struct{}
}

const (
	stateNew = iota
	stateStarted
	stateStopped
)

// testFailAt, when set by a test, makes New fail right after building the
// part of that name, as if building it had failed.
var testFailAt string

// New checks opts, builds the configuration, opens the store and builds
// every service, in dependency order. It returns every problem with the
// options at once (each matching ErrInvalidOption), an error matching
// ErrInvalidConfig that names each bad key, or the reason the data dir
// cannot be used. Nothing is left running on error: what was built is
// closed in reverse order.
func New(opts Options) (*Gateway, error) {
	e, err := opts.check()
	if err != nil {
		if opts.Store != nil {
			opts.Store.Close()
		}
		return nil, err
	}
	g := &Gateway{packs: e.packs, debounce: opts.ConfigDebounce, started: time.Now(), subs: map[*Subscription]struct{}{}}
	g.parts.failAt = testFailAt
	if err := g.build(opts, e); err != nil {
		if cerr := g.parts.close(context.Background()); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if e.store != nil && !slices.Contains(g.parts.names(), "store") {
			e.store.Close() // given by the program, not pushed yet
		}
		return nil, err
	}
	return g, nil
}

// build makes every part of g; each one opened is pushed on g.parts
// before the next is built, so a failure closes exactly what exists.
func (g *Gateway) build(opts Options, e checked) error {
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	env := append([]string{}, opts.Environ...)
	adminKey := opts.AdminKey
	if adminKey == "" {
		adminKey = envValue(env, "PORTICO_ADMIN_KEY") // the binary's way
	}
	getenv := func(name string) string { return envValue(env, name) }
	cfg, err := config.NewManager(opts.sources(), nil)
	if err != nil {
		return err
	}
	c := cfg.Config()
	g.cfg, g.dataDir = cfg, c.DataDir
	if g.debounce <= 0 {
		g.debounce = 100 * time.Millisecond
	}
	if d := c.Log.FlushInterval.D(); d > 0 {
		g.logs = newLogWriter(out, d)
		out = g.logs
		if err := g.parts.add("log writer", closeFunc(func(context.Context) error { g.logs.Close(); return nil })); err != nil {
			return err
		}
	}
	g.level = new(slog.LevelVar)
	g.level.Set(parseLevel(c.Log.Level))
	hopts := &slog.HandlerOptions{Level: g.level}
	var h slog.Handler = slog.NewTextHandler(out, hopts)
	if c.Log.Format == "json" {
		h = slog.NewJSONHandler(out, hopts)
	}
	if opts.Logger != nil {
		h = leveled{opts.Logger.Handler(), g.level}
	}
	g.ring = logring.NewRing(int(c.Log.RingSize))
	g.log = slog.New(logring.NewHandler(h, g.ring))
	cfg.SetLogger(g.log.With(logring.KeyModule, "config"))
	logFor := func(module string) *slog.Logger { return g.log.With(logring.KeyModule, module) }
	add := g.parts.add

	if g.store, err = openStore(context.Background(), e.store, c, logFor("store")); err != nil {
		return err
	}
	if err := add("store", closeFunc(func(context.Context) error { return g.store.Close() })); err != nil {
		return err
	}
	g.bus, g.audit = events.New(), audit.New(g.store)
	if g.tracer, err = tracing.New(c.Tracing, VersionString()); err != nil {
		return err
	}
	if err := add("tracer", closeFunc(g.tracer.Shutdown)); err != nil {
		return err
	}
	if c.TLS.Enabled {
		g.tls, err = tlscert.Open(tlscert.Options{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, DataDir: c.DataDir,
			Hosts: c.TLS.Hosts, CheckInterval: c.TLS.CheckInterval.D(), Logger: logFor("gateway")})
		if err != nil {
			return err
		}
	}
	if err := g.openAuth(context.Background(), c, adminKey); err != nil {
		return err
	}
	if err := add("auth", g.auth); err != nil {
		return err
	}
	if g.shared != nil {
		if err := add("redis", closeFunc(func(context.Context) error { return g.shared.Close() })); err != nil {
			return err
		}
	}
	cacheDir := c.Plugin.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(c.DataDir, "wasm-cache")
	}
	if n, err := hostapi.PruneCache(cacheDir, c.Plugin.CacheMaxBytes); err != nil {
		g.log.Warn("compilation cache not pruned", "dir", cacheDir, "error", err)
	} else if n > 0 {
		g.log.Info("compilation cache pruned to its bound", "dir", cacheDir, "files_removed", n, "bound", c.Plugin.CacheMaxBytes)
	}
	if g.runtime, err = hostapi.NewRuntime(cacheDir); err != nil {
		return err
	}
	if err := add("plugin runtime", g.runtime); err != nil {
		return err
	}
	if err := g.runtime.AddHostFuncs(e.hostFuncs...); err != nil {
		return err
	}
	lopts := llm.Options{Logger: logFor("llm"), Getenv: getenv}
	if g.shared != nil {
		lopts.Counters = g.shared // every node checks one quota window
	}
	g.llm = llm.New(g.store, c.LLM, lopts)
	if err := add("llm", g.llm); err != nil {
		return err
	}
	mcpDeps := mcp.Deps{Bus: g.bus, Audit: g.audit, Logger: logFor("mcp"), Config: cfg.Config, Version: VersionString(), Getenv: getenv}
	upstream := mcp.NewRegistry(mcpDeps)
	if err := add("mcp upstream", upstream); err != nil {
		return err
	}
	g.plugins = plugin.NewManager(plugin.Deps{
		Runtime: g.runtime, Store: g.store, Bus: g.bus, Audit: g.audit, Logger: logFor("plugin"), LLM: g.llm.PluginComplete, Tracer: g.tracer,
		MCP: upstream.PluginCall, Embedded: plugins.FS, Names: plugins.Names, InstallDir: filepath.Join(c.DataDir, "plugins"), Bundled: e.plugins,
	})
	if err := add("plugins", g.plugins); err != nil {
		return err
	}
	outbox := channel.NewOutbox(g.plugins, logFor("channel"))
	pg, _ := g.store.(*store.Postgres) // on PostgreSQL, sessions have their own tables
	g.sessions, err = session.Open(context.Background(), session.Deps{Store: g.store, Postgres: pg, Bus: g.bus, Logger: logFor("session"), Config: cfg.Config,
		Skills: g.plugins, Hooks: session.Hooks{Observe: observeLLM, Outbound: outbox.Send}})
	if err != nil {
		return err
	}
	g.channels = channel.New(g.plugins, outbox, g.sessions, logFor("channel"))
	g.hooks = webhook.New(webhook.Deps{Store: g.store, Bus: g.bus, Logger: logFor("webhook")}, c)
	if err := add("webhooks", g.hooks); err != nil {
		return err
	}
	g.nodes = cluster.New(g.store, cluster.Options{Version: VersionString(), Plugins: g.pluginsDigest,
		Every: func() time.Duration { return g.cfg.Config().Cluster.HeartbeatInterval.D() }, Logger: logFor("cluster")})
	mcpDeps.Plugins, mcpDeps.Upstream = g.plugins, upstream
	g.mcp = mcp.New(mcpDeps)
	g.metrics = metrics.New()
	g.metrics.Register(metrics.NewPluginCollector(g.plugins), metrics.NewWebhookCollector(g.hooks), metrics.NewStorageCollector(g.store))
	g.api = httpapi.New(httpapi.Deps{
		Config: cfg, Auth: g.auth, Limits: g.limits, Failures: g.failures, Plugins: g.plugins, LLM: g.llm, Nodes: g.nodes,
		Store: g.store, Bus: g.bus, Audit: g.audit, Sessions: g.sessions, Channels: g.channels, Logger: logFor("http"),
		Hooks: g.hooks, MCP: g.mcp, Version: VersionString(), Started: g.started, Logs: g.ring, Metrics: g.metrics, TLS: g.tls, Tracer: g.tracer,
		Mounts: e.routes,
	})
	if err := add("http api", g.api); err != nil {
		return err
	}
	cfg.Subscribe(g.onConfig)
	return nil
}

// openAuth loads users and keys, makes sure an admin key exists, applies
// the JWT settings and builds the rate limiters.
func (g *Gateway) openAuth(ctx context.Context, c *config.Config, adminKey string) error {
	svc, err := auth.Open(ctx, g.store)
	if err != nil {
		return err
	}
	path, err := auth.Bootstrap(ctx, svc, c.DataDir, adminKey)
	if err != nil {
		return err
	}
	switch {
	case path != "":
		g.log.Warn("created the first admin key; read it from the file and keep it safe", "file", path)
		g.record(ctx, audit.Entry{Actor: "system", Action: "key.bootstrap", Target: path, Outcome: audit.Success})
	case adminKey != "" && svc.HasKeys():
		g.log.Info("PORTICO_ADMIN_KEY is set; it is imported only on first start, when no key exists")
	}
	if err := svc.SetJWT(c.Auth.JWT); err != nil {
		return err
	}
	g.auth = svc
	opts := ratelimit.Options{IdleTTL: c.RateLimit.IdleTTL.D(), MaxEntries: int(c.RateLimit.MaxEntries)}
	opts.Rates = map[string]ratelimit.Rate{"default": {PerSecond: c.RateLimit.Default.Rate, Burst: int(c.RateLimit.Default.Burst)}}
	if g.limits, err = ratelimit.New(opts); err != nil {
		return err
	}
	opts.Rates = map[string]ratelimit.Rate{"default": {PerSecond: float64(c.Auth.FailuresPerMinute) / 60, Burst: int(c.Auth.FailuresPerMinute)}}
	if g.failures, err = ratelimit.New(opts); err != nil {
		return err // the API applies the full rates from the config
	}
	if cl := c.Cluster; cl.RedisURL != "" {
		// The nodes sharing this Redis share every bucket and lockout.
		g.shared, err = ratelimit.NewShared(ctx, ratelimit.SharedOptions{URL: cl.RedisURL, PoolSize: int(cl.RedisPoolSize),
			Timeout: cl.RedisTimeout.D(), RetryInterval: cl.RedisRetryInterval.D(), Prefix: cl.RedisKeyPrefix, Logger: g.log.With(logring.KeyModule, "ratelimit")})
		if err != nil {
			return err
		}
		g.limits.Share(g.shared, "api")
		g.failures.Share(g.shared, "auth_failures")
	}
	return nil
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s)) // validated by config
	return l
}

// onConfig applies a new snapshot's live keys to every part, in the order
// they were built, and announces the change.
func (g *Gateway) onConfig(ch config.Change) {
	ctx := context.Background()
	g.metrics.ConfigReload(ch.Source, ch.Err == nil)
	if ch.Err != nil {
		g.bus.Publish(events.Event{Type: events.ConfigRejected, Data: map[string]any{"source": ch.Source, "error": config.Message(ch.Err)}})
		if ch.Source == config.FromFile {
			g.record(ctx, audit.Entry{Actor: "file", Action: "config.reload", Target: g.cfg.File(), Outcome: audit.Failure, Details: map[string]any{"error": config.Message(ch.Err)}})
		}
		return
	}
	c := ch.New.Config
	g.level.Set(parseLevel(c.Log.Level))
	if err := g.parts.apply(ctx, c); err != nil {
		g.log.Error("part of a new configuration was not applied; the previous settings of those parts stay in force", "error", err)
	}
	g.bus.Publish(events.Event{Type: events.ConfigReloaded, Data: map[string]any{
		"source": ch.Source, "generation": ch.New.Generation, "changed": ch.Changed, "restart_required": ch.Restart,
	}})
	if ch.Source == config.FromFile {
		g.record(ctx, audit.Entry{Actor: "file", Action: "config.reload", Target: g.cfg.File(), Outcome: audit.Success, Details: map[string]any{"changed": ch.Changed}})
	}
}

func (g *Gateway) record(ctx context.Context, e audit.Entry) {
	if err := g.audit.Record(ctx, e); err != nil {
		g.log.Error("audit record failed", "action", e.Action, "error", err)
	}
}

// Handler returns the gateway's HTTP handler: Portico's API and the
// program's Routes. It answers 503 not_ready until Start has loaded the
// plugins. Use it to serve the gateway from the program's own server or
// httptest; Start still has to run (it also listens on the configured
// address, which may be "127.0.0.1:0").
func (g *Gateway) Handler() http.Handler { return g.api }

// Start listens on the configured address (listen), starts the
// configuration watcher and background jobs, loads the plugins, installs
// the program's packs and turns ready. It returns once the gateway serves.
// If it fails, the gateway is shut down. It may be called once.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	switch g.state {
	case stateStarted:
		g.mu.Unlock()
		return fmt.Errorf("%w: Start called twice", ErrInvalidOption)
	case stateStopped:
		g.mu.Unlock()
		return ErrStopped
	}
	g.state = stateStarted
	err := g.start(ctx)
	g.mu.Unlock()
	if err != nil {
		return errors.Join(err, g.Shutdown(context.WithoutCancel(ctx)))
	}
	return nil
}

// start is Start with g.mu held.
func (g *Gateway) start(ctx context.Context) error {
	c := g.cfg.Config()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; pick another address with --listen or PORTICO_LISTEN", c.Listen, err)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := g.cfg.Watch(bg, g.debounce); err != nil {
		cancel()
		ln.Close()
		return err
	}
	// Webhooks subscribe before the plugins load, so plugin.loaded events
	// reach them too; pending deliveries of the last run resume here.
	if err := g.hooks.Start(bg); err != nil {
		cancel()
		ln.Close()
		return err
	}
	g.ln, g.cancel = ln, cancel
	g.srv = &http.Server{
		Handler:           g.api,
		ReadHeaderTimeout: c.HTTP.ReadHeaderTimeout.D(),
		ReadTimeout:       c.HTTP.ReadTimeout.D(),
		WriteTimeout:      c.HTTP.WriteTimeout.D(),
		IdleTimeout:       c.HTTP.IdleTimeout.D(),
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	g.serveErr = make(chan error, 1)
	addr := ln.Addr().String()
	if g.tls != nil {
		g.srv.TLSConfig = g.tls.Config()
		info := g.tls.Info()
		g.log.Info("serving HTTPS; clients can pin the certificate's fingerprint (also at GET /cert)", "sha256", info.SHA256,
			"self_signed", info.SelfSigned, "not_after", info.NotAfter)
		addr = "https://" + addr
		go func() { g.serveErr <- g.srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { g.serveErr <- g.srv.Serve(ln) }()
	}
	g.every(bg, func(c *config.Config) time.Duration { return c.Storage.GCInterval.D() }, g.collectGarbage)
	g.every(bg, func(c *config.Config) time.Duration { return c.Audit.SweepInterval.D() }, g.pruneAudit)
	g.every(bg, func(*config.Config) time.Duration { return time.Minute }, g.flushKeyUse)
	if _, shared := g.store.(*store.Postgres); shared {
		// Other nodes change users, keys and webhooks in the shared store.
		g.auth.SetMissRefresh(g.cfg.Config().Storage.Postgres.RefreshInterval.D())
		g.every(bg, func(c *config.Config) time.Duration { return c.Storage.Postgres.RefreshInterval.D() }, g.refreshShared)
	}
	g.every(bg, func(*config.Config) time.Duration { return time.Hour }, g.sweepSessions)
	g.every(bg, trimInterval, func(context.Context) { g.plugins.Trim(time.Now()) })
	if g.shared != nil {
		g.bg.Add(1)
		go func() { defer g.bg.Done(); g.shared.Run(bg) }()
	}
	// The first heartbeat is written before Start returns: a node that
	// serves is listed.
	g.nodes.SetAddress(g.ln.Addr().String())
	if err := g.nodes.Beat(bg); err != nil {
		g.log.Warn("heartbeat not written", "error", err)
	}
	g.bg.Add(1)
	go func() { defer g.bg.Done(); g.nodes.Run(bg) }()
	for _, l := range []*ratelimit.Limiter{g.limits, g.failures} {
		g.bg.Add(1)
		go func() { defer g.bg.Done(); l.Run(bg, time.Minute) }()
	}
	// The MCP tools follow the plugins from their first load on.
	if sub, err := g.mcp.Subscribe(); err != nil {
		g.log.Error("MCP tools will not follow plugin changes", "error", err)
	} else {
		g.bg.Add(1)
		go func() { defer g.bg.Done(); g.mcp.Run(bg, sub) }()
	}
	// Readiness stays 503 until every plugin is registered from its
	// manifest; their modules compile in the background, and a call to
	// one still loading waits for it (plugin.ready_after_load waits for
	// all of them here instead).
	g.plugins.StartLoading(ctx, c)
	if c.Plugin.ReadyAfterLoad {
		g.plugins.WaitLoaded(ctx)
	}
	if err := g.installPacks(ctx); err != nil {
		return err
	}
	g.mcp.Sync("") // the tools are there when the gateway turns ready, not soon after
	// Compiling guests leaves hundreds of MB of garbage behind (a cold
	// start peaked at ~800 MB resident for the embedded plugins); once a
	// second passes without a compile (the start's, or a dormant plugin
	// woken), what they left is given back to the OS rather than when the
	// scavenger gets to it.
	quiet := compilesQuiet{}
	g.every(bg, func(*config.Config) time.Duration { return time.Second }, func(context.Context) {
		if quiet.tick(g.runtime.Compiles(), g.runtime.Compiling()) {
			debug.FreeOSMemory()
		}
	})
	if err := os.WriteFile(filepath.Join(g.dataDir, AddrFile), []byte(addr+"\n"), 0o600); err != nil {
		g.log.Warn("cannot record the listen address in the data dir", "error", err)
	}
	g.api.SetReady(true)
	g.log.Info("portico serving", "addr", ln.Addr().String(), "version", VersionString(), "data_dir", c.DataDir, "config_file", g.cfg.File())
	return nil
}

// every runs job after each interval (read from the live config, so a change
// applies from the next round) until ctx ends.
func (g *Gateway) every(ctx context.Context, interval func(*config.Config) time.Duration, job func(context.Context)) {
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		for {
			t := time.NewTimer(interval(g.cfg.Config()))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				job(ctx)
			}
		}
	}()
}

// pluginsDigest is a SHA-256 over the node's plugins (name, version,
// module digest; not their status, which moves while they load), sorted, and their number: nodes running the
// same plugins show the same digest in GET /api/v1/cluster.
func (g *Gateway) pluginsDigest() (string, int) {
	list := g.plugins.List()
	lines := make([]string, 0, len(list))
	for _, p := range list {
		lines = append(lines, p.Name+" "+p.Version+" "+p.ModuleSHA256)
	}
	slices.Sort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:]), len(list)
}

// refreshShared reads again what other nodes sharing the store change
// and this node keeps in memory: users and keys, webhooks.
func (g *Gateway) refreshShared(ctx context.Context) {
	g.auth.SetMissRefresh(g.cfg.Config().Storage.Postgres.RefreshInterval.D()) // live on reload
	if err := g.auth.Refresh(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("users and keys not refreshed from the store", "error", err)
	}
	if err := g.hooks.Refresh(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("webhooks not refreshed from the store", "error", err)
	}
}

// compilesQuiet tells when to give the garbage of plugin compiles back
// to the OS: on the first tick that sees no new compile after some and
// none in progress (a cold compile takes longer than a tick). A burst of
// first calls, or the start's load, then costs one forced collection,
// steady load none.
type compilesQuiet struct{ seen, released uint64 }

// tick takes the runtime's compile count now, and whether one is in
// progress, and says whether to release.
func (q *compilesQuiet) tick(n uint64, compiling bool) bool {
	release := !compiling && n == q.seen && n != q.released
	if release {
		q.released = n
	}
	q.seen = n
	return release
}

// trimInterval is how often idle plugin instances are looked at: a
// quarter of plugin.idle_release_after, between 1s and 1m (a plugin's own
// shorter idle_release_after is then honoured to within a minute).
func trimInterval(c *config.Config) time.Duration {
	d := c.Plugin.IdleReleaseAfter.D() / 4
	if d <= 0 {
		d = time.Minute
	}
	return min(max(d, time.Second), time.Minute)
}

// sweepSessions forgets expired Idempotency-Keys.
func (g *Gateway) sweepSessions(ctx context.Context) {
	if _, err := g.sessions.Sweep(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("idempotency key sweep failed", "error", err)
	}
}

// observeLLM reports a skill call's LLM usage and streamed text to the
// session turn that made it.
func observeLLM(ctx context.Context, onUsage func(session.Usage), onDelta func(string)) context.Context {
	return llm.WithObserver(ctx, llm.Observer{OnDelta: onDelta, OnUsage: func(u llm.Usage) {
		onUsage(session.Usage{Input: u.InputTokens, Output: u.OutputTokens})
	}})
}

func (g *Gateway) collectGarbage(context.Context) {
	n, err := g.store.CollectGarbage(g.cfg.Config().Storage.GCDiscardRatio)
	if err != nil {
		g.log.Warn("value log garbage collection failed", "error", err)
		return
	}
	g.log.Debug("value log garbage collected", "files_rewritten", n)
}

func (g *Gateway) flushKeyUse(ctx context.Context) {
	if err := g.auth.FlushLastUsed(ctx); err != nil {
		g.log.Warn("recording key use failed", "error", err)
	}
}

func (g *Gateway) pruneAudit(ctx context.Context) {
	keep := g.cfg.Config().Audit.Retention.D()
	if keep == 0 {
		return
	}
	n, err := g.audit.Prune(ctx, time.Now().Add(-keep))
	if err != nil {
		g.log.Warn("audit prune failed", "error", err)
		return
	}
	if n > 0 {
		g.log.Info("audit entries pruned", "count", n, "retention", keep)
	}
}

// Addr returns the address the gateway listens on, once started.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Shutdown stops the gateway gracefully: readiness turns false, streams
// end, new connections are refused, requests in flight get up to
// http.shutdown_timeout (or until ctx ends) to finish; then the background
// jobs stop, every Subscription ends and the parts close in reverse order
// of their building (plugins, webhooks whose attempts get the same
// timeout, the store last). It is safe to call more than once and on a
// gateway that never started.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateStopped && g.parts.list == nil {
		return nil
	}
	g.state = stateStopped
	g.subMu.Lock()
	subs := g.subs
	g.subs = map[*Subscription]struct{}{}
	g.subMu.Unlock()
	for s := range subs {
		s.close()
	}
	g.api.SetReady(false)
	g.api.CloseStreams()
	var errs []error
	timeout := g.cfg.Config().HTTP.ShutdownTimeout.D()
	if g.srv != nil {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		g.log.Info("draining in-flight requests", "timeout", timeout)
		if err := g.srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w (in-flight requests were cut off)", err))
			g.srv.Close()
		}
		cancel()
		if err := <-g.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		os.Remove(filepath.Join(g.dataDir, AddrFile))
	}
	if g.cancel != nil {
		g.cancel()
		g.bg.Wait()
	}
	// Webhook attempts in flight and the tracer's export get the shutdown
	// timeout; a delivery cut off stays queued for the next start.
	pctx, pcancel := context.WithTimeout(ctx, timeout)
	g.log.Info("portico stopped")
	if err := g.parts.close(pctx); err != nil {
		errs = append(errs, err)
	}
	pcancel()
	return errors.Join(errs...)
}

// Run starts the gateway and serves until ctx ends (for the binary, on
// SIGINT or SIGTERM) or the server fails, then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-g.serveErr:
		g.serveErr <- err // let Shutdown see it
	}
	return g.Shutdown(context.WithoutCancel(ctx))
}
