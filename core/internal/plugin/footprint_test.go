package plugin

import (
	"context"
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
// call still answers (compiled again from the cache).
func TestIdleRelease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	c := cfg(config.PluginEntry{Name: "ok", Path: pluginDir(t, "ok", "ok.wasm", ""), IdleRelease: config.Duration(time.Millisecond)})
	c.Plugin.MinInstances = 0
	f.m.LoadAll(ctx, c)
	// The load checked the module with one instance, then let it and the
	// code go.
	if i, _ := f.m.Get("ok"); i.Status != Active || i.Memory.Instances != 0 || i.Memory.CompiledBytes != 0 || i.Memory.ModuleBytes == 0 || i.Stats.Instantiations != 1 {
		t.Fatalf("after load: %+v, %+v", i.Memory, i.Stats)
	}
	for round := range 2 {
		out, _, err := f.m.Invoke(ctx, "ok", []byte(`"again"`))
		if err != nil || !strings.HasSuffix(string(out), `"again"`) {
			t.Fatalf("round %d: a call of a plugin holding nothing: %q %v", round, out, err)
		}
		if i, _ := f.m.Get("ok"); i.Memory.Instances != 1 || (i.Memory.CompiledBytes == 0 && execMeasured()) {
			t.Errorf("round %d: after the call: %+v", round, i.Memory)
		}
		time.Sleep(5 * time.Millisecond)
		f.m.Trim(time.Now())
		if i, _ := f.m.Get("ok"); i.Memory.Instances != 0 || i.Memory.CompiledBytes != 0 {
			t.Errorf("round %d: after the idle time: %+v", round, i.Memory)
		}
	}
}

// execMeasured reports whether this platform tells compiled code sizes.
func execMeasured() bool { return runtime.GOOS == "linux" }
