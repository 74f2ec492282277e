// Package engine is the seam between hostapi's runtime and the engines
// that run other guest ABIs on it (hostapi/httpwasm runs http-wasm
// middleware). An engine registers a Spec at init; the runtime binds its
// host module into every wazero runtime it makes, checks its modules'
// imports and exports through it, and pools its instances like a plugin's.
// Only packages under hostapi/ can name these types, so the seam is not
// part of the public API.
package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Spec describes an engine's modules to the runtime.
type Spec struct {
	Kind   string // the plugin kind it runs ("middleware")
	ABI    string // what Inspect reports as the module's ABI ("http-wasm")
	Export string // an export only its modules have (Inspect tells them apart by it)
	Module string // the name of its host module

	// Bind instantiates the host module in a new wazero runtime.
	Bind func(ctx context.Context, rt wazero.Runtime) error
	// CheckExports checks a compiled module's exports before anything runs.
	CheckExports func(name string, c wazero.CompiledModule) error
	// CheckImport checks one import from any module but portico and WASI
	// (the runtime checks those): its own host module's, or a refusal.
	CheckImport func(name string, imp api.FunctionDefinition) error
	// Instance makes the engine's state for a new instance (its exports,
	// say); Instance.State returns it.
	Instance func(mod api.Module) any
	// Start puts a load's owner in the context a new instance starts
	// under, so host functions called from a start function find it.
	Start func(ctx context.Context, owner any) context.Context
	// Inspect loads a module into rt (a *hostapi.Runtime) with host (a
	// hostapi.Host) as the gateway would, and reports its first
	// instance's linear memory or why the load failed.
	Inspect func(ctx context.Context, rt any, name string, wasm []byte, host any) (memory uint64, loadErr error)
}

// Load is one load of an engine's module.
type Load struct {
	Spec *Spec
	// Owner is what Spec.Start puts in a starting instance's context.
	Owner any
	// Trusted runs the module in a runtime without wazero's
	// close-on-context-done: the engine keeps its own deadlines, or none.
	Trusted bool
}

// Instance is one pooled instance of an engine's module, pinned to one
// caller between Guest.Acquire and Guest.Release.
type Instance interface {
	Module() api.Module
	State() any // what Spec.Instance made for it
	// Value is the portico host module's call state for the key the
	// runtime's host functions look up (nil for any other key): the
	// engine's call context returns it, so a guest of another ABI may
	// import portico functions too. It is fresh for each Acquire.
	Value(key any) any
}

// Guest is the runtime's side of a loaded engine module.
type Guest interface {
	// Acquire pins an instance (a bounded wait) and counts a call; an
	// error is a *hostapi.CallError (busy, closed, depth).
	Acquire(ctx context.Context) (Instance, error)
	// Release ends the call: the instance goes back to the pool when
	// healthy (else it is discarded), failed counts an error, and
	// guestTime is recorded in the latency histogram. Release(nil, ...)
	// ends a call whose Acquire failed.
	Release(inst Instance, healthy, failed bool, guestTime time.Duration)
	// Classify turns a trap from a guest function into a
	// *hostapi.CallError (a trap, a timeout), or ctx's error when the
	// caller went away.
	Classify(ctx context.Context, err error) error
	// Idle calls fn with each idle instance's module.
	Idle(fn func(api.Module))
}

var (
	mu    sync.Mutex
	specs []*Spec
)

// Register adds an engine; call it from the engine's init. Runtimes made
// after it bind its host module.
func Register(s *Spec) {
	mu.Lock()
	defer mu.Unlock()
	specs = append(specs, s)
}

// Specs returns the registered engines.
func Specs() []*Spec {
	mu.Lock()
	defer mu.Unlock()
	return specs[:len(specs):len(specs)]
}

// FuncSignature is Signature of a function's definition.
func FuncSignature(d api.FunctionDefinition) string {
	return Signature(d.ParamTypes(), d.ResultTypes())
}

// Signature renders a function's type as "(i32, i32) -> (i64)".
func Signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}

// MaxMessage bounds the bytes of a guest's log or failure message that
// are kept.
const MaxMessage = 4096

// HostFunc is one function of a host module: name, signature,
// implementation.
type HostFunc struct {
	Name            string
	Params, Results []api.ValueType
	Fn              api.GoModuleFunc
}

// Bind instantiates a host module of fns in rt.
func Bind(ctx context.Context, rt wazero.Runtime, module string, fns []HostFunc) error {
	b := rt.NewHostModuleBuilder(module)
	for _, f := range fns {
		b.NewFunctionBuilder().WithGoModuleFunction(f.Fn, f.Params, f.Results).Export(f.Name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// SignatureIn returns the signature of fns' function name, for checking a
// module's imports at load.
func SignatureIn(fns []HostFunc, name string) (params, results []api.ValueType, ok bool) {
	for _, f := range fns {
		if f.Name == name {
			return f.Params, f.Results, true
		}
	}
	return nil, nil, false
}
