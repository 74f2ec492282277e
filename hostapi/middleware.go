package hostapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	handlerapi "github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// KindMiddleware is the plugin kind of an HTTP middleware: a module for
// the public http-wasm handler ABI (host module http_handler, guest
// exports handle_request and handle_response; http-wasm.io), the one
// Traefik and Dapr run. It is loaded with LoadMiddleware, not Load.
const KindMiddleware = "middleware"

// ErrBodyLimit is a body or header, buffered or written by a middleware,
// over its limit. The request fails closed.
var ErrBodyLimit = errors.New("body exceeds the middleware's limit")

// MiddlewareOptions configure one middleware. Zero values take the
// defaults shown.
type MiddlewareOptions struct {
	Name string
	// GuestConfig is what the guest's get_config returns.
	GuestConfig []byte
	// Host backs the portico host module (log, config, kv, ...), which a
	// middleware may import beside http_handler; nil grants nothing and
	// sends the guest's portico log and stdout to Logger.
	Host   Host
	Grants []string

	PoolOptions // the same pool as a plugin's, with the same defaults
	// CallTimeout is the deadline of each phase (handle_request,
	// handle_response); default 1s. A negative value runs the middleware
	// without deadlines, in a runtime without wazero's close-on-context-done
	// (cheaper; for trusted, first-party middleware only: an endless loop
	// then holds its instance and goroutine forever).
	CallTimeout  time.Duration
	StartTimeout time.Duration // a new instance's start function; default 10s
	MemoryBytes  uint64        // linear memory per instance; default 16 MiB
	// MaxBodyBytes bounds a request or response body the host buffers for
	// the guest (buffer_request, buffer_response) or the guest writes;
	// default 1 MiB. Over it the request fails with ErrBodyLimit.
	MaxBodyBytes int
	// MaxHeaderBytes bounds one header (name and value) or URI the guest
	// sets; default 64 KiB.
	MaxHeaderBytes int
	// Logger receives the guest's http_handler log calls (its log_enabled
	// asks Logger.Enabled). Nil sends them to Host.Log at info and above,
	// or nowhere when Host is nil too.
	Logger *slog.Logger
}

