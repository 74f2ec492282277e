package hostapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/porticohq/portico/hostapi/internal/engine"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
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

	compiles  atomic.Uint64
	compiling atomic.Int32 // compiles in progress
}

// Compiles is how many module compiles (from the compilation cache or
// not) the runtime has run. A compile leaves megabytes of garbage behind;
// an owner that wants it back promptly watches this count (the gateway
// returns memory to the OS once compiles stop).
func (r *Runtime) Compiles() uint64 { return r.compiles.Load() }

// Compiling reports whether a compile is in progress (one may take
// seconds: an owner waiting for compiles to stop waits for it too).
func (r *Runtime) Compiling() bool { return r.compiling.Load() > 0 }

// CompiledBytes is the executable memory of the compiled modules the
// runtime holds now, each counted once however many plugins share it.
func (r *Runtime) CompiledBytes() int64 {
	r.mu.Lock()
	guards := make([]*compileGuard, 0, len(r.guards))
	for _, g := range r.guards {
		guards = append(guards, g)
	}
	r.mu.Unlock()
	var n int64
	for _, g := range guards {
		g.mu.Lock()
		for _, sm := range g.modules {
			n += sm.code
		}
		g.mu.Unlock()
	}
	return n
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
	for _, e := range engine.Specs() {
		if err := e.Bind(ctx, rt); err != nil {
			rt.Close(ctx)
			return nil, fmt.Errorf("instantiate %s: %w", e.Module, err)
		}
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
// module a runtime has already compiled (a reload of the same bytes, two
// plugins sharing a module) rewrites the compiled code's entry preambles
// while another goroutine may be instantiating that module. So a runtime
// never compiles the same bytes twice while they are in use: the compiled
// module is shared by every plugin of those bytes and counted, and closed
// when the last one is freed. Reloading unchanged bytes then costs no
// compile at all. Compiles of the same bytes wait for each other.
type compileGuard struct {
	compiles  *atomic.Uint64 // the runtime's count
	compiling *atomic.Int32  // and its compiles in progress
	mu        sync.Mutex
	modules   map[[32]byte]*sharedModule
	locks     sync.Map // sha256 -> *sync.Mutex
}

type sharedModule struct {
	cm   wazero.CompiledModule
	refs int
	code int64 // bytes of executable memory its compile mapped (0 where that cannot be read)
}

// compileMu serializes compiles so the executable memory each one maps
// can be told apart (codeBytes); each compile then uses every CPU for
// its functions (wazero's compilation workers), so a cold start of many
// modules takes about as long as compiling them side by side.
var compileMu sync.Mutex

// codeSizes remembers the executable size each module's compile mapped,
// by its bytes' sha256 (under compileMu): a later compile of the same
// module that maps no new region (it reused a mapping freed meanwhile)
// reports the size measured before.
var codeSizes = map[[32]byte]int64{}

func (r *Runtime) guard(key tierKey) *compileGuard {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.guards == nil {
		r.guards = map[tierKey]*compileGuard{}
	}
	g := r.guards[key]
	if g == nil {
		g = &compileGuard{modules: map[[32]byte]*sharedModule{}, compiles: &r.compiles, compiling: &r.compiling}
		r.guards[key] = g
	}
	return g
}

// compile returns the runtime's compiled module of wasm, compiling it only
// when no plugin holds it, and the function that releases this hold.
func (g *compileGuard) compile(ctx context.Context, rt wazero.Runtime, wasm []byte) (wazero.CompiledModule, func(), error) {
	cm, _, release, err := g.compileSized(ctx, rt, wasm)
	return cm, release, err
}

// compileSized is compile that also says how many bytes of executable
// memory the compiled module holds.
func (g *compileGuard) compileSized(ctx context.Context, rt wazero.Runtime, wasm []byte) (wazero.CompiledModule, int64, func(), error) {
	sum := sha256.Sum256(wasm)
	l, _ := g.locks.LoadOrStore(sum, &sync.Mutex{})
	l.(*sync.Mutex).Lock()
	defer l.(*sync.Mutex).Unlock()
	g.mu.Lock()
	sm := g.modules[sum]
	if sm != nil {
		sm.refs++
	}
	g.mu.Unlock()
	if sm == nil {
		g.compiling.Add(1)
		defer g.compiling.Add(-1)
		compileMu.Lock()
		before := execRegions()
		// Coalesced, the Go linker's tens of thousands of data segments
		// cost the compiled module ~2 MB less (coalesceData).
		cm, err := rt.CompileModule(experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0)), coalesceData(wasm))
		code := mappedSince(before, execRegions())
		if known := codeSizes[sum]; code == 0 {
			code = known
		} else if err == nil {
			codeSizes[sum] = code
		}
		compileMu.Unlock()
		g.compiles.Add(1)
		if err != nil {
			return nil, 0, nil, err
		}
		sm = &sharedModule{cm: cm, refs: 1, code: code}
		g.mu.Lock()
		g.modules[sum] = sm
		g.mu.Unlock()
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			g.mu.Lock()
			sm.refs--
			last := sm.refs == 0
			if last && g.modules[sum] == sm {
				delete(g.modules, sum)
			}
			g.mu.Unlock()
			if last {
				sm.cm.Close(context.Background())
			}
		})
	}
	return sm.cm, sm.code, release, nil
}
