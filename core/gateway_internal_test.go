package core

import "testing"

// TestCompilesQuiet: memory is given back once, on the first quiet tick
// after compiles, and never while they go on or when there were none.
func TestCompilesQuiet(t *testing.T) {
	q := compilesQuiet{seen: 3, released: 3}
	for i, c := range []struct {
		count   uint64
		release bool
	}{
		{3, false}, // nothing since the load
		{5, false}, // compiling
		{7, false}, // still compiling
		{7, true},  // quiet: release
		{7, false}, // released already
		{8, false},
		{8, true},
	} {
		if got := q.tick(c.count); got != c.release {
			t.Errorf("tick %d (count %d): release %v, want %v", i, c.count, got, c.release)
		}
	}
}