func (o *MiddlewareOptions) defaults() {
	o.PoolOptions.defaults()
	if o.CallTimeout == 0 {
		o.CallTimeout = time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.MemoryBytes == 0 {
		o.MemoryBytes = 16 << 20
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 64 << 10
	}
}

// Middleware is one loaded http-wasm module with its capped pool of
// instances. One instance is pinned to a request for both of its phases.
type Middleware struct {
	name     string
	opts     MiddlewareOptions
	p        *Plugin
	deadline bool
	features atomic.Uint32 // enabled by start functions; the base of every request's

	inflight  atomic.Int64 // requests inside Handler; closedBit once closed
	closed    atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
}

const closedBit = 1 << 62

// LoadMiddleware compiles an http-wasm guest, checks its exports, imports
// and memory with a precise error for each problem, starts one instance
// (running _initialize, else _start, so a start that traps fails here),
// and warms the pool.
func (r *Runtime) LoadMiddleware(ctx context.Context, wasm []byte, o MiddlewareOptions) (*Middleware, error) {
	o.defaults()
	m := &Middleware{name: o.Name, opts: o, deadline: o.CallTimeout > 0, drained: make(chan struct{})}
	host := o.Host
	if host == nil {
		// The portico module of a middleware loaded without a Host: logs
		// go to Logger, every capability is refused.
		host = DenyAll{Logger: o.Logger, Attrs: []slog.Attr{slog.String("middleware", o.Name)}}
	}
	popts := Options{
		Name: o.Name, Host: host, Grants: o.Grants, MemoryLimitBytes: o.MemoryBytes,
		CallTimeout: max(o.CallTimeout, 0), StartTimeout: o.StartTimeout,
		PoolOptions: o.PoolOptions, Kinds: []string{KindMiddleware}, noDeadline: o.CallTimeout < 0,
	}
	popts.defaults()
	p, err := r.compile(ctx, wasm, popts)
	if err != nil {
		return nil, err
	}
	p.mw, m.p = m, p
	if err := m.check(); err != nil {
		p.unshare()
		return nil, err
	}
	if err := p.warm(nil); err != nil {
		return nil, err
	}
	p.settle()
	return m, nil
}

// check validates exports, imports and the start function against the
// http-wasm handler ABI before anything runs.
func (m *Middleware) check() error {
	c := m.p.compiled
	exp := c.ExportedFunctions()
	sig := func(fn string, params, results []api.ValueType) error {
		d, ok := exp[fn]
		if !ok {
			return fmt.Errorf("middleware %q: %w: missing export %s; is this an http-wasm handler (http-wasm.io)?", m.name, ErrABI, fn)
		}
		if !slices.Equal(d.ParamTypes(), params) || !slices.Equal(d.ResultTypes(), results) {
			return fmt.Errorf("middleware %q: %w: export %s has signature %s, want %s", m.name, ErrABI, fn, signature(d), sigString(params, results))
		}
		return nil
	}
	if err := sig(handlerapi.FuncHandleRequest, nil, []api.ValueType{i64}); err != nil {
		return err
	}
	if err := sig(handlerapi.FuncHandleResponse, []api.ValueType{i32, i32}, nil); err != nil {
		return err
	}
	if _, ok := c.ExportedMemories()["memory"]; !ok {
		return fmt.Errorf("middleware %q: %w: the module does not export its memory as \"memory\"", m.name, ErrABI)
	}
	for _, imp := range c.ImportedFunctions() {
		mod, fn, _ := imp.Import()
		switch mod {
		case handlerapi.HostModule:
			params, results, ok := httpHandlerSignature(fn)
			if !ok {
				return fmt.Errorf("middleware %q: %w: imports %s.%s, which the http-wasm handler ABI does not define", m.name, ErrABI, mod, fn)
			}
			if !slices.Equal(imp.ParamTypes(), params) || !slices.Equal(imp.ResultTypes(), results) {
				return fmt.Errorf("middleware %q: %w: import %s.%s has signature %s, want %s", m.name, ErrABI, mod, fn, signature(imp), sigString(params, results))
			}
		case HostModule:
			if err := m.p.checkHostImport(imp); err != nil {
				return err
			}
		case wasi_snapshot_preview1.ModuleName:
		default:
			return fmt.Errorf("middleware %q: %w: imports %s.%s; this host provides only %s, %s and %s", m.name, ErrABI, mod, fn,
				handlerapi.HostModule, HostModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	return m.p.startRule()
}

func sigString(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}

// Name returns the middleware's name.
func (m *Middleware) Name() string { return m.name }

// Features returns the http-wasm features the guest enabled while
// starting; each request starts from these (less body buffering on a
// streaming request).
func (m *Middleware) Features() handlerapi.Features {
	return handlerapi.Features(m.features.Load())
}

// Trim lets instances idle for IdleRelease go (Plugin.Trim).
func (m *Middleware) Trim(now time.Time) int { return m.p.Trim(now) }

// Stats returns the middleware's counters: Calls counts requests, Errors
// failed ones, and the latency quantiles are guest time per request (both
// phases).
func (m *Middleware) Stats() Stats { return m.p.Stats() }

// Live returns the number of instances alive (idle and in use).
func (m *Middleware) Live() int64 { return m.p.Live() }

// retain counts a request in; it fails once the middleware is closed.
func (m *Middleware) retain() bool {
	if m.inflight.Add(1)&closedBit != 0 {
		m.release()
		return false
	}
	return true
}

func (m *Middleware) release() {
	if m.inflight.Add(-1) == closedBit {
		m.drainOnce.Do(func() { close(m.drained) })
	}
}

// Close refuses new requests (they get ErrClosed, or with a
// MiddlewareSlot, the slot's current middleware), waits until the requests
// in flight have finished on their pinned instances or ctx is done, and
// releases the pool once the last of them ends: when ctx ends first,
// Close returns its error and the release happens in the background as
// the remaining requests (long streams, say) finish. Safe to call twice.
func (m *Middleware) Close(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	if m.inflight.Add(closedBit) == closedBit {
		m.drainOnce.Do(func() { close(m.drained) })
	}
	select {
	case <-m.drained:
		return m.p.Close(ctx)
	case <-ctx.Done():
		go func() {
			<-m.drained
			m.p.Close(context.Background())
		}()
		return fmt.Errorf("middleware %q: closing with requests in flight: %w", m.name, ctx.Err())
	}
}

// HandlerOptions configure how a middleware wraps a handler.
type HandlerOptions struct {
	// Streaming reports whether a request is a stream (WebSocket, SSE, an
	// MCP stream): its bodies are never buffered (the guest's
	// buffer_request and buffer_response are declined) and the
	// ResponseWriter keeps the Flusher and Hijacker of the one it wraps.
	// Nil means StreamingRequest.
	Streaming func(*http.Request) bool
	// OnError answers a request the middleware failed (trap, timeout, ABI
	// misuse, body over the limit, no free instance, closed); err is a
	// *MiddlewareError. When err's Committed is true the response had
	// already started, and w discards what is written. Nil answers
	// 502 with a short text naming the middleware.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// MiddlewareError is one request a middleware failed.
type MiddlewareError struct {
	Middleware string
	Phase      string // "request" or "response"
	// Committed is true when the response had already started (a streamed
	// or unbuffered response, or a hijacked connection): nobody can answer
	// the client any more.
	Committed bool
	Err       error // a *CallError: ErrTrap, ErrTimeout, ErrABI, ErrBodyLimit, ErrBusy, ErrClosed
}

func (e *MiddlewareError) Error() string {
	return fmt.Sprintf("middleware %q, %s phase: %v", e.Middleware, e.Phase, e.Err)
}

func (e *MiddlewareError) Unwrap() error { return e.Err }

// StreamingRequest reports whether r opens a stream: a protocol upgrade
// (WebSocket) or a client accepting text/event-stream (SSE, MCP's
// streamable HTTP).
func StreamingRequest(r *http.Request) bool {
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

// Handler returns next wrapped in the middleware: handle_request, then
// next unless the guest answered the request itself, then handle_response,
// on one pooled instance pinned to the request. Failures go to
// o.OnError; nothing panics (a panic in next is passed on after
// handle_response has seen it as is_error=1).
func (m *Middleware) Handler(next http.Handler, o HandlerOptions) http.Handler {
	return &mwHandler{m: m, next: next, o: o}
}

// mwHandler serves through a fixed middleware, or through a slot's
// current one when s is set.
type mwHandler struct {
	m    *Middleware
	s    *MiddlewareSlot
	next http.Handler
	o    HandlerOptions
}

func (h *mwHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for {
		m := h.m
		if h.s != nil {
			if m = h.s.cur.Load(); m == nil { // disabled
				h.next.ServeHTTP(w, r)
				return
			}
		}
		if m.retain() {
			m.serveRetained(w, r, h.next, &h.o)
			return
		}
		if h.s == nil || h.s.cur.Load() == m { // closed, and not swapped out
			m.fail(&h.o, w, r, "request", false, &CallError{Plugin: m.name, Kind: ErrClosed, Msg: "closed"})
			return
		}
	}
}

// MiddlewareSlot holds the current version of a middleware for live
// reload, disable and enable: Swap in the new one (nil disables: requests
// go straight to next), then Close the old one. A request always runs on
// a middleware it could retain, so a swap drops none: one that loaded the
// old version after its Close began retries with the new.
type MiddlewareSlot struct {
	cur atomic.Pointer[Middleware]
}

// Load returns the current middleware, or nil.
func (s *MiddlewareSlot) Load() *Middleware { return s.cur.Load() }

// Swap installs m (nil disables) and returns the previous one for the
// caller to Close.
func (s *MiddlewareSlot) Swap(m *Middleware) *Middleware { return s.cur.Swap(m) }

// Handler is Middleware.Handler through the slot's current middleware.
func (s *MiddlewareSlot) Handler(next http.Handler, o HandlerOptions) http.Handler {
	return &mwHandler{s: s, next: next, o: o}
}

// serveRetained serves a request counted in by retain. (Its own function:
// a defer inside ServeHTTP's loop would be heap-allocated.)
func (m *Middleware) serveRetained(w http.ResponseWriter, r *http.Request, next http.Handler, o *HandlerOptions) {
	defer m.release()
	m.serve(w, r, next, o)
}

// serve runs one request through the middleware.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler, o *HandlerOptions) {
	var streaming bool
	if o.Streaming != nil {
		streaming = o.Streaming(r)
	} else {
		streaming = StreamingRequest(r)
	}
	inst, err := m.p.acquire(r.Context())
	if err != nil {
		m.p.errors.Add(1)
		m.fail(o, w, r, "request", false, err)
		return
	}
	g := m.guest(inst)
	st := m.newState(w, r, streaming)
	m.p.calls.Add(1)
	healthy := true
	defer func() {
		m.p.latency.record(st.guestTime)
		m.p.release(inst, healthy)
		putState(st)
	}()

	if err := m.invoke(st, g, g.req, g.stack[:1], "request"); err != nil {
		healthy = false
		m.p.errors.Add(1)
		m.fail(o, w, r, "request", false, err)
		return
	}
	ctxNext := g.stack[0]
	if uint32(ctxNext) == 0 { // the guest answered
		st.writeGuestResponse()
		return
	}

	buffered := st.features.IsEnabled(handlerapi.FeatureBufferResponse)
	st.toNext(buffered)
	var nw http.ResponseWriter = &st.pw
	if buffered {
		nw = &st.bw
	}
	pv, panicked := callNext(next, nw, r)
	r.Body = st.origBody
	st.afterNext = true
	if st.overflow {
		m.p.errors.Add(1)
		m.fail(o, w, r, "response", false, &CallError{Plugin: m.name, Kind: ErrBodyLimit,
			Msg: fmt.Sprintf("response body over the limit of %d bytes", m.opts.MaxBodyBytes)})
		if panicked {
			panic(pv)
		}
		return
	}
	g.stack[0], g.stack[1] = ctxNext>>32, 0
	if panicked {
		g.stack[1] = 1
	}
	if err := m.invoke(st, g, g.resp, g.stack[:2], "response"); err != nil {
		healthy = false
		m.p.errors.Add(1)
		if !panicked {
			m.fail(o, w, r, "response", !buffered && st.committed, err)
		}
		if panicked {
			panic(pv)
		}
		return
	}
	if panicked {
		panic(pv)
	}
	if buffered {
		st.flushBuffered()
	}
}

// callNext runs next, catching a panic to show handle_response.
func callNext(next http.Handler, w http.ResponseWriter, r *http.Request) (pv any, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			pv, panicked = v, true
		}
	}()
	next.ServeHTTP(w, r)
	return nil, false
}

// invoke calls one phase under its deadline and reports what went wrong.
func (m *Middleware) invoke(st *reqState, g *mwGuest, fn api.Function, stack []uint64, phase string) error {
	began := time.Now()
	if m.deadline {
		g.arm(m.opts.CallTimeout)
	}
	err := fn.CallWithStack(st, stack)
	expired := m.deadline && g.disarm()
	st.guestTime += time.Since(began)
	switch {
	case expired:
		return &CallError{Plugin: m.name, Kind: ErrTimeout, Msg: fmt.Sprintf("%s phase: no answer within %s", phase, m.opts.CallTimeout)}
	case err == nil:
		return nil
	case st.err != nil:
		return st.err
	}
	if cerr := m.p.classify(st.r.Context(), err); cerr != nil {
		return cerr
	}
	return &CallError{Plugin: m.name, Kind: ErrTrap, Msg: err.Error()}
}

// fail answers a failed request through OnError.
func (m *Middleware) fail(o *HandlerOptions, w http.ResponseWriter, r *http.Request, phase string, committed bool, err error) {
	me := &MiddlewareError{Middleware: m.name, Phase: phase, Committed: committed, Err: err}
	if committed {
		w = &discardWriter{h: http.Header{}}
	} else {
		scrubEntityHeaders(w.Header())
	}
	if o.OnError != nil {
		o.OnError(w, r, me)
		return
	}
	if m.opts.Logger != nil {
		m.opts.Logger.LogAttrs(r.Context(), slog.LevelWarn, "middleware failed", slog.String("middleware", m.name), slog.String("error", me.Error()))
	}
	if !committed {
		http.Error(w, fmt.Sprintf("plugin_error: middleware %q failed", m.name), http.StatusBadGateway)
	}
}

// scrubEntityHeaders drops what described a body that will not be sent,
// before an error answer replaces it.
func scrubEntityHeaders(h http.Header) {
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding", "Etag", "Last-Modified", "Trailer"} {
		delete(h, k)
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k)
		}
	}
}

