// Package harness runs a plugin module on the host for its author's tests:
// an in-memory key-value store, config values, canned HTTP responses and
// skills, captured logs and events, and the real runtime (the same checks,
// limits and ABI as the gateway). `portico plugin test` runs on it.
package harness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// Response is a canned HTTP answer.
type Response struct {
	Status int
	Body   []byte
}

// Host is the fake gateway a plugin talks to. Set its fields before Load;
// read Logs, Events and Denied after calls.
type Host struct {
	KV     map[string][]byte
	Values map[string]string // the plugin's config
	// Responses answer HTTP requests by URL; a URL with no entry fails.
	Responses map[string]Response
	// Skills answers call_skill.
	Skills map[string]func(input []byte) ([]byte, error)
	// Completer answers llm_complete; nil means no provider.
	Completer func(request []byte) ([]byte, error)

	mu      sync.Mutex
	Logs    []string
	Events  []Event
	Refused []string // capabilities the plugin called without a grant
}

// Event is one event the plugin emitted.
type Event struct {
	Type string
	Data []byte
}

var _ hostapi.Host = (*Host)(nil)

// NewHost returns an empty host.
func NewHost() *Host {
	return &Host{KV: map[string][]byte{}, Values: map[string]string{}, Responses: map[string]Response{}, Skills: map[string]func([]byte) ([]byte, error){}}
}

// Log implements hostapi.Host.
func (h *Host) Log(_ context.Context, _ int32, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Logs = append(h.Logs, msg)
}

// Config implements hostapi.Host.
func (h *Host) Config(key string) (string, bool) {
	v, ok := h.Values[key]
	return v, ok
}

// KVGet implements hostapi.Host.
func (h *Host) KVGet(_ context.Context, key []byte) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.KV[string(key)]
	return v, ok, nil
}

// KVSet implements hostapi.Host.
func (h *Host) KVSet(_ context.Context, key, value []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.KV[string(key)] = append([]byte{}, value...)
	return nil
}

// KVDelete implements hostapi.Host.
func (h *Host) KVDelete(_ context.Context, key []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.KV, string(key))
	return nil
}

// Emit implements hostapi.Host.
func (h *Host) Emit(_ context.Context, typ string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Events = append(h.Events, Event{Type: typ, Data: append([]byte{}, data...)})
	return nil
}

// CallSkill implements hostapi.Host.
func (h *Host) CallSkill(_ context.Context, skill string, input []byte) ([]byte, error) {
	fn, ok := h.Skills[skill]
	if !ok {
		return nil, hostapi.ErrNoSkill
	}
	return fn(input)
}

// HTTP implements hostapi.Host.
func (h *Host) HTTP(_ context.Context, req *http.Request) (int, []byte, error) {
	r, ok := h.Responses[req.URL.String()]
	if !ok {
		return 0, nil, errors.New("harness: no canned response for " + req.URL.String() + ": " + hostapi.ErrDenied.Error())
	}
	return r.Status, r.Body, nil
}

// LLM implements hostapi.Host.
func (h *Host) LLM(_ context.Context, request []byte) ([]byte, error) {
	if h.Completer == nil {
		return nil, errors.New("no LLM provider is configured in the gateway")
	}
	return h.Completer(request)
}

// Denied implements hostapi.Host.
func (h *Host) Denied(_ context.Context, capability string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Refused = append(h.Refused, capability)
}

// Plugin is a module loaded on a Host.
type Plugin struct {
	rt *hostapi.Runtime
	p  *hostapi.Plugin
}

// CacheDir is the compilation cache Load uses; empty compiles in memory
// every time. A Go guest takes seconds to compile, milliseconds from the
// cache.
var CacheDir string

// Load compiles and starts a module with the given kinds ("skill", "hook", "channel")
// and granted capabilities, as the gateway would.
func Load(ctx context.Context, name string, wasm []byte, h *Host, kinds, grants []string) (*Plugin, error) {
	rt, err := hostapi.NewRuntime(CacheDir)
	if err != nil {
		return nil, err
	}
	p, err := rt.Load(ctx, wasm, hostapi.Options{Name: name, Host: h, Kinds: kinds, Grants: grants, PoolOptions: hostapi.PoolOptions{MaxInstances: 1}})
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Plugin{rt: rt, p: p}, nil
}

// Invoke calls a skill with JSON input.
func (p *Plugin) Invoke(ctx context.Context, skill string, input []byte) ([]byte, error) {
	env := append([]byte{byte(len(skill) >> 8), byte(len(skill))}, skill...)
	return p.p.Call(ctx, append(env, input...))
}

// Deliver hands an event to the plugin's hook.
func (p *Plugin) Deliver(ctx context.Context, typ string, data []byte) error {
	env := append([]byte{byte(len(typ) >> 8), byte(len(typ))}, typ...)
	return p.p.CallHook(ctx, append(env, data...))
}

// Channel runs a channel operation ("webhook", "send", "health") with its
// JSON payload.
func (p *Plugin) Channel(ctx context.Context, op string, payload []byte) ([]byte, error) {
	env := append([]byte{byte(len(op) >> 8), byte(len(op))}, op...)
	return p.p.CallChannel(ctx, append(env, payload...))
}

// Middleware is an http-wasm middleware loaded on a Host.
type Middleware struct {
	rt *hostapi.Runtime
	m  *httpwasm.Middleware
}

// LoadMiddleware compiles and starts a middleware module with its guest
// config (Portico passes the plugin's config table as a JSON object).
func LoadMiddleware(ctx context.Context, name string, wasm []byte, h *Host, grants []string, config []byte) (*Middleware, error) {
	rt, err := hostapi.NewRuntime(CacheDir)
	if err != nil {
		return nil, err
	}
	m, err := httpwasm.Load(ctx, rt, wasm, httpwasm.Options{Name: name, Host: h, Grants: grants, GuestConfig: config, PoolOptions: hostapi.PoolOptions{MaxInstances: 1}})
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Middleware{rt: rt, m: m}, nil
}

// Serve runs one request through the middleware in front of route and
// returns the response the client would get; a middleware failure is a
// 502 whose body names it.
func (m *Middleware) Serve(r *http.Request, route http.Handler) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	nethttp.Handler(m.m, route, nethttp.Options{}).ServeHTTP(w, r)
	return w
}

// Close frees the middleware and its runtime.
func (m *Middleware) Close(ctx context.Context) {
	m.m.Close(ctx)
	m.rt.Close(ctx)
}

// Close frees the plugin and its runtime.
func (p *Plugin) Close(ctx context.Context) {
	p.p.Close(ctx)
	p.rt.Close(ctx)
}
