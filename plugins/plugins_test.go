package plugins

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/porticohq/portico/internal/testtool"
)

// BuildGuest builds a Go guest the way `portico plugin build` and `go tool
// task plugins` do: wasip1/wasm, c-shared, reproducible (-trimpath, no VCS
// stamp), stripped, with GOFLAGS cleared so a -race from the environment
// cannot leak in.
func buildGuest(t *testing.T, dir, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-ldflags=-s -w", "-o", out, "./"+dir)
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
		if name == "reverse" {
			continue // WAT, not Go: TestWATModuleMatchesSource
		}
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

// TestWATModuleMatchesSource rebuilds the hand-written WAT plugin with
// wat2wasm (Debian's wabt), which CI installs; elsewhere the test skips
// unless PORTICO_TEST_REQUIRE_TOOLS is set.
func TestWATModuleMatchesSource(t *testing.T) {
	testtool.Need(t, "Debian's wabt", "wat2wasm")
	out := filepath.Join(t.TempDir(), "reverse.wasm")
	if b, err := exec.Command("wat2wasm", "reverse/reverse.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	fresh, _ := os.ReadFile(out)
	committed, _ := FS.ReadFile("reverse/reverse.wasm")
	if !bytes.Equal(fresh, committed) {
		t.Error("plugins/reverse/reverse.wasm differs from its source; run go tool task plugins and commit")
	}
}