// mwGuest is a middleware's state on one instance: its exports and the
// phase deadline. The deadline closes the module from a timer reused
// across phases (no context, timer or goroutine of our own per call); the
// deadline word tells a late timer from the current phase's.
type mwGuest struct {
	mod       api.Module
	req, resp api.Function
	timer     *time.Timer
	deadline  atomic.Int64 // monotonic ns when the running phase expires; 0 idle; -1 expired
	last      int64
	stack     [2]uint64
}

var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

func (m *Middleware) guest(inst *instance) *mwGuest {
	if inst.mw == nil {
		inst.mw = &mwGuest{mod: inst.mod, req: inst.mod.ExportedFunction(handlerapi.FuncHandleRequest),
			resp: inst.mod.ExportedFunction(handlerapi.FuncHandleResponse)}
	}
	return inst.mw
}

func (g *mwGuest) arm(d time.Duration) {
	dl := monotonic() + int64(d)
	if dl <= g.last {
		dl = g.last + 1
	}
	g.last = dl
	g.deadline.Store(dl)
	if g.timer == nil {
		g.timer = time.AfterFunc(d, g.expire)
	} else {
		g.timer.Reset(d)
	}
}

func (g *mwGuest) expire() {
	dl := g.deadline.Load()
	if dl <= 0 || monotonic() < dl { // idle, or a late fire during a later phase
		return
	}
	if g.deadline.CompareAndSwap(dl, -1) {
		_ = g.mod.CloseWithExitCode(context.Background(), sys.ExitCodeDeadlineExceeded)
	}
}

