package hostapi

import (
	"context"
	"time"

	"github.com/porticohq/portico/hostapi/internal/engine"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// LoadEngine is Load for a module of another engine's ABI
// (hostapi/httpwasm): it compiles wasm in the runtime of its memory tier,
// checks its exports and its imports through the engine (all but the
// portico module's, checked as Load does, and WASI's), and its start
// function;
// then it warms the pool. The Guest is the engine's side of the plugin:
// acquire and release instances, classify traps. Only packages under
// hostapi/ can call it (they alone can name an engine.Load).
func (r *Runtime) LoadEngine(ctx context.Context, wasm []byte, opts Options, l engine.Load) (*Plugin, engine.Guest, error) {
	opts.Kinds = []string{l.Spec.Kind}
	opts.noDeadline = l.Trusted
	opts.defaults()
	p, err := r.compile(ctx, wasm, opts)
	if err != nil {
		return nil, nil, err
	}
	p.load = &l
	if err := p.checkEngine(); err != nil {
		p.unshare()
		return nil, nil, err
	}
	if err := p.warm(nil); err != nil {
		return nil, nil, err
	}
	p.settle()
	return p, engineGuest{p}, nil
}

// checkEngine is check for an engine's module.
func (p *Plugin) checkEngine() error {
	s := p.load.Spec
	if err := s.CheckExports(p.opts.Name, p.compiled); err != nil {
		return err
	}
	for _, imp := range p.compiled.ImportedFunctions() {
		var err error
		switch mod, _, _ := imp.Import(); mod {
		case HostModule:
			err = p.checkHostImport(imp)
		case wasi_snapshot_preview1.ModuleName:
		default:
			err = s.CheckImport(p.opts.Name, imp)
		}
		if err != nil {
			return err
		}
	}
	return p.startRule()
}

// engineGuest is a Plugin seen by its engine.
type engineGuest struct{ p *Plugin }

func (g engineGuest) Acquire(ctx context.Context) (engine.Instance, error) {
	inst, err := g.p.acquire(ctx)
	if err != nil {
		g.p.errors.Add(1)
		return nil, err
	}
	g.p.calls.Add(1)
	inst.call = call{p: g.p}
	return inst, nil
}

func (g engineGuest) Release(ei engine.Instance, healthy, failed bool, guestTime time.Duration) {
	if failed {
		g.p.errors.Add(1)
	}
	if ei == nil {
		return
	}
	inst := ei.(*instance)
	inst.call = call{}
	g.p.latency.record(guestTime)
	g.p.release(inst, healthy)
}

func (g engineGuest) Classify(ctx context.Context, err error) error { return g.p.classify(ctx, err) }

func (g engineGuest) Idle(fn func(api.Module)) {
	g.p.pool.Idle(func(inst *instance) { fn(inst.mod) })
}

// Module, State and Value make an instance an engine.Instance.
func (inst *instance) Module() api.Module { return inst.mod }
func (inst *instance) State() any         { return inst.eng }
func (inst *instance) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return &inst.call
	}
	return nil
}
