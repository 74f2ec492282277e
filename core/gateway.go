// Package core is the Portico gateway as a Go library: New builds a Gateway
// from a config, Start serves it, Shutdown drains and stops it. The binary
// cmd/portico is a thin wrapper around it; embedding teams use it directly.
package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/porticohq/portico/core/audit"
	"github.com/porticohq/portico/core/auth"
	"github.com/porticohq/portico/core/channel"
	"github.com/porticohq/portico/core/config"
	"github.com/porticohq/portico/core/events"
	"github.com/porticohq/portico/core/internal/httpapi"
	"github.com/porticohq/portico/core/llm"
	logring "github.com/porticohq/portico/core/logs"
	"github.com/porticohq/portico/core/mcp"
	"github.com/porticohq/portico/core/metrics"
	"github.com/porticohq/portico/core/pack"
	"github.com/porticohq/portico/core/plugin"
	"github.com/porticohq/portico/core/ratelimit"
	"github.com/porticohq/portico/core/session"
	"github.com/porticohq/portico/core/store"
	"github.com/porticohq/portico/core/tlscert"
	"github.com/porticohq/portico/core/tracing"
	"github.com/porticohq/portico/core/webhook"
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

// Options configure New.
type Options struct {
	// Config names the configuration layers: file, environment and flags.
	Config config.Sources
	// LogOutput receives the gateway's logs; nil means os.Stderr.
	LogOutput io.Writer
	// ConfigDebounce is how long the file watcher waits for quiet after a
	// change before reloading; zero means 100ms.
	ConfigDebounce time.Duration
	// Embedding: see embed.go.
	Embed
}

// Gateway is one running Portico.
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

	debounce time.Duration
	started  time.Time
	dataDir  string // as at start: data_dir changes need a restart

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	serveErr chan error
	stopped  bool
}

// New loads and validates the configuration and opens the store. It fails
// fast, with a message that names the problem, on an invalid config or a
// data dir that is locked or unwritable; nothing is left running on failure.
func New(opts Options) (*Gateway, error) {
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	if err := opts.Embed.check(); err != nil {
		return nil, err
	}
	cfg, err := config.NewManager(opts.Config, nil)
	if err != nil {
		return nil, err
	}
	c := cfg.Config()
	var logs *logWriter
	if d := c.Log.FlushInterval.D(); d > 0 {
		logs = newLogWriter(out, d)
		out = logs
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(c.Log.Level))
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(out, hopts)
	if c.Log.Format == "json" {
		h = slog.NewJSONHandler(out, hopts)
	}
	if opts.Logger != nil {
		h = leveled{opts.Logger.Handler(), level}
	}
	ring := logring.NewRing(int(c.Log.RingSize))
	log := slog.New(logring.NewHandler(h, ring))
	cfg.SetLogger(log.With(logring.KeyModule, "config"))
	logFor := func(module string) *slog.Logger { return log.With(logring.KeyModule, module) }

	st, err := opts.openStore(c, logFor("store"))
	if err != nil {
		logs.Close()
		return nil, err
	}
	g := &Gateway{
		cfg: cfg, log: log, level: level, store: st,
		bus: events.New(), audit: audit.New(st),
		debounce: opts.ConfigDebounce, started: time.Now(), dataDir: c.DataDir, logs: logs, ring: ring,
		packs: opts.Packs,
	}
	if g.debounce <= 0 {
		g.debounce = 100 * time.Millisecond
	}
	if g.tracer, err = tracing.New(c.Tracing, VersionString()); err != nil {
		st.Close()
		logs.Close()
		return nil, err
	}
	if c.TLS.Enabled {
		g.tls, err = tlscert.Open(tlscert.Options{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, DataDir: c.DataDir,
			Hosts: c.TLS.Hosts, CheckInterval: c.TLS.CheckInterval.D(), Logger: logFor("gateway")})
		if err != nil {
			st.Close()
			logs.Close()
			return nil, err
		}
	}
	if err := g.openAuth(context.Background(), c, envValue(opts.Config.Env, "PORTICO_ADMIN_KEY")); err != nil {
		st.Close()
		logs.Close()
		return nil, err
	}
	cacheDir := c.Plugin.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(c.DataDir, "wasm-cache")
	}
	if n, err := hostapi.PruneCache(cacheDir, c.Plugin.CacheMaxBytes); err != nil {
		log.Warn("compilation cache not pruned", "dir", cacheDir, "error", err)
	} else if n > 0 {
		log.Info("compilation cache pruned to its bound", "dir", cacheDir, "files_removed", n, "bound", c.Plugin.CacheMaxBytes)
	}
	if g.runtime, err = hostapi.NewRuntime(cacheDir); err != nil {
		st.Close()
		logs.Close()
		return nil, err
	}
	if err := g.runtime.AddHostFuncs(opts.HostFuncs...); err != nil {
		g.runtime.Close(context.Background())
		st.Close()
		logs.Close()
		return nil, err
	}
	g.llm = llm.New(st, c.LLM, llm.Options{Logger: logFor("llm"), Getenv: func(name string) string { return envValue(opts.Config.Env, name) }})
	g.plugins = plugin.NewManager(plugin.Deps{
		Runtime: g.runtime, Store: st, Bus: g.bus, Audit: g.audit, Logger: logFor("plugin"), LLM: g.llm.PluginComplete, Tracer: g.tracer,
		MCP: func(ctx context.Context, name string, req []byte) ([]byte, error) {
			return g.mcp.PluginCall(ctx, name, req)
		},
		Embedded: plugins.FS, Names: plugins.Names, InstallDir: filepath.Join(c.DataDir, "plugins"), Bundled: opts.Plugins,
	})
	if g.sessions, err = session.Open(context.Background(), session.Deps{Store: st, Bus: g.bus, Logger: logFor("session"), Config: cfg.Config}); err != nil {
		g.runtime.Close(context.Background())
		st.Close()
		logs.Close()
		return nil, err
	}
	g.channels = channel.New(g.plugins, g.sessions, logFor("channel"))
	g.sessions.SetDeps(g.plugins, session.Hooks{Observe: observeLLM, Outbound: g.channels.Send})
	g.hooks = webhook.New(webhook.Deps{Store: st, Bus: g.bus, Logger: logFor("webhook")}, c)
	g.mcp = mcp.New(mcp.Deps{Plugins: g.plugins, Bus: g.bus, Audit: g.audit, Logger: logFor("mcp"), Config: cfg.Config, Version: VersionString(),
		Getenv: func(name string) string { return envValue(opts.Config.Env, name) }})
	g.metrics = metrics.New()
	g.metrics.Register(metrics.NewPluginCollector(g.plugins), metrics.NewWebhookCollector(g.hooks))
	g.api = httpapi.New(httpapi.Deps{
		Config: cfg, Auth: g.auth, Limits: g.limits, Failures: g.failures, Plugins: g.plugins, LLM: g.llm,
		Store: st, Bus: g.bus, Audit: g.audit, Sessions: g.sessions, Channels: g.channels, Logger: logFor("http"),
		Hooks: g.hooks, MCP: g.mcp, Version: VersionString(), Started: g.started, Logs: ring, Metrics: g.metrics, TLS: g.tls, Tracer: g.tracer,
		Mounts: opts.Routes,
	})
	cfg.Subscribe(g.onConfig)
	return g, nil
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
	g.failures, err = ratelimit.New(opts)
	return err // the API applies the full rates from the config
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

