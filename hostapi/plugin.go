package hostapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/hostapi/internal/engine"
	"github.com/porticohq/portico/hostapi/internal/pool"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Options configure one plugin. Zero limits take the defaults shown.
type Options struct {
	Name             string
	Host             Host
	Grants           []string      // capabilities granted by the operator
	MemoryLimitBytes uint64        // per instance; default 64 MiB
	CallTimeout      time.Duration // default 5s
	StartTimeout     time.Duration // for a new instance's start function; default 10s
	MaxInputBytes    int           // default 1 MiB
	MaxOutputBytes   int           // default 1 MiB
	PoolOptions
	MaxHTTPRequests int      // outbound requests per call; default 10
	Kinds           []string // what the module provides (KindSkill, KindHook); default skill

	noDeadline bool // runs in a runtime without close-on-context-done (trusted middleware)
}

func (o *Options) defaults() {
	if o.MemoryLimitBytes == 0 {
		o.MemoryLimitBytes = 64 << 20
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 5 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.MaxInputBytes == 0 {
		o.MaxInputBytes = 1 << 20
	}
	if o.MaxOutputBytes == 0 {
		o.MaxOutputBytes = 1 << 20
	}
	o.PoolOptions.defaults()
}

// PoolOptions size a module's pool of instances. Both engines take them
// (Options for the Portico ABI, MiddlewareOptions for http-wasm), with
// the same defaults.
type PoolOptions struct {
	// MinInstances are kept warm; default 1. A negative value keeps none:
	// one instance still starts at load to check the module, and once the
	// pool is empty (IdleRelease) its compiled code is let go too, compiled
	// again from the cache on the next call.
	MinInstances     int
	MaxInstances     int           // the pool's cap; default 4
	AcquireTimeout   time.Duration // wait for a free instance, then ErrBusy; default 1s
	FailureThreshold int           // consecutive traps or timeouts before the plugin is failed; default 5
	// IdleRelease lets instances above MinInstances go once they have been
	// idle this long (Plugin.Trim); 0 keeps them.
	IdleRelease time.Duration
	// OnFailed is called once, when the breaker trips.
	OnFailed func(err error)
	// Source reads the module's bytes again. With it, a plugin that keeps
	// no instance does not keep its bytes either: waking it reads them
	// and checks they are the ones loaded (the same sha256), else the call
	// fails until the plugin is loaded again. Without it the bytes are
	// kept.
	Source func() ([]byte, error)
}

// defaults fills in zero values; it may run more than once.
func (o *PoolOptions) defaults() {
	po := o.pool()
	po.Defaults()
	o.MaxInstances, o.AcquireTimeout, o.FailureThreshold = po.MaxInstances, po.AcquireTimeout, po.FailureThreshold
	if o.MinInstances >= 0 {
		o.MinInstances = po.MinInstances
	}
}

// keep is how many instances Trim keeps.
func (o PoolOptions) keep() int { return max(o.MinInstances, 0) }

func (o PoolOptions) pool() pool.Options {
	return pool.Options{MinInstances: o.MinInstances, MaxInstances: o.MaxInstances, AcquireTimeout: o.AcquireTimeout,
		FailureThreshold: o.FailureThreshold, OnFailed: o.OnFailed}
}

// Plugin is one loaded module with its pool of instances.
type Plugin struct {
	opts     Options
	compiled wazero.CompiledModule
	rt       wazero.Runtime
	unshare  func() // gives back the shared compiled module (see compileGuard)
	start    string
	out      *logWriter
	grants   map[string]bool
	ext      []HostFunc // the runtime's extension host functions

	pool *pool.Pool[*instance]

	// The compiled module is let go while the pool is empty and the plugin
	// keeps no instance (MinInstances < 0), and compiled again on demand.
	codeMu sync.Mutex
	wasm   []byte   // kept to compile again; nil when the code stays or Source reads them
	sum    [32]byte // the module's sha256
	tier   *compileGuard
	code   int64 // executable bytes of the compiled module (0 while let go, or where unknown)

	calls    atomic.Uint64
	starts   atomic.Uint64 // instances started
	compiles atomic.Uint64 // compiles after the first (the code was let go)
	errors   atomic.Uint64
	latency  latency

	load *engine.Load // set when the module is another engine's (LoadEngine)
}

type instance struct {
	mod   api.Module
	skill api.Function // nil unless the plugin provides skills
	hook  api.Function // nil unless it provides hooks
	// channel is nil unless it is a channel
	channel api.Function
	stack   [1]uint64
	eng     any  // an engine's state for the instance (engine.Spec.Instance)
	call    call // an engine's call state, while the instance is acquired
}

// Load compiles wasm, checks it against ABI v1 with a precise error for
// each problem, instantiates one instance to fail fast, and warms the pool.
func (r *Runtime) Load(ctx context.Context, wasm []byte, opts Options) (*Plugin, error) {
	opts.defaults()
	p, err := r.compile(ctx, wasm, opts)
	if err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		p.unshare()
		return nil, err
	}
	if err := p.warm(p.checkVersion); err != nil {
		return nil, err
	}
	p.settle()
	return p, nil
}