// disarm ends a phase's deadline and reports whether it had expired (the
// module is then closed).
func (g *mwGuest) disarm() bool {
	dl := g.deadline.Load()
	if dl < 0 || !g.deadline.CompareAndSwap(dl, 0) {
		return true
	}
	g.timer.Stop()
	return false
}

type stateKey struct{}

// reqState is one request's run through a middleware. It is the context
// of the guest's calls (so host functions find it with a type assertion),
// carries the portico module's call state, and is pooled.
type reqState struct {
	parent    context.Context
	m         *Middleware
	w         http.ResponseWriter
	r         *http.Request
	features  handlerapi.Features
	streaming bool
	afterNext bool
	err       error // what a host function found wrong, for the call's error
	guestTime time.Duration

	// request body
	origBody    io.ReadCloser
	reqBuf      []byte
	reqPos      int
	reqBuffered bool // reqBuf holds the client's body (buffer_request)
	reqWritten  bool // reqBuf holds the guest's body

	// response: the guest's own before next, next's when buffered
	status        int
	respBody      []byte
	respPos       int
	respWriting   bool // the guest is writing respBody
	respRewritten bool // the guest replaced next's body
	nextStatus    bool // next set the status of a buffered response
	overflow      bool
	committed     bool // bytes went to the client

	names []string
	call  call
	pw    passWriter
	bw    bufWriter
}

