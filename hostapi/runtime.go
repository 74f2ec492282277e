package hostapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Runtime compiles and runs plugins. Modules are compiled once per memory
// tier into a shared on-disk cache, so restarts and reloads are fast.
type Runtime struct {
	cache wazero.CompilationCache

	mu     sync.Mutex
	tiers  map[tierKey]wazero.Runtime
	guards map[tierKey]*compileGuard
	closed bool
	ext    []HostFunc // the embedding program's host functions; fixed once a tier exists
}

// tierKey names a wazero runtime: its memory limit in pages, and whether
// it runs without close-on-context-done (trusted middleware, no deadline).
type tierKey struct {
	pages   uint32
	trusted bool
}

// NewRuntime returns a runtime whose compilation cache lives in cacheDir
// ("" keeps it in memory only).
func NewRuntime(cacheDir string) (*Runtime, error) {
	var cache wazero.CompilationCache
	if cacheDir == "" {
		cache = wazero.NewCompilationCache()
	} else {
		c, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", cacheDir, err)
		}
		cache = c
	}
	return &Runtime{cache: cache, tiers: map[tierKey]wazero.Runtime{}}, nil
}

// tier returns the wazero runtime for a memory ceiling. wazero's page limit
// and close-on-context-done are runtime-wide, so each ceiling gets its own
// runtime; all share the compilation cache.
func (r *Runtime) tier(ctx context.Context, key tierKey) (wazero.Runtime, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if rt, ok := r.tiers[key]; ok {
		return rt, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithCloseOnContextDone(!key.trusted).
		WithMemoryLimitPages(key.pages).
		WithCustomSections(true)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if err := instantiateHTTPHandler(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if err := r.instantiateExtensions(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	r.tiers[key] = rt
	return rt, nil
}

// Close closes every runtime; plugins loaded from it stop working.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, rt := range r.tiers {
		rt.Close(ctx)
	}
	r.tiers = nil
	return r.cache.Close(ctx)
}

// moduleConfig is the guest environment: real clocks and crypto/rand, no
// files, no environment variables, stdout and stderr into the plugin's log.
func moduleConfig(start string, out *logWriter) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStdout(out).
		WithStderr(out)
	if start == "" {
		return mc.WithStartFunctions()
	}
	return mc.WithStartFunctions(start)
}

// logWriter sends a guest's stdout and stderr to its plugin's log, a line
// at a time.
type logWriter struct {
	host Host
	mu   sync.Mutex
	buf  []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 4096 {
				w.host.Log(context.Background(), LogInfo, string(w.buf))
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.host.Log(context.Background(), LogInfo, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// Log levels of the log host function.
const (
	LogDebug int32 = iota
	LogInfo
	LogWarn
	LogError
)

// compileGuard works around a data race in wazero v1.12: compiling a
// module rewrites the compiled code's entry preambles, which another
// goroutine may be reading while it instantiates a module of the same
// bytes (compiled before by this runtime: a reload, two plugins sharing a
// module). So compiles and instantiations on one runtime never overlap:
// compiles run together (the same bytes one at a time), instantiations run
// together, and each kind waits for the other to finish.
type compileGuard struct {
	mu                       sync.Mutex
	cond                     *sync.Cond
	compiling, instantiating int
	bytes                    sync.Map // sha256 of module bytes -> *sync.Mutex
}

func (r *Runtime) guard(key tierKey) *compileGuard {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.guards == nil {
		r.guards = map[tierKey]*compileGuard{}
	}
	g := r.guards[key]
	if g == nil {
		g = &compileGuard{}
		g.cond = sync.NewCond(&g.mu)
		r.guards[key] = g
	}
	return g
}

// enter waits until no call of the other kind runs, then counts one in.
func (g *compileGuard) enter(mine, other *int) {
	g.mu.Lock()
	for *other > 0 {
		g.cond.Wait()
	}
	*mine++
	g.mu.Unlock()
}

func (g *compileGuard) leave(mine *int) {
	g.mu.Lock()
	*mine--
	g.cond.Broadcast()
	g.mu.Unlock()
}

// compile compiles wasm on rt under the guard.
func (g *compileGuard) compile(ctx context.Context, rt wazero.Runtime, wasm []byte) (wazero.CompiledModule, error) {
	m, _ := g.bytes.LoadOrStore(sha256.Sum256(wasm), &sync.Mutex{})
	m.(*sync.Mutex).Lock()
	defer m.(*sync.Mutex).Unlock()
	g.enter(&g.compiling, &g.instantiating)
	defer g.leave(&g.compiling)
	return rt.CompileModule(ctx, wasm)
}

// instantiating runs fn (an instantiation and its export lookups) under the
// guard.
func (g *compileGuard) instantiate(fn func()) {
	g.enter(&g.instantiating, &g.compiling)
	defer g.leave(&g.instantiating)
	fn()
}