// compile checks the module header and compiles wasm in the runtime of
// its memory tier into a plugin with an empty pool.
func (r *Runtime) compile(ctx context.Context, wasm []byte, opts Options) (*Plugin, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("plugin %q: %w (no \\0asm header)", opts.Name, ErrNotWasm)
	}
	pages := uint32((opts.MemoryLimitBytes + 65535) / 65536)
	rt, err := r.tier(ctx, tierKey{pages: pages, trusted: opts.noDeadline})
	if err != nil {
		return nil, err
	}
	guard := r.guard(tierKey{pages: pages, trusted: opts.noDeadline})
	compiled, code, release, err := guard.compileSized(ctx, rt, wasm)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w: %v", opts.Name, ErrNotWasm, err)
	}
	p := &Plugin{
		opts: opts, compiled: compiled, unshare: release, rt: rt, out: &logWriter{host: opts.Host},
		grants: map[string]bool{}, ext: r.ext, // fixed now that a tier exists
		tier: guard, code: code, sum: sha256.Sum256(wasm),
	}
	if opts.MinInstances < 0 && opts.Source == nil {
		p.wasm = wasm
	}
	p.pool = pool.New(opts.PoolOptions.pool(), pool.Funcs[*instance]{
		Start: p.instantiate,
		Stop:  func(inst *instance) { inst.mod.Close(context.Background()) },
		Free:  p.freeCode, // gives back the shared compiled module
		Empty: p.sleep,
	})
	for _, g := range opts.Grants {
		p.grants[g] = true
	}
	return p, nil
}

// warm starts the warm minimum (pool.Warm): the first instance checked
// with first. On failure the plugin is closed.
func (p *Plugin) warm(first func(*instance) error) error { return p.pool.Warm(first) }

// check validates exports, imports and the start function before anything
// runs.
func (p *Plugin) check() error {
	name := p.opts.Name
	exp := p.compiled.ExportedFunctions()
	sig := func(fn string, params, results []api.ValueType) error {
		d, ok := exp[fn]
		if !ok {
			return fmt.Errorf("plugin %q: %w: missing export %s; is this a Portico plugin built for ABI v%d?", name, ErrABI, fn, ABIMajor)
		}
		if !slices.Equal(d.ParamTypes(), params) || !slices.Equal(d.ResultTypes(), results) {
			return fmt.Errorf("plugin %q: %w: export %s has signature %v -> %v, want %v -> %v", name, ErrABI, fn, d.ParamTypes(), d.ResultTypes(), params, results)
		}
		return nil
	}
	if err := sig(ExportABIVersion, nil, []api.ValueType{i32}); err != nil {
		return err
	}
	kinds := p.opts.Kinds
	if len(kinds) == 0 {
		kinds = []string{KindSkill}
	}
	for _, k := range kinds {
		export, ok := kindExports[k]
		if !ok {
			return fmt.Errorf("plugin %q: %w: kind %q is not supported by this host", name, ErrABI, k)
		}
		if err := sig(export, []api.ValueType{i32}, []api.ValueType{i32}); err != nil {
			return err
		}
	}
	for _, imp := range p.compiled.ImportedFunctions() {
		if err := p.checkHostImport(imp); err != nil {
			return err
		}
	}
	return p.startRule()
}