// onConfig applies a new snapshot's live keys and announces the change.
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
	g.api.ApplyConfig(c)
	g.hooks.ApplyConfig(c)
	g.llm.ApplyConfig(c.LLM)
	g.mcp.ApplyConfig(c)
	if err := g.auth.SetJWT(c.Auth.JWT); err != nil {
		g.log.Error("JWT settings not applied; the previous ones stay in force", "error", err)
	}
	g.mu.Lock()
	serving := g.srv != nil && !g.stopped
	g.mu.Unlock()
	if serving {
		g.plugins.ApplyConfig(ctx, c)
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

// Config returns the configuration manager.
func (g *Gateway) Config() *config.Manager { return g.cfg }

// Bus returns the event bus.
func (g *Gateway) Bus() *events.Bus { return g.bus }

// Store returns the store.
func (g *Gateway) Store() store.Store { return g.store }

// Audit returns the audit trail.
func (g *Gateway) Audit() *audit.Trail { return g.audit }

// Plugins returns the plugin manager.
func (g *Gateway) Plugins() *plugin.Manager { return g.plugins }

// Hooks returns the outbound webhook service.
func (g *Gateway) Hooks() *webhook.Service { return g.hooks }

// Auth returns the users and keys service.
func (g *Gateway) Auth() *auth.Service { return g.auth }

// Logs returns the ring of recent log lines.
func (g *Gateway) Logs() *logring.Ring { return g.ring }

// Handler returns the gateway's HTTP handler, for tests and embedding.
func (g *Gateway) Handler() http.Handler { return g.api }

// Start listens on the configured address, starts the config watcher and
// the background jobs, and marks the gateway ready. It returns once the
// gateway is serving.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil || g.stopped {
		return errors.New("gateway: Start called twice")
	}
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
	g.every(bg, func(*config.Config) time.Duration { return time.Hour }, g.sweepSessions)
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
	// Readiness stays 503 until the plugins are loaded.
	start := time.Now()
	g.plugins.LoadAll(ctx, c)
	if err := g.installPacks(ctx); err != nil {
		return err
	}
	g.log.Info("plugins loaded", "count", len(g.plugins.List()), "took", time.Since(start).Round(time.Millisecond))
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

// Shutdown stops taking new work: readiness turns false, the server stops
// accepting connections and waits for in-flight requests up to
// http.shutdown_timeout (or ctx's deadline, whichever comes first), then the
// background jobs stop and the store is closed. It is safe to call on a
// gateway that never started, and more than once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil
	}
	g.stopped = true
	g.api.SetReady(false)
	g.api.CloseStreams()
	var errs []error
	if g.srv != nil {
		timeout := g.cfg.Config().HTTP.ShutdownTimeout.D()
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
		g.cancel()
		g.bg.Wait()
		os.Remove(filepath.Join(g.dataDir, AddrFile))
	}
	g.mcp.Close()
	g.plugins.Close(ctx)
	g.runtime.Close(ctx)
	hctx, hcancel := context.WithTimeout(ctx, g.cfg.Config().HTTP.ShutdownTimeout.D())
	if err := g.hooks.Close(hctx); err != nil {
		g.log.Warn("webhook attempts cut off by the shutdown; their deliveries stay queued for the next start", "error", err)
	}
	hcancel()
	g.flushKeyUse(ctx)
	tctx, tcancel := context.WithTimeout(ctx, g.cfg.Config().HTTP.ShutdownTimeout.D())
	if err := g.tracer.Shutdown(tctx); err != nil {
		g.log.Warn("spans not all exported at shutdown", "error", err)
	}
	tcancel()
	if err := g.store.Close(); err != nil {
		errs = append(errs, err)
	}
	g.log.Info("portico stopped")
	g.logs.Close()
	return errors.Join(errs...)
}

// Run starts the gateway and serves until ctx ends (for the binary, on
// SIGINT or SIGTERM), then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Start(ctx); err != nil {
		g.Shutdown(context.Background())
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-g.serveErr:
		g.serveErr <- err // let Shutdown see it
	}
	return g.Shutdown(context.Background())
}
