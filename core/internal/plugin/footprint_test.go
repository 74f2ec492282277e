package plugin

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
)

// TestSteadyLoadStartsNothing: after warm-up, steady concurrent calls (with
// the idle sweep running) start no instance.
func TestSteadyLoadStartsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	c := cfg(config.PluginEntry{Name: "ok", Path: pluginDir(t, "ok", "ok.wasm", ""), IdleRelease: config.Duration(time.Minute)})
	f.m.LoadAll(ctx, c)
	load := func(d time.Duration) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for end := time.Now().Add(d); time.Now().Before(end); {
					if _, _, err := f.m.Invoke(ctx, "ok", []byte(`"x"`)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	load(200 * time.Millisecond) // warm up to the concurrency
	i, _ := f.m.Get("ok")
	started := i.Stats.Instantiations
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			f.m.Trim(time.Now())
			time.Sleep(10 * time.Millisecond)
		}
	}()
	load(300 * time.Millisecond)
	<-done
	if i, _ := f.m.Get("ok"); i.Stats.Instantiations != started {
		t.Errorf("steady load started %d instances", i.Stats.Instantiations-started)
	}
}

// TestIdleRelease: with min_instances 0, a plugin idle past its
// idle_release_after holds no instance and no compiled code, and its next
// call still answers (compiled again from the cache). An embedded plugin
// does not keep its module's bytes either (they are in the binary); one
// from a directory does, so it answers as loaded even when its file
// changed meanwhile.
func TestIdleRelease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	dir := pluginDir(t, "ok", "ok.wasm", "")
	c := cfg(config.PluginEntry{Name: "ok", Path: dir, IdleRelease: config.Duration(time.Millisecond)},
		config.PluginEntry{Name: "echo", IdleRelease: config.Duration(time.Millisecond)})
	c.Plugin.MinInstances = 0
	f.m.LoadAll(ctx, c)
	for _, p := range []struct {
		name, in string
		kept     bool
	}{{"ok", `"again"`, true}, {"echo", `{"text":"again"}`, false}} {
		// The load checked the module with one instance, then let it and
		// the code go.
		if i, _ := f.m.Get(p.name); i.Status != Active || i.Memory.Instances != 0 || i.Memory.CompiledBytes != 0 || (i.Memory.ModuleBytes != 0) != p.kept || i.Stats.Instantiations != 1 {
			t.Fatalf("%s after load: %+v, %+v", p.name, i.Memory, i.Stats)
		}
		for round := range 2 {
			if round == 1 && p.name == "ok" {
				other, _ := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", "hook.wasm"))
				if err := os.WriteFile(filepath.Join(dir, "ok.wasm"), other, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, _, err := f.m.Invoke(ctx, p.name, []byte(p.in))
			if err != nil || !strings.Contains(string(out), "again") {
				t.Fatalf("%s round %d: a call of a plugin holding nothing: %q %v", p.name, round, out, err)
			}
			if i, _ := f.m.Get(p.name); i.Memory.Instances != 1 || (i.Memory.CompiledBytes == 0 && execMeasured()) {
				t.Errorf("%s round %d: after the call: %+v", p.name, round, i.Memory)
			}
			time.Sleep(5 * time.Millisecond)
			f.m.Trim(time.Now())
			if i, _ := f.m.Get(p.name); i.Memory.Instances != 0 || i.Memory.CompiledBytes != 0 {
				t.Errorf("%s round %d: after the idle time: %+v", p.name, round, i.Memory)
			}
		}
	}
}

// execMeasured reports whether this platform tells compiled code sizes.
func execMeasured() bool { return runtime.GOOS == "linux" }
