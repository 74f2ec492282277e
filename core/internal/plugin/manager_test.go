package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/plugins"
)

type fixture struct {
	m   *Manager
	st  store.Store
	bus *events.Bus
	rt  *hostapi.Runtime
}

func newFixture(t testing.TB, st store.Store) *fixture {
	t.Helper()
	dir, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := hostapi.NewRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		st = storetest.Open(t)
	}
	bus := events.New()
	m := NewManager(Deps{Runtime: rt, Store: st, Bus: bus, Audit: audit.New(st), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Embedded: plugins.FS, Names: plugins.Names})
	t.Cleanup(func() { m.Close(context.Background()); rt.Close(context.Background()) })
	return &fixture{m: m, st: st, bus: bus, rt: rt}
}

func cfg(entries ...config.PluginEntry) *config.Config {
	c := config.Default()
	c.Plugins = entries
	return c
}

// pluginDir writes a plugin directory: a manifest and a module from
// testdata/wasm.
func pluginDir(t testing.TB, name, fixture, extra string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(dir, 0o700)
	manifest := "name = \"" + name + "\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n" + extra
	if !strings.Contains(extra, "[[skills]]") {
		manifest += "[[skills]]\nname = \"" + name + "\"\ndescription = \"test skill\"\n"
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o600)
	wasm, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", fixture))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o600)
	return dir
}

func TestEmbeddedEchoAndLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.LoadAll(ctx, cfg())
	info, err := f.m.Get("echo")
	// The default min_instances 0: the load checked the module with one
	// instance and let it go.
	if err != nil || info.Status != Active || info.ModuleSHA256 == "" || info.Stats.Instances != 0 || info.Stats.Instantiations != 1 {
		t.Fatalf("echo = %+v, %v", info, err)
	}
	out, plugin, err := f.m.Invoke(ctx, "echo", []byte(`{"text":"hi"}`))
	if err != nil || string(out) != `{"text":"hi"}` || plugin != "echo" {
		t.Fatalf("invoke: %q %q %v", out, plugin, err)
	}
	if _, _, err := f.m.Invoke(ctx, "nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown skill: %v", err)
	}
	if err := f.m.Disable(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.Invoke(ctx, "echo", nil); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled skill: %v", err)
	}
	// Disabled survives a restart.
	f2 := newFixture(t, f.st)
	f2.m.LoadAll(ctx, cfg())
	if i, _ := f2.m.Get("echo"); i.Status != Disabled {
		t.Errorf("after restart: %s", i.Status)
	}
	if err := f2.m.Enable(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f2.m.Invoke(ctx, "echo", []byte("1")); err != nil {
		t.Errorf("enabled: %v", err)
	}
	if err := f.m.Reload(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("reload unknown: %v", err)
	}
}

func TestLoadFailuresAreKeptWithReasons(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.LoadAll(ctx, cfg(
		config.PluginEntry{Name: "needy", Path: pluginDir(t, "needy", "ok.wasm", "[capabilities]\nrequired = [\"kv\"]\n")},
		config.PluginEntry{Name: "broken", Path: pluginDir(t, "broken", "notwasm.bin", "")},
		config.PluginEntry{Name: "twin", Path: pluginDir(t, "twin", "ok.wasm", "[[skills]]\nname = \"echo\"\ndescription = \"x\"\n")},
		config.PluginEntry{Name: "good", Path: pluginDir(t, "good", "ok.wasm", "")},
	))
	want := map[string]string{"needy": "required but not granted", "broken": "not a WebAssembly module", "twin": "already provided by plugin \"echo\""}
	for name, msg := range want {
		i, err := f.m.Get(name)
		if err != nil || i.Status != Failed || !strings.Contains(i.LastError, msg) {
			t.Errorf("%s: %+v (want failed with %q)", name, i, msg)
		}
	}
	if _, _, err := f.m.Invoke(ctx, "good", []byte("x")); err != nil {
		t.Errorf("good plugin beside failed ones: %v", err)
	}
	if _, _, err := f.m.Invoke(ctx, "echo", []byte("x")); err != nil {
		t.Errorf("echo kept its skill: %v", err)
	}
}