// checkHostImport checks an import from the portico module against the
// host's functions, and one from an embedder's module against its host
// functions; WASI imports are the runtime's to resolve.
func (p *Plugin) checkHostImport(imp api.FunctionDefinition) error {
	mod, fn, _ := imp.Import()
	if mod != HostModule {
		return p.checkExtensionImport(imp)
	}
	params, results, ok := hostSignature(fn)
	if !ok {
		return fmt.Errorf("plugin %q: %w: imports %s.%s, which this host (ABI v%d.%d) does not provide", p.opts.Name, ErrABI, mod, fn, ABIMajor, ABIMinor)
	}
	if !slices.Equal(imp.ParamTypes(), params) || !slices.Equal(imp.ResultTypes(), results) {
		return fmt.Errorf("plugin %q: %w: import %s.%s has signature %v -> %v, want %v -> %v", p.opts.Name, ErrABI, mod, fn, imp.ParamTypes(), imp.ResultTypes(), params, results)
	}
	return nil
}

// startRule picks the start function: _initialize, else _start, and
// refuses a Go command-mode module.
func (p *Plugin) startRule() error {
	exp := p.compiled.ExportedFunctions()
	_, hasInit := exp["_initialize"]
	_, hasStart := exp["_start"]
	goBuilt := false
	for _, cs := range p.compiled.CustomSections() {
		if cs.Name() == "go:buildid" {
			goBuilt = true
		}
	}
	switch {
	case hasInit:
		p.start = "_initialize"
	case goBuilt && hasStart:
		return fmt.Errorf("plugin %q: %w: a Go command-mode module; rebuild with -buildmode=c-shared", p.opts.Name, ErrABI)
	case hasStart:
		p.start = "_start"
	}
	return nil
}

func (p *Plugin) checkVersion(inst *instance) error {
	f := inst.mod.ExportedFunction(ExportABIVersion)
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.CallTimeout)
	defer cancel()
	res, err := f.Call(ctx)
	if err != nil {
		return fmt.Errorf("plugin %q: %w: %s failed: %v", p.opts.Name, ErrABI, ExportABIVersion, err)
	}
	v := uint32(res[0])
	major, minor := int(v>>16), int(v&0xffff)
	switch {
	case major != ABIMajor:
		return fmt.Errorf("plugin %q: %w: built for ABI v%d.%d; this host speaks v%d.%d", p.opts.Name, ErrABI, major, minor, ABIMajor, ABIMinor)
	case minor > ABIMinor:
		return fmt.Errorf("plugin %q: %w: needs ABI v%d.%d; this host has v%d.%d: upgrade Portico", p.opts.Name, ErrABI, major, minor, ABIMajor, ABIMinor)
	}
	return nil
}

// instantiate starts a new instance (the pool's Start: it has counted the
// instance live already).
func (p *Plugin) instantiate() (*instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.StartTimeout)
	defer cancel()
	if p.load != nil && p.load.Spec.Start != nil {
		ctx = p.load.Spec.Start(ctx, p.load.Owner)
	}
	compiled, err := p.wake(ctx)
	if err != nil {
		return nil, err
	}
	p.starts.Add(1)
	mod, err := p.rt.InstantiateModule(ctx, compiled, moduleConfig(p.start, p.out))
	if err != nil {
		return nil, fmt.Errorf("plugin %q: start: %w: %v", p.opts.Name, ErrTrap, err)
	}
	if p.load != nil {
		return &instance{mod: mod, eng: p.load.Spec.Instance(mod)}, nil
	}
	return &instance{mod: mod, skill: mod.ExportedFunction(ExportSkill), hook: mod.ExportedFunction(ExportHook),
		channel: mod.ExportedFunction(ExportChannel)}, nil
}

