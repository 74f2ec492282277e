// Package httpapi is Portico's HTTP API: the chi router, the core middleware
// chain and the handlers, with one route table that gives every route its
// role and rate-limit group, and one place that writes the error envelope.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/channel"
	"github.com/porticohq/portico/core/internal/cluster"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/logs"
	"github.com/porticohq/portico/core/internal/mcp"
	"github.com/porticohq/portico/core/internal/metrics"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/ratelimit"
	"github.com/porticohq/portico/core/internal/session"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/tlscert"
	"github.com/porticohq/portico/core/internal/tracing"
	"github.com/porticohq/portico/core/internal/webhook"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// Route roles, from the auth package: public < user < operator < admin.
const (
	RolePublic   = auth.RolePublic
	RoleUser     = auth.RoleUser
	RoleOperator = auth.RoleOperator
	RoleAdmin    = auth.RoleAdmin
)

// BackupStatusTrailer is the HTTP trailer a backup response ends with: "ok",
// or "error: ..." when the stream broke off, so a client never keeps a
// truncated backup.
const BackupStatusTrailer = "X-Portico-Backup-Status"

// Deps are the core services the API serves.
type Deps struct {
	Config   *config.Manager
	Auth     *auth.Service
	Nodes    *cluster.Registry  // the nodes sharing the store
	Limits   *ratelimit.Limiter // per principal and route group
	Failures *ratelimit.Limiter // failed authentications per client IP
	Plugins  *plugin.Manager
	Store    store.Store
	Bus      *events.Bus
	Audit    *audit.Trail
	Sessions *session.Service
	Channels *channel.Service
	LLM      *llm.Service // nil: no LLM accounting (tests)
	Hooks    *webhook.Service
	MCP      *mcp.Service     // the MCP server and the upstream MCP registry
	Logs     *logs.Ring       // recent log lines; nil: a ring of log.ring_size fed by nothing (tests)
	Metrics  *metrics.Metrics // nil: metrics of the API alone (tests)
	TLS      *tlscert.Source  // the certificate served; nil: TLS off
	Tracer   *tracing.Tracer  // request and middleware spans; nil: off
	Logger   *slog.Logger
	Version  string
	Started  time.Time
	// Mounts are an embedding program's routes (mount.go), checked with
	// CheckMounts before New.
	Mounts []Mount
}

// API is the gateway's HTTP handler.
type API struct {
	d       Deps
	ready   atomic.Bool
	cors    corsHandler
	lim     limits
	proxies proxies
	handler http.Handler
	extra   []route // added by tests
	// streamed matches the routes marked streamed, for the middleware
	// chains, which run before the router.
	streamed *chi.Mux
	mwOpts   nethttp.Options

	// streams is canceled by CloseStreams: WebSocket and SSE streams end
	// then, so a graceful shutdown does not wait for them.
	streams     context.Context
	stopStreams context.CancelFunc
}

