package httpapi

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// streaming reports whether a request opens a stream (hostapi's rule: an
// Upgrade, or a client accepting text/event-stream) or goes to a route the
// route table marks streamed.
func (a *API) streaming(r *http.Request) bool {
	return nethttp.Streaming(r) || a.streamed.Match(chi.NewRouteContext(), r.Method, r.URL.Path)
}

// streamedRoutes is a router of the streamed routes alone, to match
// requests against before the real router has run.
func streamedRoutes(routes []route) *chi.Mux {
	m := chi.NewRouter()
	for _, rt := range routes {
		if rt.opts != nil && rt.opts.stream {
			m.Method(rt.method, rt.pattern, http.NotFoundHandler())
		}
	}
	return m
}

// chains are the middleware chains one call site (the pre_auth chain in
// front of the router, or the post_auth chain of one route) has built, by
// which groups apply to a request's path. A chain is built once per
// config snapshot and plugin registry snapshot (a registry lookup and a
// handler per plugin) and reused by every request until either changes;
// the slots it holds follow reloads by themselves.
type chains struct {
	a     *API
	which func(*config.Config) []config.MiddlewareGroup
	next  http.Handler
	mu    sync.Mutex // serializes builds
	cur   atomic.Pointer[chainSet]
}

// chainSet is what one config and registry snapshot gave: a handler per
// set of applying groups (a bit per group, in order).
type chainSet struct {
	cfg    *config.Config
	reg    uint64
	byMask map[uint64]http.Handler
}

// maxCachedGroups is how many groups a bit mask can name; a chain list
// longer than that is built per request (it would be an odd config).
const maxCachedGroups = 64

func (a *API) newChains(which func(*config.Config) []config.MiddlewareGroup, next http.Handler) *chains {
	return &chains{a: a, which: which, next: next}
}

func preAuthGroups(c *config.Config) []config.MiddlewareGroup  { return c.Middleware.PreAuth }
func postAuthGroups(c *config.Config) []config.MiddlewareGroup { return c.Middleware.PostAuth }

// handler returns the chain for r's path around the call site's next.
func (ch *chains) handler(r *http.Request) http.Handler {
	c := ch.a.d.Config.Config()
	groups := ch.which(c)
	if len(groups) == 0 {
		return ch.next
	}
	if len(groups) > maxCachedGroups {
		return ch.build(chainPlugins(groups, ^uint64(0), r.URL.Path))
	}
	var mask uint64
	for i := range groups {
		if groups[i].Applies(r.URL.Path) {
			mask |= 1 << i
		}
	}
	if mask == 0 {
		return ch.next
	}
	reg := ch.a.d.Plugins.Generation()
	if set := ch.cur.Load(); set != nil && set.cfg == c && set.reg == reg {
		if h, ok := set.byMask[mask]; ok {
			return h
		}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	set := ch.cur.Load()
	if set == nil || set.cfg != c || set.reg != reg {
		set = &chainSet{cfg: c, reg: reg, byMask: map[uint64]http.Handler{}}
	} else if h, ok := set.byMask[mask]; ok {
		return h
	}
	h := ch.build(chainPlugins(groups, mask, ""))
	next := &chainSet{cfg: c, reg: reg, byMask: make(map[uint64]http.Handler, len(set.byMask)+1)}
	for k, v := range set.byMask {
		next.byMask[k] = v
	}
	next.byMask[mask] = h
	ch.cur.Store(next)
	return h
}

// build wraps next in the middleware plugins, outermost first. A plugin
// that is missing or failed makes a chain that fails its requests closed
// (502 plugin_error naming it); a disabled one is skipped by its slot.
func (ch *chains) build(names []string) http.Handler {
	a := ch.a
	h := ch.next
	for i := len(names) - 1; i >= 0; i-- {
		slot, err := a.d.Plugins.Middleware(names[i])
		if err != nil {
			e := Errorf(http.StatusBadGateway, CodePluginError, "middleware: %v", err)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, a.d.Logger, e) })
		}
		if slot != nil {
			h = a.tracedMiddleware(names[i], slot.Handler(h, a.mwOpts))
		}
	}
	return h
}

// chainPlugins lists the middleware plugins of the groups that apply: by
// mask, or by path when the mask is all ones.
func chainPlugins(groups []config.MiddlewareGroup, mask uint64, path string) []string {
	var out []string
	for i, g := range groups {
		if (mask == ^uint64(0) && g.Applies(path)) || (mask != ^uint64(0) && mask&(1<<i) != 0) {
			out = append(out, g.Plugins...)
		}
	}
	return out
}

// middlewareFailed answers a request a middleware failed: 502
// plugin_error naming it, unless the response had already started.
func (a *API) middlewareFailed(w http.ResponseWriter, r *http.Request, err error) {
	var me *httpwasm.Error
	if errors.As(err, &me) && me.Committed {
		a.d.Logger.WarnContext(r.Context(), "middleware failed after the response started", "middleware", me.Middleware, "phase", me.Phase, "error", err, "request_id", RequestID(r.Context()))
		return
	}
	status := http.StatusBadGateway
	code := CodePluginError
	if errors.Is(err, hostapi.ErrBusy) {
		status, code = http.StatusServiceUnavailable, CodePluginBusy
	}
	WriteError(w, r, a.d.Logger, Errorf(status, code, "%v", err))
}

// preAuth runs the pre_auth chain: before authentication, on every
// request its groups' paths match.
func (a *API) preAuth(next http.Handler) http.Handler {
	ch := a.newChains(preAuthGroups, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch.handler(r).ServeHTTP(w, r)
	})
}

// tracedMiddleware puts a span around a middleware plugin (and what it
// wraps) when tracing is on.
func (a *API) tracedMiddleware(name string, h http.Handler) http.Handler {
	if a.d.Tracer == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, end := a.d.Tracer.Plugin(r.Context(), "middleware", name, name)
		defer end(nil)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
