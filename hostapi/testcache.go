package hostapi

import (
	"os"
	"path/filepath"
)

// TestCacheDir returns one compilation-cache directory shared by every test
// package and run on this machine (under the user cache dir). A Go guest
// takes ~15 s to compile under -race and milliseconds from the cache, so
// tests that load Go guests should all point here. wazero keys the cache by
// its own version, so upgrades never read stale code.
func TestCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "portico-test", "wasm-cache")
	return dir, os.MkdirAll(dir, 0o700)
}