// New builds the router. The API answers not_ready until SetReady(true).
func New(d Deps) *API {
	if d.Logs == nil {
		d.Logs = logs.NewRing(int(d.Config.Config().Log.RingSize))
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	a := &API{d: d}
	a.streamed = streamedRoutes(a.routes())
	a.mwOpts = nethttp.Options{Streaming: a.streaming, OnError: a.middlewareFailed}
	a.streams, a.stopStreams = context.WithCancel(context.Background())
	d.Metrics.GaugeFunc("http", "in_flight_requests", "Requests being served now (probes not counted).", func() float64 { return float64(a.InFlight()) })
	d.Metrics.GaugeFunc("ratelimit", "shared", "1 while rate limits and lockouts are shared through Redis (cluster.redis_url), 0 while this node limits alone.", func() float64 {
		if a.d.Limits.Mode() == "shared" {
			return 1
		}
		return 0
	})
	a.lim = limits{cfg: d.Config.Config, log: d.Logger, bodies: bodyLimits(a.routes())}
	if err := a.Apply(context.Background(), d.Config.Config()); err != nil {
		a.d.Logger.Error("API settings not applied", "error", err)
	}
	a.handler = a.router()
	return a
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// SetReady flips readiness: false while starting and while draining.
func (a *API) SetReady(ready bool) { a.ready.Store(ready) }

// Apply applies the live parts of a new config that are built once per
// change rather than read per request: CORS, trusted proxies, rates.
func (a *API) Apply(_ context.Context, c *config.Config) error {
	a.cors.SetConfig(c.HTTP.CORS)
	a.proxies.set(c.HTTP.TrustedProxies)
	if err := a.setRates(c); err != nil {
		return fmt.Errorf("rate limits not applied: %w", err) // validated config: a bug
	}
	return nil
}

// Close ends the WebSocket and SSE streams (CloseStreams).
func (a *API) Close(context.Context) error {
	a.CloseStreams()
	return nil
}

// InFlight returns the number of requests being served.
func (a *API) InFlight() int64 { return a.lim.inFlight.Load() }

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one line of the route table. Role is required: a route without
// one makes the router panic at start, so no route can be forgotten.
type route struct {
	method, pattern string
	role            auth.Role
	group           string     // rate-limit group; "" for probes, which are never limited
	opts            *routeOpts // what sets the route apart; nil: nothing
	h               handlerFunc
}

// routeOpts are what sets a route apart from the others.
type routeOpts struct {
	body   bodyLimit // largest request body; nil: http.max_body_bytes
	stream bool      // it streams whatever the client's headers say: middleware never buffers its bodies
}

// bodyLimit reads a route's request body limit from the live config.
type bodyLimit func(*config.Config) int64

// The routes that take more than http.max_body_bytes, and those that stream.
var (
	pluginUpload = &routeOpts{body: func(c *config.Config) int64 { return c.Plugin.MaxUploadBytes }} // a manifest and a module
	packUpload   = &routeOpts{body: func(c *config.Config) int64 { return c.Packs.MaxUploadBytes }}  // a pack carries several
	streamed     = &routeOpts{stream: true}
)

func (a *API) routes() []route {
	return []route{
		// method, pattern, role, rate-limit group, options (a body limit, streamed), handler
		{"GET", "/health", RolePublic, "", nil, a.health},
		{"GET", "/api/v1/status/health", RolePublic, "", nil, a.statusHealth},
		{"GET", "/api/v1/status/ready", RolePublic, "", nil, a.statusReady},
		{"GET", "/api/v1/status", RoleOperator, "default", nil, a.status},
		{"GET", "/api/v1/cluster", RoleOperator, "default", nil, a.cluster},
		{"GET", "/ui", RolePublic, "default", nil, a.consoleRoot},
		{"GET", "/ui/*", RolePublic, "default", nil, a.console},
		{"GET", "/api/v1/config", RoleAdmin, "default", nil, a.getConfig},
		{"PATCH", "/api/v1/config", RoleAdmin, "config_write", nil, a.patchConfig},
		{"POST", "/api/v1/admin/backup", RoleAdmin, "default", nil, a.backup},
		{"GET", "/api/v1/keys", RoleAdmin, "default", nil, a.listKeys},
		{"POST", "/api/v1/keys", RoleAdmin, "default", nil, a.createKey},
		{"DELETE", "/api/v1/keys/{id}", RoleAdmin, "default", nil, a.revokeKey},
		{"GET", "/api/v1/users", RoleAdmin, "default", nil, a.listUsers},
		{"POST", "/api/v1/users", RoleAdmin, "default", nil, a.createUser},
		{"GET", "/api/v1/users/{id}", RoleAdmin, "default", nil, a.getUser},
		{"PUT", "/api/v1/users/{id}", RoleAdmin, "default", nil, a.updateUser},
		{"DELETE", "/api/v1/users/{id}", RoleAdmin, "default", nil, a.deleteUser},
		{"GET", "/api/v1/users/{id}/keys", RoleAdmin, "default", nil, a.listUserKeys},
		{"POST", "/api/v1/users/{id}/keys", RoleAdmin, "default", nil, a.createUserKey},
		{"DELETE", "/api/v1/users/{id}/keys/{key_id}", RoleAdmin, "default", nil, a.revokeUserKey},
		{"GET", "/api/v1/audit", RoleAdmin, "default", nil, a.listAudit},
		{"GET", "/api/v1/plugins", RoleOperator, "default", nil, a.listPlugins},
		{"GET", "/api/v1/plugins/{name}", RoleOperator, "default", nil, a.getPlugin},
		{"POST", "/api/v1/plugins", RoleOperator, "default", pluginUpload, a.installPlugin},
		{"DELETE", "/api/v1/plugins/{name}", RoleOperator, "default", nil, a.uninstallPlugin},
		{"POST", "/api/v1/plugins/{name}/reload", RoleOperator, "default", nil, a.pluginAction("reload", (*plugin.Manager).Reload)},
		{"POST", "/api/v1/plugins/{name}/disable", RoleOperator, "default", nil, a.pluginAction("disable", (*plugin.Manager).Disable)},
		{"POST", "/api/v1/plugins/{name}/enable", RoleOperator, "default", nil, a.pluginAction("enable", (*plugin.Manager).Enable)},
		{"GET", "/api/v1/packs", RoleOperator, "default", nil, a.listPacks},
		{"POST", "/api/v1/packs", RoleOperator, "default", packUpload, a.installPack},
		{"GET", "/api/v1/hooks", RoleOperator, "default", nil, a.listHooks},
		{"POST", "/api/v1/hooks", RoleOperator, "default", nil, a.createHook},
		{"GET", "/api/v1/hooks/{id}", RoleOperator, "default", nil, a.getHook},
		{"DELETE", "/api/v1/hooks/{id}", RoleOperator, "default", nil, a.deleteHook},
		{"POST", "/api/v1/hooks/{id}/rotate-secret", RoleOperator, "default", nil, a.rotateHookSecret},
		{"GET", "/api/v1/hooks/{id}/deliveries", RoleOperator, "default", nil, a.listDeliveries},
		{"POST", "/api/v1/hooks/{id}/deliveries/{delivery}/redeliver", RoleOperator, "default", nil, a.redeliver},
		{"GET", "/api/v1/skills", RoleUser, "default", nil, a.listSkills},
		{"POST", "/api/v1/skills/{name}/invoke", RoleUser, "default", nil, a.invokeSkill},
		{"GET", "/api/v1/usage", RoleUser, "default", nil, a.getUsage},
		{"POST", "/api/v1/sessions", RoleUser, "sessions_write", nil, a.createSession},
		{"GET", "/api/v1/sessions", RoleUser, "sessions_read", nil, a.listSessions},
		{"GET", "/api/v1/sessions/{id}", RoleUser, "sessions_read", nil, a.getSession},
		{"DELETE", "/api/v1/sessions/{id}", RoleUser, "sessions_write", nil, a.deleteSession},
		{"GET", "/api/v1/sessions/{id}/messages", RoleUser, "sessions_read", nil, a.listMessages},
		{"POST", "/api/v1/sessions/{id}/messages", RoleUser, "sessions_write", nil, a.postMessage},
		{"POST", "/api/v1/chat", RoleUser, "sessions_write", nil, a.chat},
		{"GET", "/api/v1/ws", RoleUser, "default", streamed, a.websocket},
		{"GET", "/api/v1/events/stream", RoleUser, "default", streamed, a.eventStream},
		{"GET", "/api/v1/channels", RoleOperator, "default", nil, a.listChannels},
		{"GET", "/api/v1/channels/{name}/health", RoleOperator, "default", nil, a.channelHealth},
		{"POST", "/api/v1/channels/{name}/restart", RoleOperator, "default", nil, a.restartChannel},
		{"POST", "/api/v1/channels/{name}/webhook", RolePublic, "unauthenticated", nil, a.channelWebhook},
		{"POST", "/api/v1/mcp", RoleUser, "default", streamed, a.mcpServe},
		{"GET", "/api/v1/mcp", RoleUser, "default", streamed, a.mcpServe},
		{"DELETE", "/api/v1/mcp", RoleUser, "default", streamed, a.mcpServe},
		{"GET", "/api/v1/mcp/registry", RoleOperator, "default", nil, a.mcpRegistry},
		{"POST", "/api/v1/mcp/{server}/mcp", RoleUser, "default", streamed, a.mcpProxy},
		{"GET", "/api/v1/mcp/{server}/mcp", RoleUser, "default", streamed, a.mcpProxy},
		{"DELETE", "/api/v1/mcp/{server}/mcp", RoleUser, "default", streamed, a.mcpProxy},
		{"GET", "/.well-known/agent-card.json", RolePublic, "unauthenticated", nil, a.getAgentCard},
		{"GET", "/.well-known/agent-cards", RolePublic, "unauthenticated", nil, a.listAgentCards},
		{"GET", "/.well-known/agent-cards/{name}", RolePublic, "unauthenticated", nil, a.getNamedAgentCard},
		{"POST", "/a2a", RoleUser, "sessions_write", nil, a.a2aRPC},
		{"GET", "/api/v1/logs", RoleOperator, "default", nil, a.listLogs},
		{"GET", "/api/v1/logs/stream", RoleOperator, "default", streamed, a.logStream},
		{"GET", metricsPath, RoleOperator, "default", nil, a.serveMetrics},
		{"GET", "/cert", RolePublic, "unauthenticated", nil, a.getCert},
	}
}

// middleware is the core chain every request passes, outermost first.
func (a *API) middleware() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{requestID, accessLog(a.d.Logger, a.d.Metrics, a.d.Tracer), recoverer(a.d.Logger), a.cors.wrap, a.lim.wrap, a.preAuth}
}

func (a *API) router() http.Handler {
	r := chi.NewRouter()
	r.Use(a.middleware()...)
	// Misses are limited like public routes, per client IP.
	miss := route{role: RolePublic, group: "unauthenticated"}
	r.NotFound(a.adapt(a.guard(miss, func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path)
	})))
	r.MethodNotAllowed(a.adapt(a.guard(miss, func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(http.StatusMethodNotAllowed, CodeMethod, "method %s is not allowed on %s", r.Method, r.URL.Path)
	})))
	for _, rt := range append(a.routes(), a.extra...) {
		if rt.role == 0 {
			panic(fmt.Sprintf("httpapi: route %s %s has no role", rt.method, rt.pattern))
		}
		h := a.guard(rt, rt.h)
		if rt.method == "GET" && rt.pattern == metricsPath {
			h = a.scrapeToken(h)
		}
		r.Method(rt.method, rt.pattern, a.adapt(h))
	}
	a.mount(r)
	return r
}

