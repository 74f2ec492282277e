package core

import "testing"

// TestCompilesQuiet: memory is given back once, on the first quiet tick
// after compiles, and never while they go on or when there were none.
func TestCompilesQuiet(t *testing.T) {
	q := compilesQuiet{seen: 3, released: 3}
	for i, c := range []struct {
		count     uint64
		compiling bool
		release   bool
	}{
		{3, false, false}, // nothing since the load
		{5, false, false}, // compiling
		{7, false, false}, // still compiling
		{7, false, true},  // quiet: release
		{7, false, false}, // released already
		{8, false, false},
		{8, true, false}, // a compile longer than a tick is in progress
		{8, true, false},
		{9, false, false},
		{9, false, true},
	} {
		if got := q.tick(c.count, c.compiling); got != c.release {
			t.Errorf("tick %d (count %d, compiling %v): release %v, want %v", i, c.count, c.compiling, got, c.release)
		}
	}
}
