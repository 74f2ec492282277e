// Package httpwasm runs HTTP middleware written for the public http-wasm
// handler ABI (host module http_handler, guest exports handle_request and
// handle_response; http-wasm.io), the one Traefik and Dapr run, on
// hostapi's runtime: the same compilation cache, memory tiers and capped
// pool of instances as a Portico plugin, and the portico host module
// beside http_handler. One instance is pinned to a request for both of
// its phases. The net/http adapter (wrapping a handler, a slot for live
// reload) is hostapi/httpwasm/nethttp.
package httpwasm

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

	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/internal/engine"

	handlerapi "github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// ErrBodyLimit is a body or header, buffered or written by a middleware,
// over its limit. The request fails closed.
var ErrBodyLimit = errors.New("body exceeds the middleware's limit")

// Options configure one middleware. Zero values take the defaults shown.
type Options struct {
	Name string
	// GuestConfig is what the guest's get_config returns.
	GuestConfig []byte
	// Host backs the portico host module (log, config, kv, ...), which a
	// middleware may import beside http_handler; nil grants nothing and
	// sends the guest's portico log and stdout to Logger.
	Host   hostapi.Host
	Grants []string

	hostapi.PoolOptions // the same pool as a plugin's, with the same defaults
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

func (o *Options) defaults() {
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
// instances.
type Middleware struct {
	name     string
	opts     Options
	p        *hostapi.Plugin
	g        engine.Guest
	deadline bool
	features atomic.Uint32 // enabled by start functions; the base of every request's

	inflight  atomic.Int64 // requests inside Serve; closedBit once closed
	closed    atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
}

const closedBit = 1 << 62

// spec is the engine hostapi's runtime runs middleware with.
var spec = &engine.Spec{
	Kind: hostapi.KindMiddleware, ABI: "http-wasm", Export: handlerapi.FuncHandleRequest, Module: handlerapi.HostModule,
	Bind: func(ctx context.Context, rt wazero.Runtime) error {
		return engine.Bind(ctx, rt, handlerapi.HostModule, httpHandlerFunctions)
	},
	CheckExports: checkExports,
	CheckImport:  checkImport,
	Instance: func(mod api.Module) any {
		return &mwGuest{mod: mod, req: mod.ExportedFunction(handlerapi.FuncHandleRequest),
			resp: mod.ExportedFunction(handlerapi.FuncHandleResponse)}
	},
	Start: func(ctx context.Context, owner any) context.Context {
		return context.WithValue(ctx, startKey{}, owner)
	},
}

func init() {
	spec.Inspect = inspect // set here: inspect loads with spec
	engine.Register(spec)
}

// Load compiles an http-wasm guest in r, checks its exports, imports and
// memory with a precise error for each problem, starts one instance
// (running _initialize, else _start, so a start that traps fails here),
// and warms the pool.
func Load(ctx context.Context, r *hostapi.Runtime, wasm []byte, o Options) (*Middleware, error) {
	o.defaults()
	m := &Middleware{name: o.Name, opts: o, deadline: o.CallTimeout > 0, drained: make(chan struct{})}
	host := o.Host
	if host == nil {
		// The portico module of a middleware loaded without a Host: logs
		// go to Logger, every capability is refused.
		host = hostapi.DenyAll{Logger: o.Logger, Attrs: []slog.Attr{slog.String("middleware", o.Name)}}
	}
	popts := hostapi.Options{
		Name: o.Name, Host: host, Grants: o.Grants, MemoryLimitBytes: o.MemoryBytes,
		CallTimeout: max(o.CallTimeout, 0), StartTimeout: o.StartTimeout, PoolOptions: o.PoolOptions,
	}
	p, g, err := r.LoadEngine(ctx, wasm, popts, engine.Load{Spec: spec, Owner: m, Trusted: o.CallTimeout < 0})
	if err != nil {
		return nil, err
	}
	m.p, m.g = p, g
	return m, nil
}

// checkExports validates a module's exports against the http-wasm
// handler ABI before anything runs.
func checkExports(name string, c wazero.CompiledModule) error {
	exp := c.ExportedFunctions()
	sig := func(fn string, params, results []api.ValueType) error {
		d, ok := exp[fn]
		if !ok {
			return fmt.Errorf("middleware %q: %w: missing export %s; is this an http-wasm handler (http-wasm.io)?", name, hostapi.ErrABI, fn)
		}
		if !slices.Equal(d.ParamTypes(), params) || !slices.Equal(d.ResultTypes(), results) {
			return fmt.Errorf("middleware %q: %w: export %s has signature %s, want %s", name, hostapi.ErrABI, fn, engine.FuncSignature(d), engine.Signature(params, results))
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
		return fmt.Errorf("middleware %q: %w: the module does not export its memory as \"memory\"", name, hostapi.ErrABI)
	}
	return nil
}

// checkImport validates an import from any module but portico and WASI.
func checkImport(name string, imp api.FunctionDefinition) error {
	mod, fn, _ := imp.Import()
	if mod != handlerapi.HostModule {
		return fmt.Errorf("middleware %q: %w: imports %s.%s; this host provides only %s, %s and %s", name, hostapi.ErrABI, mod, fn,
			handlerapi.HostModule, hostapi.HostModule, wasi_snapshot_preview1.ModuleName)
	}
	params, results, ok := engine.SignatureIn(httpHandlerFunctions, fn)
	if !ok {
		return fmt.Errorf("middleware %q: %w: imports %s.%s, which the http-wasm handler ABI does not define", name, hostapi.ErrABI, mod, fn)
	}
	if !slices.Equal(imp.ParamTypes(), params) || !slices.Equal(imp.ResultTypes(), results) {
		return fmt.Errorf("middleware %q: %w: import %s.%s has signature %s, want %s", name, hostapi.ErrABI, mod, fn, engine.FuncSignature(imp), engine.Signature(params, results))
	}
	return nil
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
func (m *Middleware) Stats() hostapi.Stats { return m.p.Stats() }

// Live returns the number of instances alive (idle and in use).
func (m *Middleware) Live() int64 { return m.p.Live() }

// done counts a request out of Serve.
func (m *Middleware) done() {
	if m.inflight.Add(-1) == closedBit {
		m.drainOnce.Do(func() { close(m.drained) })
	}
}

// Close refuses new requests (Serve returns false: nethttp's handlers
// answer ErrClosed, or serve through their slot's current middleware), waits until the requests
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

// ErrorHandler answers a request a middleware failed (trap, timeout, ABI
// misuse, body over the limit, no free instance, closed); err is an
// *Error. When err's Committed is true the response had already started,
// and w discards what is written.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// Error is one request a middleware failed.
type Error struct {
	Middleware string
	Phase      string // "request" or "response"
	// Committed is true when the response had already started (a streamed
	// or unbuffered response, or a hijacked connection): nobody can answer
	// the client any more.
	Committed bool
	Err       error // a *hostapi.CallError: ErrTrap, ErrTimeout, ErrABI, ErrBodyLimit, ErrBusy, ErrClosed
}

func (e *Error) Error() string {
	return fmt.Sprintf("middleware %q, %s phase: %v", e.Middleware, e.Phase, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Serve runs one request through the middleware: handle_request, then
// next unless the guest answered the request itself, then
// handle_response, on one pooled instance pinned to the request. A
// streaming request's bodies are never buffered (the guest's
// buffer_request and buffer_response are declined) and the writer next
// gets keeps the Flusher and Hijacker of w. Failures go to onError (nil
// answers 502 with a short text naming the middleware); nothing panics
// (a panic in next is passed on after handle_response has seen it as
// is_error=1). Serve returns false, having written nothing, once the
// middleware is closed (Close).
func (m *Middleware) Serve(w http.ResponseWriter, r *http.Request, next http.Handler, streaming bool, onError ErrorHandler) bool {
	if m.inflight.Add(1)&closedBit != 0 {
		m.done()
		return false
	}
	defer m.done()
	m.serve(w, r, next, streaming, onError)
	return true
}

// Refuse answers r as a closed middleware does, through onError.
func (m *Middleware) Refuse(w http.ResponseWriter, r *http.Request, onError ErrorHandler) {
	m.fail(onError, w, r, "request", false, &hostapi.CallError{Plugin: m.name, Kind: hostapi.ErrClosed, Msg: "closed"})
}

// serve runs one request counted in by Serve.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler, streaming bool, onError ErrorHandler) {
	inst, err := m.g.Acquire(r.Context())
	if err != nil {
		m.g.Release(nil, false, true, 0)
		m.fail(onError, w, r, "request", false, err)
		return
	}
	g := inst.State().(*mwGuest)
	st := m.newState(w, r, inst, streaming)
	healthy, failed := true, false
	defer func() {
		m.g.Release(inst, healthy, failed, st.guestTime)
		putState(st)
	}()

	if err := m.invoke(st, g, g.req, g.stack[:1], "request"); err != nil {
		healthy, failed = false, true
		m.fail(onError, w, r, "request", false, err)
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
		failed = true
		m.fail(onError, w, r, "response", false, &hostapi.CallError{Plugin: m.name, Kind: ErrBodyLimit,
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
		healthy, failed = false, true
		if !panicked {
			m.fail(onError, w, r, "response", !buffered && st.committed, err)
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
		return &hostapi.CallError{Plugin: m.name, Kind: hostapi.ErrTimeout, Msg: fmt.Sprintf("%s phase: no answer within %s", phase, m.opts.CallTimeout)}
	case err == nil:
		return nil
	case st.err != nil:
		return st.err
	}
	if cerr := m.g.Classify(st.r.Context(), err); cerr != nil {
		return cerr
	}
	return &hostapi.CallError{Plugin: m.name, Kind: hostapi.ErrTrap, Msg: err.Error()}
}

// fail answers a failed request through OnError.
func (m *Middleware) fail(onError ErrorHandler, w http.ResponseWriter, r *http.Request, phase string, committed bool, err error) {
	me := &Error{Middleware: m.name, Phase: phase, Committed: committed, Err: err}
	if committed {
		w = &discardWriter{h: http.Header{}}
	} else {
		scrubEntityHeaders(w.Header())
	}
	if onError != nil {
		onError(w, r, me)
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
	inst  engine.Instance
	pw    passWriter
	bw    bufWriter
}

var statePool = sync.Pool{New: func() any {
	st := &reqState{}
	st.pw.st, st.bw.st = st, st
	return st
}}

func (m *Middleware) newState(w http.ResponseWriter, r *http.Request, inst engine.Instance, streaming bool) *reqState {
	st := statePool.Get().(*reqState)
	st.parent, st.m, st.inst, st.w, st.r, st.streaming = r.Context(), m, inst, w, r, streaming
	st.features = handlerapi.Features(m.features.Load())
	if streaming {
		st.features &^= handlerapi.FeatureBufferRequest | handlerapi.FeatureBufferResponse
	}
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
	}
	if v := st.inst.Value(key); v != nil { // the portico module's call state
		return v
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

// inspect is the engine's Inspect: it loads the module as the gateway
// would and reports the first instance's memory.
func inspect(ctx context.Context, rt any, name string, wasm []byte, host any) (uint64, error) {
	h, _ := host.(hostapi.Host)
	m, err := Load(ctx, rt.(*hostapi.Runtime), wasm, Options{Name: name, Host: h, PoolOptions: hostapi.PoolOptions{MinInstances: 1, MaxInstances: 1}})
	if err != nil {
		return 0, err
	}
	defer m.Close(ctx)
	var mem uint64
	m.g.Idle(func(mod api.Module) { mem = uint64(mod.Memory().Size()) })
	return mem, nil
}