func (a *API) adapt(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, a.d.Logger, err)
		}
	}
}

func (a *API) uptime() float64 { return time.Since(a.d.Started).Round(time.Millisecond).Seconds() }

func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, healthResponse{Status: "healthy", Version: a.d.Version, UptimeSeconds: a.uptime()})
	return nil
}

type healthResponse struct {
	Status        string  `json:"status"`
	Version       string  `json:"version"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

var healthyBody = []byte(`{"healthy":true}` + "\n")

// statusHealth is the load balancers' liveness probe: as cheap as possible.
func (a *API) statusHealth(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(healthyBody)
	return nil
}

func (a *API) statusReady(w http.ResponseWriter, r *http.Request) error {
	if !a.ready.Load() {
		return Errorf(http.StatusServiceUnavailable, CodeNotReady, "the gateway is starting or draining")
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
	return nil
}

// cluster lists the nodes sharing the store, this one first.
func (a *API) cluster(w http.ResponseWriter, r *http.Request) error {
	nodes, err := a.d.Nodes.List(r.Context())
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []cluster.Node{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": a.d.Nodes.ID(), "nodes": nodes, "total": len(nodes)})
	return nil
}

func (a *API) status(w http.ResponseWriter, r *http.Request) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sc := a.d.Config.Config().Storage
	size := a.d.Store.Size()
	compiled := a.d.Plugins.CompiledBytes() // a module several plugins share counts once
	writeJSON(w, http.StatusOK, map[string]any{
		"version":        a.d.Version,
		"uptime_seconds": a.uptime(),
		"started_at":     a.d.Started.UTC(),
		"ready":          a.ready.Load(),
		"config":         a.d.Config.Status(),
		"ratelimit":      map[string]any{"mode": a.d.Limits.Mode()},
		"storage": map[string]any{"backend": sc.Backend, "lsm_bytes": size.LSMBytes, "vlog_bytes": size.VlogBytes,
			"memtable_bytes": sc.MemTableBytes, "block_cache_bytes": sc.CacheBytes, "index_cache_bytes": sc.IndexCacheBytes,
			"block_cache_used_bytes": size.BlockCacheBytes, "index_cache_used_bytes": size.IndexCacheBytes},
		"events":  a.d.Bus.Stats(),
		"plugins": a.pluginCounts(),
		"http":    map[string]any{"in_flight": a.InFlight()},
		"runtime": map[string]any{"goroutines": runtime.NumGoroutine(), "heap_alloc_bytes": ms.HeapAlloc,
			"heap_inuse_bytes": ms.HeapInuse, "heap_retained_bytes": ms.HeapSys - ms.HeapReleased,
			"resident_bytes": residentBytes(), "plugin_compiled_bytes": compiled},
	})
	return nil
}

func (a *API) getConfig(w http.ResponseWriter, r *http.Request) error {
	snap := a.d.Config.Current()
	sources := map[string]string{}
	for k, s := range snap.Sources {
		if s != config.FromDefault {
			sources[k] = s
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"generation": snap.Generation,
		"file":       a.d.Config.File(),
		"loaded_at":  snap.LoadedAt.UTC(),
		"config":     snap.Config.Nested(true),
		"sources":    sources,
	})
	return nil
}

func (a *API) patchConfig(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	patch, err := config.DecodePatch(b)
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	res, err := a.d.Config.Patch(patch)
	entry := audit.Entry{Actor: actor(r), Action: "config.patch", Target: "config", Outcome: audit.Success}
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	entry.Details = map[string]any{"keys": keys}
	if err != nil {
		entry.Outcome = audit.Failure
		entry.Details["error"] = config.Message(err)
	}
	a.record(r, entry)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
		return nil
	case errors.Is(err, config.ErrInvalid):
		e := Errorf(http.StatusBadRequest, CodeBadRequest, "config not changed: %s", config.Message(err))
		e.Details = map[string]any{"keys": config.Keys(err)}
		return e
	case errors.Is(err, config.ErrFileInvalid):
		return Errorf(http.StatusConflict, CodeConflict, "config not changed: %v", err)
	}
	return err
}

func (a *API) backup(w http.ResponseWriter, r *http.Request) error {
	if nb, ok := a.d.Store.(store.NoBackup); ok {
		return Errorf(http.StatusConflict, CodeConflict, "%v", nb.BackupUnsupported())
	}
	// A backup of a large store outlives http.write_timeout; lift it here.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"portico-%s.backup\"", time.Now().UTC().Format("20060102T150405Z")))
	h.Set("Trailer", BackupStatusTrailer)
	w.WriteHeader(http.StatusOK)
	cw := &countWriter{w: w}
	err := a.d.Store.Backup(r.Context(), cw)
	entry := audit.Entry{Actor: actor(r), Action: "store.backup", Target: "store", Outcome: audit.Success,
		Details: map[string]any{"bytes": cw.n}}
	status := "ok"
	if err != nil {
		status = "error: " + err.Error()
		entry.Outcome = audit.Failure
		entry.Details["error"] = err.Error()
		a.d.Logger.ErrorContext(r.Context(), "backup failed", "error", err, "request_id", RequestID(r.Context()))
	}
	h.Set(BackupStatusTrailer, status)
	a.record(r, entry)
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (a *API) pluginCounts() map[string]int {
	out := map[string]int{"total": 0}
	for _, p := range a.d.Plugins.List() {
		out["total"]++
		out[string(p.Status)]++
	}
	return out
}