var statePool = sync.Pool{New: func() any {
	st := &reqState{}
	st.pw.st, st.bw.st = st, st
	return st
}}

func (m *Middleware) newState(w http.ResponseWriter, r *http.Request, streaming bool) *reqState {
	st := statePool.Get().(*reqState)
	st.parent, st.m, st.w, st.r, st.streaming = r.Context(), m, w, r, streaming
	st.features = handlerapi.Features(m.features.Load())
	if streaming {
		st.features &^= handlerapi.FeatureBufferRequest | handlerapi.FeatureBufferResponse
	}
	st.call.p = m.p
	return st
}

const keepBuffer = 64 << 10

func putState(st *reqState) {
	resp, req, names := st.respBody[:0], st.reqBuf[:0], st.names[:0]
	if cap(resp) > keepBuffer {
		resp = nil
	}
	if cap(req) > keepBuffer {
		req = nil
	}
	clear(names[:cap(names)])
	*st = reqState{respBody: resp, reqBuf: req, names: names}
	st.pw.st, st.bw.st = st, st
	statePool.Put(st)
}

// Deadline, Done, Err and Value make a reqState the guest call's context:
// the request's values, no cancellation (the phase deadline is the
// guest's timer).
func (st *reqState) Deadline() (time.Time, bool) { return time.Time{}, false }
func (st *reqState) Done() <-chan struct{}       { return nil }
func (st *reqState) Err() error                  { return nil }
func (st *reqState) Value(key any) any {
	switch key.(type) {
	case stateKey:
		return st
	case callKey:
		return &st.call
	}
	return st.parent.Value(key)
}

