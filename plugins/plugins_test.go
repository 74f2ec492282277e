package plugins

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildGuest builds a Go guest the way `go tool task plugins` does:
// wasip1/wasm, c-shared, reproducible (-trimpath, no VCS stamp), with
// GOFLAGS cleared so a -race from the environment cannot leak in.
func buildGuest(t *testing.T, dir, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-o", out, "./"+dir)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, b)
	}
}

// TestModulesMatchSource rebuilds every first-party module and compares it
// with the committed one, so the embedded bytes are what the source says.
func TestModulesMatchSource(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the guests; skipped in -short mode")
	}
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), name+".wasm")
			buildGuest(t, name, out)
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := FS.ReadFile(name + "/" + name + ".wasm")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fresh, committed) {
				t.Errorf("plugins/%s/%s.wasm differs from a fresh build of its source; run go tool task plugins and commit", name, name)
			}
		})
	}
}