func TestReloadFailureKeepsOldVersion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	dir := pluginDir(t, "good", "ok.wasm", "")
	f.m.LoadAll(ctx, cfg(config.PluginEntry{Name: "good", Path: dir}))
	os.WriteFile(filepath.Join(dir, "good.wasm"), []byte("garbage"), 0o600)
	if err := f.m.Reload(ctx, "good"); err == nil {
		t.Fatal("reload of a broken module succeeded")
	}
	if _, _, err := f.m.Invoke(ctx, "good", []byte("x")); err != nil {
		t.Errorf("old version stopped serving: %v", err)
	}
	if i, _ := f.m.Get("good"); i.Status != Active || !strings.Contains(i.LastError, "reload failed") {
		t.Errorf("info after failed reload: %+v", i)
	}
}

// TestReloadUnderLoad: 8 callers invoke a skill while it is reloaded 50
// times and disabled and enabled in between; no call fails except those
// made while disabled, which get ErrDisabled. The same holds with
// min_instances 0 and instances released as soon as they are idle.
func TestReloadUnderLoad(t *testing.T) {
	t.Run("min_instances 1", func(t *testing.T) { reloadUnderLoad(t, cfg()) })
	t.Run("min_instances 0, released when idle", func(t *testing.T) {
		c := cfg()
		c.Plugin.MinInstances, c.Plugin.IdleReleaseAfter = 0, config.Duration(time.Nanosecond)
		reloadUnderLoad(t, c)
	})
}

func reloadUnderLoad(t *testing.T, c *config.Config) {
	ctx := context.Background()
	// What fails here must be a call a reload dropped, not one that waited
	// over a second for an instance: on a loaded CI machine under -race a
	// Go guest's instance can take that long to start.
	c.Plugin.AcquireTimeout = config.Duration(30 * time.Second)
	f := newFixture(t, nil)
	f.m.LoadAll(ctx, c)
	stop := make(chan struct{})
	trimmed := make(chan struct{})
	go func() { // the idle sweep, as often as it can
		defer close(trimmed)
		for {
			select {
			case <-stop:
				return
			default:
				f.m.Trim(time.Now())
				time.Sleep(time.Millisecond)
			}
		}
	}()
	defer func() { <-trimmed }()
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls, disabled := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, _, err := f.m.Invoke(ctx, "echo", []byte("ping"))
				mu.Lock()
				calls++
				switch {
				case errors.Is(err, ErrDisabled):
					disabled++
				case err != nil || string(out) != "ping":
					t.Errorf("call failed during reloads: %q %v", out, err)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 50 {
		if err := f.m.Reload(ctx, "echo"); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			f.m.Disable(ctx, "echo")
			f.m.Enable(ctx, "echo")
		}
	}
	close(stop)
	wg.Wait()
	if calls == 0 {
		t.Fatal("no calls were made")
	}
	t.Logf("%d calls, %d while disabled", calls, disabled)
}