// writeGuestResponse sends the response held for the client: the one the
// guest made in handle_request, or a buffered one.
func (st *reqState) writeGuestResponse() {
	code := st.status
	if code == 0 {
		code = http.StatusOK
	}
	st.w.WriteHeader(code)
	if len(st.respBody) > 0 {
		st.w.Write(st.respBody) //nolint:errcheck // the client may be gone
	}
}

// toNext prepares the request for next: the guest's or the buffered
// body. A status or body the guest set before passing the request on is
// kept, as with the reference host: sent now when the response is not
// buffered, or held for next to add to when it is.
func (st *reqState) toNext(buffered bool) {
	r := st.r
	st.origBody = r.Body
	if st.reqWritten || st.reqBuffered {
		body := st.reqBuf
		st.reqBuf = nil // handed to next: not reused by the pool
		r.Body = io.NopCloser(bytes.NewReader(body))
		if st.reqWritten {
			r.ContentLength, r.TransferEncoding = int64(len(body)), nil
			if r.Header.Get("Content-Length") != "" {
				r.Header.Set("Content-Length", strconv.Itoa(len(body)))
			}
		}
	}
	if !buffered {
		if st.status != 0 {
			st.pw.WriteHeader(st.status)
		}
		if len(st.respBody) > 0 {
			st.pw.Write(st.respBody) //nolint:errcheck // the client may be gone
			st.respBody = st.respBody[:0]
		}
	}
	st.respPos, st.respWriting = 0, false
}

// flushBuffered sends a buffered response after handle_response, with
// the length of a body the guest rewrote.
func (st *reqState) flushBuffered() {
	if st.respRewritten {
		st.w.Header().Set("Content-Length", strconv.Itoa(len(st.respBody)))
	}
	st.writeGuestResponse()
}

// passWriter is what next writes to when the response is not buffered:
// the client's writer, noting the status for get_status_code and keeping
// Flusher, Hijacker and Unwrap (http.NewResponseController works through
// it).
type passWriter struct{ st *reqState }

func (p *passWriter) Header() http.Header { return p.st.w.Header() }

