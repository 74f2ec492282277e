package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/hostapi"
)

// streamingPrefixes are the routes that stream whatever the client's
// headers say: middleware never buffers their bodies.
var streamingPrefixes = []string{"/api/v1/ws", "/api/v1/events/stream", "/api/v1/logs/stream", "/api/v1/mcp"}

// streaming reports whether a request opens a stream (hostapi's rule: an
// Upgrade, or a client accepting text/event-stream) or goes to a streaming
// route.
func streaming(r *http.Request) bool {
	if hostapi.StreamingRequest(r) {
		return true
	}
	for _, p := range streamingPrefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return false
}

// chainPlugins lists the middleware plugins of the groups that apply to
// path, in order.
func chainPlugins(groups []config.MiddlewareGroup, path string) []string {
	var out []string
	for _, g := range groups {
		if g.Applies(path) {
			out = append(out, g.Plugins...)
		}
	}
	return out
}

// withChain wraps next in the middleware plugins, outermost first. A
// plugin that is missing or failed fails the request closed (502
// plugin_error naming it); a disabled one is skipped.
func (a *API) withChain(names []string, next http.Handler) (http.Handler, error) {
	opts := hostapi.HandlerOptions{Streaming: streaming, OnError: a.middlewareFailed}
	h := next
	for i := len(names) - 1; i >= 0; i-- {
		slot, err := a.d.Plugins.Middleware(names[i])
		if err != nil {
			return nil, Errorf(http.StatusBadGateway, CodePluginError, "middleware: %v", err)
		}
		if slot != nil {
			h = a.tracedMiddleware(names[i], slot.Handler(h, opts))
		}
	}
	return h, nil
}

// middlewareFailed answers a request a middleware failed: 502
// plugin_error naming it, unless the response had already started.
func (a *API) middlewareFailed(w http.ResponseWriter, r *http.Request, err error) {
	var me *hostapi.MiddlewareError
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := chainPlugins(a.d.Config.Config().Middleware.PreAuth, r.URL.Path)
		if len(names) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		h, err := a.withChain(names, next)
		if err != nil {
			WriteError(w, r, a.d.Logger, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// postAuth runs the post_auth chain around an authenticated route's
// handler.
func (a *API) postAuth(w http.ResponseWriter, r *http.Request, next handlerFunc) error {
	names := chainPlugins(a.d.Config.Config().Middleware.PostAuth, r.URL.Path)
	if len(names) == 0 {
		return next(w, r)
	}
	h, err := a.withChain(names, a.adapt(next))
	if err != nil {
		return err
	}
	h.ServeHTTP(w, r)
	return nil
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
