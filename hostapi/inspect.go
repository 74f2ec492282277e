package hostapi

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/porticohq/portico/hostapi/internal/engine"
	"github.com/tetratelabs/wazero"
)

// Report describes a module for `portico plugin inspect`.
type Report struct {
	Size int    `json:"size_bytes"`
	ABI  string `json:"abi"` // "v1.0", or "" when it could not be read
	// ExportedKinds are the kinds whose entry points the module exports
	// (an SDK-built module exports them all); the manifest says which it
	// provides.
	ExportedKinds []string `json:"exported_kinds"`
	Exports       []string `json:"exports"`
	Imports       []string `json:"imports"`
	Start         string   `json:"start"` // _initialize, _start or none
	GoCommand     bool     `json:"go_command_mode"`
	LoadError     string   `json:"load_error,omitempty"` // why the gateway would refuse it
	MemoryUsed    uint64   `json:"memory_bytes_after_start,omitempty"`
}

// Inspect compiles wasm and reports its ABI version, exports, imports and
// whether the gateway would load it (and why not). cacheDir is the
// compilation cache to use ("" compiles in memory).
func Inspect(ctx context.Context, name string, wasm []byte, host Host, cacheDir string) (*Report, error) {
	rep := &Report{Size: len(wasm), Start: "none", ExportedKinds: []string{}}
	// Exports and imports are read from a compile without a cache (custom
	// sections are needed); interpreting is enough and much cheaper.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCustomSections(true))
	defer rt.Close(ctx)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotWasm, err)
	}
	for name, d := range compiled.ExportedFunctions() {
		rep.Exports = append(rep.Exports, name+" "+engine.FuncSignature(d))
		switch name {
		case ExportSkill:
			rep.ExportedKinds = append(rep.ExportedKinds, KindSkill)
		case ExportHook:
			rep.ExportedKinds = append(rep.ExportedKinds, KindHook)
		case ExportChannel:
			rep.ExportedKinds = append(rep.ExportedKinds, KindChannel)
		case "_initialize":
			rep.Start = name
		case "_start":
			if rep.Start == "none" {
				rep.Start = name
			}
		}
	}
	var eng *engine.Spec // the engine whose module this is, if any
	for _, e := range engine.Specs() {
		if _, ok := compiled.ExportedFunctions()[e.Export]; ok {
			eng = e
			rep.ExportedKinds = append(rep.ExportedKinds, e.Kind)
		}
	}
	for _, d := range compiled.ImportedFunctions() {
		mod, fn, _ := d.Import()
		rep.Imports = append(rep.Imports, mod+"."+fn+" "+engine.FuncSignature(d))
	}
	for _, cs := range compiled.CustomSections() {
		if cs.Name() == "go:buildid" && rep.Start == "_start" {
			rep.GoCommand = true
		}
	}
	sort.Strings(rep.Exports)
	sort.Strings(rep.Imports)
	slices.Sort(rep.ExportedKinds)

	// Load it as the gateway would, with an in-memory cache.
	r, err := NewRuntime(cacheDir)
	if err != nil {
		return nil, err
	}
	defer r.Close(ctx)
	if eng != nil {
		rep.ABI = eng.ABI
		mem, err := eng.Inspect(ctx, r, name, wasm, host)
		if err != nil {
			rep.LoadError = err.Error()
		}
		rep.MemoryUsed = mem
		return rep, nil
	}
	kinds := rep.ExportedKinds
	if len(kinds) == 0 {
		kinds = []string{KindSkill}
	}
	p, err := r.Load(ctx, wasm, Options{Name: name, Host: host, Kinds: kinds, PoolOptions: PoolOptions{MinInstances: 1, MaxInstances: 1}})
	if err != nil {
		rep.LoadError = err.Error()
		return rep, nil
	}
	defer p.Close(ctx)
	inst, err := p.acquire(ctx)
	if err != nil {
		rep.LoadError = err.Error()
		return rep, nil
	}
	if res, err := inst.mod.ExportedFunction(ExportABIVersion).Call(ctx); err == nil {
		rep.ABI = fmt.Sprintf("v%d.%d", uint32(res[0])>>16, uint32(res[0])&0xffff)
	}
	rep.MemoryUsed = uint64(inst.mod.Memory().Size())
	p.release(inst, true)
	return rep, nil
}
