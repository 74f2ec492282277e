package httpwasm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/porticohq/portico/hostapi"
)

func testCacheDir(t testing.TB) string {
	dir, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func newRuntime(t testing.TB) *hostapi.Runtime {
	t.Helper()
	r, err := hostapi.NewRuntime(testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// fixture reads testdata/wasm/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "wasm", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
