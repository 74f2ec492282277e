package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/cors"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/logs"
	"github.com/porticohq/portico/core/internal/metrics"
	"github.com/porticohq/portico/core/internal/tracing"
)

type ctxKey int

// RequestID returns the request id that the requestID middleware put in ctx.
func RequestID(ctx context.Context) string { return logs.RequestID(ctx) }

// requestID takes a well-formed X-Request-Id from the client or makes one,
// puts it in the context and echoes it in the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(logs.WithRequestID(r.Context(), id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// quietPaths are probes: logged at debug level, exempt from the in-flight
// limit.
var quietPaths = map[string]bool{"/health": true, "/api/v1/status/health": true, "/api/v1/status/ready": true}

// accessLog writes one structured line per request. It logs the path only,
// never the query string, so tokens in URLs stay out of logs.
func accessLog(log *slog.Logger, m *metrics.Metrics, tr *tracing.Tracer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			var endSpan func(route string, status int)
			if tr != nil {
				r, endSpan = tr.Request(r)
			}
			defer func() {
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				// The router filled in the route pattern by now.
				var pattern string
				if rc := chi.RouteContext(r.Context()); rc != nil {
					pattern = rc.RoutePattern()
				}
				m.Route(r.Method, pattern).Observe(status, time.Since(start))
				if endSpan != nil {
					endSpan(pattern, status)
				}
				level := slog.LevelInfo
				if quietPaths[r.URL.Path] {
					level = slog.LevelDebug
				}
				if !log.Enabled(r.Context(), level) {
					return
				}
				log.LogAttrs(r.Context(), level, "request",
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Int("bytes", ww.BytesWritten()),
					slog.Duration("duration", time.Since(start)),
					slog.String("remote", r.RemoteAddr),
					slog.String("request_id", RequestID(r.Context())))
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// recoverer turns a panic in a handler into a 500 envelope (when nothing was
// written yet) and a logged stack, and keeps the server serving.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				rec := recover()
				if rec == nil {
					return
				}
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				log.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(rec), "method", r.Method, "path", r.URL.Path,
					"request_id", RequestID(r.Context()), "stack", string(debug.Stack()))
				if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
					return // the response has started; the client sees it cut short
				}
				WriteError(w, r, log, Errorf(http.StatusInternalServerError, CodeInternal, "internal error (request id %s)", RequestID(r.Context())))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// corsHandler applies the CORS policy in force; SetConfig swaps it.
type corsHandler struct {
	c atomic.Pointer[cors.Cors] // nil: CORS off
}

func (h *corsHandler) SetConfig(c config.CORS) {
	if len(c.AllowedOrigins) == 0 {
		h.c.Store(nil)
		return
	}
	h.c.Store(cors.New(cors.Options{
		AllowedOrigins:   c.AllowedOrigins,
		AllowedMethods:   c.AllowedMethods,
		AllowedHeaders:   c.AllowedHeaders,
		ExposedHeaders:   c.ExposedHeaders,
		AllowCredentials: c.AllowCredentials,
		MaxAge:           int(c.MaxAge.D() / time.Second),
	}))
}

func (h *corsHandler) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := h.c.Load(); c != nil {
			c.ServeHTTP(w, r, next.ServeHTTP)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limits enforces the live http.max_in_flight and http.max_body_bytes.
type limits struct {
	cfg      func() *config.Config
	log      *slog.Logger
	inFlight atomic.Int64
	// bodies are the body limits of the route table's body column, by
	// method and path: the limit applies before routing, so the pre-auth
	// middleware never reads more than the route takes.
	bodies map[routeKey]bodyLimit
}

// routeKey names a route by method and literal path (a struct key: a
// lookup allocates nothing).
type routeKey struct{ method, path string }

// bodyLimits indexes the routes with a body limit of their own; those
// routes must have literal patterns.
func bodyLimits(routes []route) map[routeKey]bodyLimit {
	out := map[routeKey]bodyLimit{}
	for _, rt := range routes {
		if rt.opts == nil || rt.opts.body == nil {
			continue
		}
		if strings.ContainsAny(rt.pattern, "{*") {
			panic(fmt.Sprintf("httpapi: route %s %s has a body limit but no literal path", rt.method, rt.pattern))
		}
		out[routeKey{rt.method, rt.pattern}] = rt.opts.body
	}
	return out
}

func (l *limits) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := l.cfg()
		if !quietPaths[r.URL.Path] {
			n := l.inFlight.Add(1)
			defer l.inFlight.Add(-1)
			if max := c.HTTP.MaxInFlight; max > 0 && n > max {
				w.Header().Set("Retry-After", "1")
				WriteError(w, r, l.log, Errorf(http.StatusServiceUnavailable, CodeOverloaded,
					"the server is serving its limit of %d requests at once (http.max_in_flight); retry shortly", max))
				return
			}
		}
		max := c.HTTP.MaxBodyBytes
		if f := l.bodies[routeKey{r.Method, r.URL.Path}]; f != nil {
			max = f(c)
		}
		if r.ContentLength > max {
			WriteError(w, r, l.log, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge,
				"request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, max))
			return
		} else if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}