// wake returns the compiled module, compiling it again (from the cache,
// fast) when it was let go.
func (p *Plugin) wake(ctx context.Context) (wazero.CompiledModule, error) {
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if p.compiled != nil {
		return p.compiled, nil
	}
	wasm := p.wasm
	if wasm == nil {
		b, err := p.opts.Source()
		if err != nil {
			return nil, fmt.Errorf("plugin %q: read its module again: %w: %v", p.opts.Name, ErrNotWasm, err)
		}
		if sha256.Sum256(b) != p.sum {
			return nil, fmt.Errorf("plugin %q: %w: its module changed since it was loaded; reload the plugin", p.opts.Name, ErrNotWasm)
		}
		wasm = b
	}
	cm, code, release, err := p.tier.compileSized(ctx, p.rt, wasm)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: compile again: %w: %v", p.opts.Name, ErrNotWasm, err)
	}
	p.compiled, p.unshare, p.code = cm, release, code
	p.compiles.Add(1)
	return cm, nil
}

// sleep lets the compiled module go when the pool emptied and the plugin
// keeps no instance: its executable memory is the largest part of a Go
// guest's footprint.
func (p *Plugin) sleep() {
	if p.opts.MinInstances >= 0 {
		return
	}
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if p.pool.Live() == 0 && p.compiled != nil {
		p.unshare()
		p.compiled, p.unshare, p.code = nil, nil, 0
	}
}

// settle lets a plugin that keeps no instance go dormant right after its
// load checked the module: it then holds neither instance nor code until
// its first call.
func (p *Plugin) settle() {
	if p.opts.MinInstances < 0 {
		p.pool.Trim(time.Now(), 0, 0)
	}
}

// freeCode gives back the compiled module once the plugin is closed and
// its last instance gone.
func (p *Plugin) freeCode() {
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if p.compiled != nil {
		p.unshare()
		p.compiled, p.unshare, p.code = nil, nil, 0
	}
}

// Trim lets instances idle for IdleRelease go, down to MinInstances (and,
// keeping none, the compiled code with the last), and returns how many
// went. The owner calls it now and then; under steady load nothing is
// idle that long, so nothing has to start again.
func (p *Plugin) Trim(now time.Time) int {
	if p.opts.IdleRelease <= 0 {
		return 0
	}
	return p.pool.Trim(now, p.opts.IdleRelease, p.opts.keep())
}

// acquire pins an instance to the caller (pool.Acquire). A nested call
// (through call_skill) into a plugin its own call chain already holds an
// instance of never waits: the instance it would wait for may be its own
// caller's, and chains that each hold one instance and wait for another
// would hold the whole pool until the timeout (A -> A, or A -> B -> A). It
// takes a free instance or fails at once with ErrDepth.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	held := heldBy(ctx, p)
	inst, err := p.pool.Acquire(ctx, held)
	switch {
	case err == nil:
		return inst, nil
	case errors.Is(err, pool.ErrHeld):
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrDepth, Cause: ErrRefused, Msg: fmt.Sprintf(
			"its call chain already holds %d of its %d instances and none is free; a nested call does not wait for an instance its own chain may hold (raise max_instances or call less deep)",
			held, p.opts.MaxInstances)}
	case errors.Is(err, ErrBusy):
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrBusy, Msg: fmt.Sprintf("all %d instances busy for %s", p.opts.MaxInstances, p.opts.AcquireTimeout)}
	case errors.Is(err, ErrClosed):
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrClosed, Msg: "closed"}
	}
	return nil, err
}

// release returns a healthy instance to the pool; anything else, or any
// instance of a closed plugin, is discarded.
func (p *Plugin) release(inst *instance, healthy bool) { p.pool.Release(inst, healthy) }

// granted reports whether the plugin holds a capability; a refusal is
// reported to the host for the audit trail.
func (p *Plugin) granted(ctx context.Context, cap string) bool {
	if p.grants[cap] {
		return true
	}
	p.opts.Host.Denied(ctx, cap)
	return false
}