func TestNoLeakOnManagerReload(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.LoadAll(ctx, cfg(config.PluginEntry{Name: "good", Path: pluginDir(t, "good", "ok.wasm", ""), MinInstances: 2}))
	for range 5 {
		f.m.Reload(ctx, "good")
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	g0, heap0 := runtime.NumGoroutine(), ms.HeapInuse
	for range 200 {
		if err := f.m.Reload(ctx, "good"); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
	if i, _ := f.m.Get("good"); i.Stats.Instances != 2 {
		t.Errorf("live instances %d, want the pool's 2", i.Stats.Instances)
	}
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Errorf("goroutines %d -> %d after 200 reloads", g0, g)
	}
	// Margin: 16 MiB over the level after the first reloads.
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > heap0+16<<20 {
		t.Errorf("heap in use %d -> %d bytes after 200 reloads", heap0, ms.HeapInuse)
	}
}

func TestKVQuotaAndGrants(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	c := cfg(config.PluginEntry{Name: "writer", Path: pluginDir(t, "writer", "ungranted.wasm", "[capabilities]\noptional = [\"kv\"]\n"), Grants: []string{"kv"}})
	c.Plugin.KVQuotaBytes = 1
	f.m.LoadAll(ctx, c)
	out, _, err := f.m.Invoke(ctx, "writer", nil)
	if err != nil || len(out) != 4 || int32(out[0])|int32(out[1])<<8|int32(out[2])<<16|int32(out[3])<<24 != hostapi.ResTooLarge {
		t.Fatalf("write over quota: %v %v", out, err)
	}
	c.Plugin.KVQuotaBytes = 1 << 20
	f2 := newFixture(t, nil)
	f2.m.LoadAll(ctx, c)
	if out, _, _ := f2.m.Invoke(ctx, "writer", nil); len(out) != 4 || out[0] != 0 {
		t.Fatalf("granted write: %v", out)
	}
	if v, err := f2.st.Get(ctx, []byte(kvPrefix("writer")+"\x00")); err != nil || len(v) != 1 {
		t.Errorf("kv not namespaced under the plugin: %v %v", v, err)
	}
}

func TestApplyConfigAddsAndRemoves(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.LoadAll(ctx, cfg())
	dir := pluginDir(t, "good", "ok.wasm", "")
	f.m.Apply(ctx, cfg(config.PluginEntry{Name: "good", Path: dir}))
	if i, err := f.m.Get("good"); err != nil || i.Status != Active {
		t.Fatalf("added plugin: %+v %v", i, err)
	}
	before, _ := f.m.Get("echo")
	f.m.Apply(ctx, cfg())
	if _, err := f.m.Get("good"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed plugin still there: %v", err)
	}
	if after, _ := f.m.Get("echo"); after.LoadedAt != before.LoadedAt {
		t.Error("an unchanged plugin was reloaded")
	}
}

func TestSkillCallsSkill(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	code := func(out []byte) int32 {
		if len(out) != 4 {
			return 0
		}
		return int32(out[0]) | int32(out[1])<<8 | int32(out[2])<<16 | int32(out[3])<<24
	}
	// "caller" calls the skill "target", provided by echo-like "tgt".
	c := cfg(
		config.PluginEntry{Name: "caller", Path: pluginDir(t, "caller", "caller.wasm", "[capabilities]\noptional = [\"skills\"]\n"), Grants: []string{"skills"}},
		config.PluginEntry{Name: "tgt", Path: pluginDir(t, "tgt", "ok.wasm", "[[skills]]\nname = \"target\"\ndescription = \"t\"\n")},
	)
	f.m.LoadAll(ctx, c)
	out, _, err := f.m.Invoke(ctx, "caller", []byte("hello"))
	if err != nil || !strings.HasSuffix(string(out), "hello") || !strings.Contains(string(out), "target") {
		t.Fatalf("caller -> target: %q %v", out, err)
	}
	// Without the grant the call is refused.
	f2 := newFixture(t, nil)
	c.Plugins[0].Grants = nil
	f2.m.LoadAll(ctx, c)
	if out, _, _ := f2.m.Invoke(ctx, "caller", []byte("x")); code(out) != hostapi.ResDenied {
		t.Errorf("ungranted call_skill: %v", out)
	}
	// A skill that calls itself stops at the depth limit instead of
	// exhausting its pool.
	f3 := newFixture(t, nil)
	self := cfg(config.PluginEntry{Name: "loopy", Path: pluginDir(t, "loopy", "caller.wasm", "[[skills]]\nname = \"target\"\ndescription = \"t\"\n[capabilities]\noptional = [\"skills\"]\n"), Grants: []string{"skills"}, MaxInstances: 8})
	f3.m.LoadAll(ctx, self)
	out, _, err = f3.m.Invoke(ctx, "target", []byte("x"))
	if err != nil || code(out) != hostapi.ResDepth {
		t.Errorf("self-recursion: %v %v (code %d)", out, err, code(out))
	}
	// An unknown target is -1.
	f4 := newFixture(t, nil)
	alone := c.Plugins[0]
	alone.Grants = []string{"skills"}
	f4.m.LoadAll(ctx, cfg(alone))
	if out, _, _ := f4.m.Invoke(ctx, "caller", []byte("x")); code(out) != hostapi.ResNotFound {
		t.Errorf("missing target: %v", out)
	}
}

// TestNestedCallsNeverWaitForTheirOwnChain: with the default pool (4
// instances) and depth limit (4), a skill calling itself holds every
// instance of its plugin; a nested call must then be refused at once with
// -5 rather than wait acquire_timeout for an instance its own chain holds
// (and then answer -3 "no free plugin instance"). acquire_timeout is 30s
// here, so waiting would show as -3 after 30 s or as the context's end.
func TestNestedCallsNeverWaitForTheirOwnChain(t *testing.T) {
	f := newFixture(t, nil)
	c := cfg(config.PluginEntry{Name: "selfcall", Grants: []string{"skills"}, Path: pluginDir(t, "selfcall", "selfcall.wasm",
		"[[skills]]\nname = \"again\"\ndescription = \"calls itself\"\n[[skills]]\nname = \"plain\"\ndescription = \"answers its input\"\n[capabilities]\noptional = [\"skills\"]\n")})
	c.Plugin.AcquireTimeout = config.Duration(30 * time.Second)
	if c.Plugin.MaxInstances != 4 || c.Plugin.MaxCallDepth != 4 {
		t.Fatalf("the defaults changed: max_instances %d, max_call_depth %d", c.Plugin.MaxInstances, c.Plugin.MaxCallDepth)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f.m.LoadAll(ctx, c)
	if i, _ := f.m.Get("selfcall"); i.Status != Active {
		t.Fatalf("selfcall: %+v", i)
	}
	code := func(out []byte) int32 {
		if len(out) != 4 {
			return 0
		}
		return int32(binary.LittleEndian.Uint32(out))
	}
	var wg sync.WaitGroup
	results := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			out, _, err := f.m.Invoke(ctx, "again", []byte("x"))
			if err != nil || code(out) != hostapi.ResDepth {
				results <- fmt.Sprintf("recursive caller: %q %v (code %d), want code %d", out, err, code(out), hostapi.ResDepth)
				return
			}
			results <- ""
		})
	}
	// Meanwhile an unrelated caller of the same plugin is served.
	for i := range 20 {
		in := []byte(fmt.Sprintf(`"plain %d"`, i))
		if out, _, err := f.m.Invoke(ctx, "plain", in); err != nil || string(out) != string(in) {
			t.Errorf("unrelated caller: %q %v", out, err)
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "" {
			t.Error(r)
		}
	}
}

func TestEmbeddedNotesNeedsItsGrant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.LoadAll(ctx, config.Default()) // the defaults grant notes kv
	if i, _ := f.m.Get("notes"); i.Status != Active {
		t.Fatalf("notes with the default grant: %+v", i)
	}
	out, _, err := f.m.Invoke(ctx, "remember", []byte(`{"key":"a","text":"b"}`))
	if err != nil || string(out) != `{"remembered":"a"}` {
		t.Fatalf("remember: %s %v", out, err)
	}
	f2 := newFixture(t, nil)
	f2.m.LoadAll(ctx, cfg()) // a config whose [[plugins]] list leaves notes out
	if i, _ := f2.m.Get("notes"); i.Status != Failed || !strings.Contains(i.LastError, `"kv" is required but not granted`) {
		t.Errorf("notes without kv: %+v", i)
	}
}
