package hostapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/porticohq/portico/hostapi/internal/engine"
)

// HostFunc is a host function a program embedding Portico adds to the
// plugin runtime. A guest imports it as Module.Name with the signature
// (in_ptr i32, in_len i32) -> i32, like llm_complete: the host calls Fn with
// the bytes at in_ptr, and the function returns the reply's length (the
// guest reads the reply with portico.result) or a negative result: -2 when
// the plugin is not granted Capability (the refusal is audited), -1 when Fn
// returns an error matching ErrNotFound, -4 for ErrQuota, -3 for any other
// error; on every error the error's message is the result.
//
// Fn runs on the calling plugin's goroutine under the call's deadline; it
// must honour ctx and be safe for concurrent use. A panic in Fn traps the
// call (the instance is discarded), like any other host-side fault.
type HostFunc struct {
	Module     string
	Name       string
	Capability string
	Fn         func(ctx context.Context, in []byte) ([]byte, error)
}

// ErrNotFound is what a HostFunc returns (wrapped) for "no such thing"; the
// guest sees -1.
var ErrNotFound = errors.New("not found")

// ErrHostFunc marks a HostFunc that AddHostFuncs refuses.
var ErrHostFunc = errors.New("invalid host function")

// ReservedModules are the import modules a HostFunc may not use: Portico's
// own, WASI's and http-wasm's.
var ReservedModules = []string{HostModule, "wasi_snapshot_preview1", "wasi_unstable", "http_handler", "env"}

var (
	extModuleName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	extFuncName   = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)
	// ExtensionCapability is the form of an extension capability name: a
	// lower-case namespace and a name joined by a dot ("acme.lookup"),
	// which keeps it apart from the built-in capabilities.
	ExtensionCapability = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}\.[a-z0-9][a-z0-9_.-]{0,63}$`)
)

var extSignature = struct{ params, results []api.ValueType }{[]api.ValueType{i32, i32}, []api.ValueType{i32}}

// AddHostFuncs adds host functions to the runtime. It must be called before
// the first plugin is loaded (the host modules are bound into each wazero
// runtime as it is made) and checks every function: module and function
// names, a dotted capability name (ExtensionCapability), a non-nil Fn and
// no duplicates. On error nothing is added; the error wraps ErrHostFunc.
func (r *Runtime) AddHostFuncs(fns ...HostFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if len(r.tiers) > 0 {
		return fmt.Errorf("%w: add host functions before loading any plugin", ErrHostFunc)
	}
	if err := CheckHostFuncs(append(slices.Clone(r.ext), fns...)); err != nil {
		return err
	}
	r.ext = append(r.ext, fns...)
	return nil
}

// CheckHostFuncs checks host functions as AddHostFuncs does, without a
// runtime; every problem is reported, each wrapping ErrHostFunc.
func CheckHostFuncs(fns []HostFunc) error {
	seen := map[string]bool{}
	var errs []error
	for i, f := range fns {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: host function %d (%s.%s): %s", ErrHostFunc, i, f.Module, f.Name, fmt.Sprintf(format, args...)))
		}
		switch {
		case slices.Contains(ReservedModules, f.Module):
			bad("module %q is reserved; pick your own, e.g. your company's name", f.Module)
		case !extModuleName.MatchString(f.Module):
			bad("module %q must match %s", f.Module, extModuleName)
		}
		if !extFuncName.MatchString(f.Name) {
			bad("name %q must match %s", f.Name, extFuncName)
		}
		if !ExtensionCapability.MatchString(f.Capability) {
			bad("capability %q must be a dotted name such as %q (it must not clash with the built-in ones)", f.Capability, f.Module+"."+f.Name)
		}
		if f.Fn == nil {
			bad("Fn is nil")
		}
		key := f.Module + "." + f.Name
		if seen[key] {
			bad("defined twice")
		}
		seen[key] = true
	}
	return errors.Join(errs...)
}

// ExtensionCapabilities returns the capability names of the runtime's host
// functions, sorted, without repeats.
func (r *Runtime) ExtensionCapabilities() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, f := range r.ext {
		if !slices.Contains(out, f.Capability) {
			out = append(out, f.Capability)
		}
	}
	slices.Sort(out)
	return out
}

// instantiateExtensions binds the runtime's host functions into rt, one
// host module per Module. r.mu is held.
func (r *Runtime) instantiateExtensions(ctx context.Context, rt wazero.Runtime) error {
	mods := map[string][]hostFunc{}
	var order []string
	for _, f := range r.ext {
		if _, ok := mods[f.Module]; !ok {
			order = append(order, f.Module)
		}
		mods[f.Module] = append(mods[f.Module], hostFunc{Name: f.Name, Params: extSignature.params, Results: extSignature.results, Fn: extensionFunc(f)})
	}
	for _, m := range order {
		if err := engine.Bind(ctx, rt, m, mods[m]); err != nil {
			return fmt.Errorf("host module %s: %w", m, err)
		}
	}
	return nil
}

func extensionFunc(f HostFunc) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, f.Capability) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		in := append([]byte{}, read(m, uint32(s[0]), uint32(s[1]))...)
		out, err := f.Fn(ctx, in)
		c.answer(s, out, err)
	}
}

// checkExtensionImport checks an import from a module other than portico
// against the runtime's host functions.
func (p *Plugin) checkExtensionImport(imp api.FunctionDefinition) error {
	mod, fn, _ := imp.Import()
	if slices.Contains(ReservedModules, mod) {
		return nil // WASI and http_handler are the runtime's to resolve
	}
	var known []string
	for _, f := range p.ext {
		if f.Module == mod && f.Name == fn {
			if !slices.Equal(imp.ParamTypes(), extSignature.params) || !slices.Equal(imp.ResultTypes(), extSignature.results) {
				return fmt.Errorf("plugin %q: %w: import %s.%s has signature %v -> %v, want %v -> %v", p.opts.Name, ErrABI, mod, fn, imp.ParamTypes(), imp.ResultTypes(), extSignature.params, extSignature.results)
			}
			return nil
		}
		known = append(known, f.Module+"."+f.Name)
	}
	have := "none"
	if len(known) > 0 {
		have = strings.Join(known, ", ")
	}
	return fmt.Errorf("plugin %q: %w: imports %s.%s, which this host does not provide (host functions added by the embedding program: %s)", p.opts.Name, ErrABI, mod, fn, have)
}