// Call invokes the plugin's skill export with input (the ABI's call
// envelope) and returns what the guest wrote with output.
func (p *Plugin) Call(ctx context.Context, input []byte) ([]byte, error) {
	return p.call(ctx, ExportSkill, input, nil)
}

// Stream is Call with the reply handed to sink chunk by chunk, as the guest
// writes it; an error from sink ends the call's output (the guest's next
// output gets 1) and fails the call with that error.
func (p *Plugin) Stream(ctx context.Context, input []byte, sink func(chunk []byte) error) error {
	_, err := p.call(ctx, ExportSkill, input, sink)
	return err
}

// CallHook delivers one event (the envelope with the event type as the
// name and its JSON data as the payload) to the plugin's hook export.
func (p *Plugin) CallHook(ctx context.Context, input []byte) error {
	_, err := p.call(ctx, ExportHook, input, nil)
	return err
}

// CallChannel runs one operation of a channel plugin (the envelope names
// it: "webhook", "send" or "health") and returns its reply.
func (p *Plugin) CallChannel(ctx context.Context, input []byte) ([]byte, error) {
	return p.call(ctx, ExportChannel, input, nil)
}

func (p *Plugin) call(ctx context.Context, export string, input []byte, sink func([]byte) error) ([]byte, error) {
	if perr := p.pool.Failed(); perr != nil {
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrClosed, Msg: "failed: " + perr.Error()}
	}
	if len(input) > p.opts.MaxInputBytes {
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrBadInput, Msg: fmt.Sprintf("input of %d bytes is over the limit of %d", len(input), p.opts.MaxInputBytes)}
	}
	if p.pool.Closed() {
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrClosed, Msg: "closed"}
	}
	inst, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	fn := inst.skill
	switch export {
	case ExportHook:
		fn = inst.hook
	case ExportChannel:
		fn = inst.channel
	}
	if fn == nil {
		p.release(inst, true)
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrABI, Msg: "the module does not export " + export}
	}
	p.calls.Add(1)
	c := &call{p: p, input: input, sink: sink}
	c.parent, _ = ctx.Value(callKey{}).(*call)
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, c), p.opts.CallTimeout)
	inst.stack[0] = uint64(len(input))
	began := time.Now()
	err = fn.CallWithStack(cctx, inst.stack[:])
	p.latency.record(time.Since(began))
	cancel()
	if err != nil {
		p.release(inst, false) // a trapped or timed-out instance is never reused
		p.errors.Add(1)
		if c.abandoned {
			return nil, p.outputErr(c.err, "; the guest kept writing after output returned 1, so the call was ended")
		}
		cerr := p.classify(ctx, err)
		if errors.Is(cerr, ErrTrap) || errors.Is(cerr, ErrTimeout) {
			p.pool.Trip(cerr)
		}
		return nil, cerr
	}
	status := uint32(inst.stack[0]) // read before another caller gets the instance
	p.release(inst, true)
	p.pool.Ok()
	switch {
	case errors.Is(c.err, ErrOutputLimit):
		p.errors.Add(1)
		return nil, p.outputErr(c.err, "")
	case c.err != nil:
		return nil, c.err // the sink's own error
	case status == StatusOK:
		return c.out, nil
	case c.refusal != nil && (status == StatusBadInput || status == StatusError):
		// The guest failed after the host refused it something on the
		// caller's account: that refusal is the call's kind.
		kind := ErrGuest
		for _, k := range []error{ErrQuota, ErrDepth} {
			if errors.Is(c.refusal, k) {
				kind = k
			}
		}
		p.errors.Add(1)
		return nil, &CallError{Plugin: p.opts.Name, Kind: kind, Msg: c.failMsg, Cause: c.refusal}
	case status == StatusBadInput:
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrBadInput, Msg: c.failMsg}
	case status == StatusError:
		p.errors.Add(1)
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrGuest, Msg: c.failMsg}
	default:
		p.errors.Add(1)
		return nil, &CallError{Plugin: p.opts.Name, Kind: ErrABI, Msg: fmt.Sprintf("unknown status %d from %s", status, export)}
	}
}

