package hostapi

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoCommandModeRefused builds a Go guest without -buildmode=c-shared
// and checks that loading it says how to fix it.
func TestGoCommandModeRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest; skipped in -short mode")
	}
	out := filepath.Join(t.TempDir(), "cmd.wasm")
	cmd := exec.Command("go", "build", "-o", out, "../testdata/gocmd")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t)
	_, err = r.Load(context.Background(), wasm, Options{Name: "gocmd", Host: newHost()})
	if !errors.Is(err, ErrABI) || !strings.Contains(err.Error(), "rebuild with -buildmode=c-shared") {
		t.Fatalf("load: %v", err)
	}
}
