package hostapi

import (
	"context"
	"runtime"
	"testing"
)

func TestMappedSince(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after []region
		want          int64
	}{
		{"nothing new", []region{{0, 10}}, []region{{0, 10}}, 0},
		{"a new mapping", []region{{0, 10}}, []region{{0, 10}, {100, 150}}, 50},
		{"an old one unmapped meanwhile", []region{{0, 10}, {20, 60}}, []region{{0, 10}, {100, 150}}, 50},
		{"merged with its old neighbour", []region{{0, 10}}, []region{{0, 30}}, 20},
		{"all unmapped, nothing new", []region{{0, 10}}, nil, 0},
		{"reused an unmapped range", []region{{0, 10}, {20, 60}}, []region{{0, 10}, {20, 50}}, 30},
	} {
		if got := mappedSince(c.before, c.after); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// TestCompiledBytesCountsSharedModulesOnce: two plugins of the same bytes
// share one compiled module, which the runtime counts once, and nothing
// once both are closed.
func TestCompiledBytesCountsSharedModulesOnce(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	var ps []*Plugin
	for _, name := range []string{"a", "b"} {
		p, err := r.Load(ctx, echoWasm(t), Options{Name: name, Host: newHost(), PoolOptions: PoolOptions{MinInstances: 1}})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if r.Compiling() {
		t.Error("a compile is still reported in progress after both loads")
	}
	one := ps[0].Memory().CompiledBytes
	// Compiled code is measured from /proc/self/maps: elsewhere it is 0,
	// and the sharing still shows as the same figure.
	measured := runtime.GOOS == "linux"
	if (measured && one <= 0) || ps[1].Memory().CompiledBytes != one {
		t.Fatalf("compiled bytes of the two plugins: %d and %d", one, ps[1].Memory().CompiledBytes)
	}
	if got := r.CompiledBytes(); got != one {
		t.Errorf("runtime's compiled bytes %d, want the shared module's %d once", got, one)
	}
	for _, p := range ps {
		p.Close(ctx)
	}
	if got := r.CompiledBytes(); got != 0 {
		t.Errorf("compiled bytes after both closed: %d", got)
	}
}
