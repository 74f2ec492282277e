// Package nethttp wraps net/http handlers in http-wasm middleware
// (hostapi/httpwasm): a fixed middleware, or a Slot whose current version
// an operator swaps live (reload, disable, enable) without dropping a
// request.
package nethttp

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/porticohq/portico/hostapi/httpwasm"
)

// Options configure how a middleware wraps a handler.
type Options struct {
	// Streaming reports whether a request is a stream (WebSocket, SSE, an
	// MCP stream): its bodies are never buffered and the ResponseWriter
	// keeps the Flusher and Hijacker of the one it wraps
	// (httpwasm.Middleware.Serve). Nil means Streaming.
	Streaming func(*http.Request) bool
	// OnError answers a request the middleware failed; nil answers 502
	// with a short text naming the middleware (httpwasm.ErrorHandler).
	OnError httpwasm.ErrorHandler
}

func (o *Options) streaming(r *http.Request) bool {
	if o.Streaming != nil {
		return o.Streaming(r)
	}
	return Streaming(r)
}

// Streaming reports whether r opens a stream: a protocol upgrade
// (WebSocket) or a client accepting text/event-stream (SSE, MCP's
// streamable HTTP).
func Streaming(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, a := range r.Header["Accept"] {
		if strings.Contains(a, "text/event-stream") {
			return true
		}
	}
	return false
}

// Handler returns next wrapped in m (httpwasm.Middleware.Serve); once m
// is closed, requests are refused with hostapi.ErrClosed.
func Handler(m *httpwasm.Middleware, next http.Handler, o Options) http.Handler {
	return &handler{m: m, next: next, o: o}
}

// handler serves through a fixed middleware, or through a slot's
// current one when s is set.
type handler struct {
	m    *httpwasm.Middleware
	s    *Slot
	next http.Handler
	o    Options
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	streaming := h.o.streaming(r)
	for {
		m := h.m
		if h.s != nil {
			if m = h.s.cur.Load(); m == nil { // disabled
				h.next.ServeHTTP(w, r)
				return
			}
		}
		if m.Serve(w, r, h.next, streaming, h.o.OnError) {
			return
		}
		if h.s == nil || h.s.cur.Load() == m { // closed, and not swapped out
			m.Refuse(w, r, h.o.OnError)
			return
		}
	}
}

// Slot holds the current version of a middleware for live reload,
// disable and enable: Swap in the new one (nil disables: requests go
// straight to next), then Close the old one. A request always runs on a
// middleware that let it in, so a swap drops none: one that found the old
// version closing retries with the new.
type Slot struct {
	cur atomic.Pointer[httpwasm.Middleware]
}

// Load returns the current middleware, or nil.
func (s *Slot) Load() *httpwasm.Middleware { return s.cur.Load() }

// Swap installs m (nil disables) and returns the previous one for the
// caller to Close.
func (s *Slot) Swap(m *httpwasm.Middleware) *httpwasm.Middleware { return s.cur.Swap(m) }

// Handler is the package's Handler through the slot's current middleware.
func (s *Slot) Handler(next http.Handler, o Options) http.Handler {
	return &handler{s: s, next: next, o: o}
}
