// Package testtool finds the programs outside Go that some tests need
// (wat2wasm, chromium, bash, curl), and checks a test leaves nothing
// running behind (NoLeak). Without one a test skips with a
// one-line reason, so `go test ./...` passes on a machine with only Go;
// with PORTICO_TEST_REQUIRE_TOOLS set (CI, which installs them) it fails
// instead, so a skip can never hide there.
package testtool

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// RequireEnv turns a missing program into a failure when set.
const RequireEnv = "PORTICO_TEST_REQUIRE_TOOLS"

// Need returns the path of the first of names on PATH, or skips (fails
// under RequireEnv) saying how to get it: install is e.g. "Debian's wabt".
func Need(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	missing(t, strings.Join(names, " or ")+" is not installed ("+install+")")
	return ""
}

// missing skips t saying what it lacks, or fails it under RequireEnv.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatal(msg + " and " + RequireEnv + " is set")
	}
	t.Skip(msg)
}

// NoLeak runs cycle n times and fails t when more than two goroutines,
// or more than margin bytes of heap in use, are left after it than
// before (each measured after two collections).
func NoLeak(t *testing.T, n int, margin uint64, cycle func()) {
	t.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, gor0 := ms.HeapInuse, runtime.NumGoroutine()
	for range n {
		cycle()
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if g := runtime.NumGoroutine(); g > gor0+2 {
		t.Errorf("goroutines %d -> %d after %d cycles", gor0, g, n)
	}
	if ms.HeapInuse > heap0+margin {
		t.Errorf("heap in use %d -> %d bytes after %d cycles", heap0, ms.HeapInuse, n)
	}
}