func (p *passWriter) WriteHeader(code int) {
	if p.st.status == 0 && code >= 200 {
		p.st.status = code
	}
	p.st.committed = true
	p.st.w.WriteHeader(code)
}

func (p *passWriter) Write(b []byte) (int, error) {
	if p.st.status == 0 {
		p.st.status = http.StatusOK
	}
	p.st.committed = true
	return p.st.w.Write(b)
}

func (p *passWriter) FlushError() error {
	p.st.committed = true
	return http.NewResponseController(p.st.w).Flush()
}

func (p *passWriter) Flush() { _ = p.FlushError() }

func (p *passWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	p.st.committed = true
	return http.NewResponseController(p.st.w).Hijack()
}

func (p *passWriter) Unwrap() http.ResponseWriter { return p.st.w }

// bufWriter is what next writes to when the guest buffers the response:
// status and body are held (up to MaxBodyBytes) for handle_response;
// headers go to the client's header map. Flush is a no-op and Hijack
// fails: a stream must be marked Streaming.
type bufWriter struct{ st *reqState }

func (b *bufWriter) Header() http.Header { return b.st.w.Header() }

func (b *bufWriter) WriteHeader(code int) {
	if !b.st.nextStatus && code >= 200 { // next's first status wins over the guest's
		b.st.status, b.st.nextStatus = code, true
	}
}

func (b *bufWriter) Write(p []byte) (int, error) {
	st := b.st
	if !st.nextStatus {
		st.nextStatus = true
		if st.status == 0 {
			st.status = http.StatusOK
		}
	}
	if st.overflow || len(st.respBody)+len(p) > st.m.opts.MaxBodyBytes {
		st.overflow = true
		return 0, fmt.Errorf("middleware %q: %w (%d bytes)", st.m.name, ErrBodyLimit, st.m.opts.MaxBodyBytes)
	}
	st.respBody = append(st.respBody, p...)
	return len(p), nil
}

func (b *bufWriter) FlushError() error { return nil }
func (b *bufWriter) Flush()            {}

func (b *bufWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, fmt.Errorf("middleware %q buffers this response: %w; mark the route as streaming", b.st.m.name, http.ErrNotSupported)
}

func (b *bufWriter) Unwrap() http.ResponseWriter { return b.st.w }

// discardWriter is the writer OnError gets once the response has started.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// logEnabled answers the guest's log_enabled (an http-wasm level).
func (m *Middleware) logEnabled(ctx context.Context, level int32) bool {
	l, ok := httpWasmLevel(level)
	switch {
	case !ok:
		return false
	case m.opts.Logger != nil:
		return m.opts.Logger.Enabled(ctx, l)
	case m.opts.Host != nil:
		return l >= slog.LevelInfo
	}
	return false
}

// guestLog sends an http_handler log call on.
func (m *Middleware) guestLog(ctx context.Context, level int32, msg string) {
	l, _ := httpWasmLevel(level)
	if m.opts.Logger != nil {
		m.opts.Logger.LogAttrs(ctx, l, msg, slog.String("middleware", m.name))
		return
	}
	if m.opts.Host != nil {
		m.opts.Host.Log(ctx, level+1, msg) // portico's levels start at debug=0
	}
}

// inspectMiddleware finishes Inspect's report for an http-wasm module: it
// loads it as the gateway would and reports the first instance's memory.
func inspectMiddleware(ctx context.Context, r *Runtime, name string, wasm []byte, host Host, rep *Report) (*Report, error) {
	rep.ABI = "http-wasm"
	m, err := r.LoadMiddleware(ctx, wasm, MiddlewareOptions{Name: name, Host: host, PoolOptions: PoolOptions{MinInstances: 1, MaxInstances: 1}})
	if err != nil {
		rep.LoadError = err.Error()
		return rep, nil
	}
	defer m.Close(ctx)
	m.p.pool.Idle(func(inst *instance) { rep.MemoryUsed = uint64(inst.mod.Memory().Size()) })
	return rep, nil
}