// outputErr is the error of a call whose output was refused: the output
// limit, or the streaming sink's own error.
func (p *Plugin) outputErr(err error, more string) error {
	if errors.Is(err, ErrOutputLimit) {
		return &CallError{Plugin: p.opts.Name, Kind: ErrOutputLimit, Msg: fmt.Sprintf("limit %d bytes%s", p.opts.MaxOutputBytes, more)}
	}
	return err
}

func (p *Plugin) classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			if ctx.Err() == nil {
				return &CallError{Plugin: p.opts.Name, Kind: ErrTimeout, Msg: fmt.Sprintf("no answer within %s", p.opts.CallTimeout)}
			}
			return ctx.Err()
		case sys.ExitCodeContextCanceled:
			return ctx.Err()
		}
		return &CallError{Plugin: p.opts.Name, Kind: ErrTrap, Msg: fmt.Sprintf("exited with code %d", exit.ExitCode())}
	}
	msg := err.Error()
	if i := bytes.IndexByte([]byte(msg), '\n'); i > 0 {
		msg = msg[:i] // the first line; the wasm stack trace follows
	}
	return &CallError{Plugin: p.opts.Name, Kind: ErrTrap, Msg: msg}
}

// Stats is a plugin's counters.
type Stats struct {
	Instances      int64  `json:"instances"`
	Calls          uint64 `json:"calls"`
	Errors         uint64 `json:"errors"`
	Instantiations uint64 `json:"instantiations"` // instances started since load
	Memory         Memory `json:"-"`
	P50Micros      int64  `json:"p50_us"` // call time, to within a factor of two
	P99Micros      int64  `json:"p99_us"`
	Failed         string `json:"failed,omitempty"`
	// Latency is the histogram the quantiles come from, for metrics.
	Latency Histogram `json:"-"`
}

// Memory is what a plugin holds in memory.
type Memory struct {
	// CompiledBytes is the executable memory of its compiled module
	// (shared with plugins of the same bytes; 0 while let go, and where
	// the platform does not tell).
	CompiledBytes int64 `json:"compiled_bytes"`
	// Instances are alive, idle and in use.
	Instances int64 `json:"instances"`
	// LinearMemoryBytes is the linear memory of the idle instances.
	LinearMemoryBytes uint64 `json:"linear_memory_bytes"`
	// ModuleBytes is the size of the module's bytes kept to compile it
	// again (0 when the code is kept, or when PoolOptions.Source reads
	// them again).
	ModuleBytes int `json:"module_bytes_kept"`
}

// Memory reports what the plugin holds in memory now.
func (p *Plugin) Memory() Memory {
	p.codeMu.Lock()
	m := Memory{CompiledBytes: p.code, ModuleBytes: len(p.wasm)}
	p.codeMu.Unlock()
	m.Instances = p.pool.Live()
	p.pool.Idle(func(inst *instance) { m.LinearMemoryBytes += uint64(inst.mod.Memory().Size()) })
	return m
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats {
	s := Stats{Instances: p.pool.Live(), Calls: p.calls.Load(), Errors: p.errors.Load(),
		P50Micros: p.latency.quantile(0.5).Microseconds(), P99Micros: p.latency.quantile(0.99).Microseconds(),
		Latency: p.latency.snapshot()}
	if f := p.pool.Failed(); f != nil {
		s.Failed = f.Error()
	}
	s.Instantiations = p.starts.Load()
	s.Memory = p.Memory()
	return s
}

// Close stops new calls, closes idle instances now and in-flight ones as
// they finish, then frees the compiled module.
func (p *Plugin) Close(ctx context.Context) error {
	p.pool.Close()
	return nil
}

// Live returns the number of instances alive (idle and in use).
func (p *Plugin) Live() int64 { return p.pool.Live() }
