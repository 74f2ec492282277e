// Package testtool finds the programs outside Go that some tests need
// (wat2wasm, chromium, bash, curl). Without one a test skips with a
// one-line reason, so `go test ./...` passes on a machine with only Go;
// with PORTICO_TEST_REQUIRE_TOOLS set (CI, which installs them) it fails
// instead, so a skip can never hide there.
package testtool

import (
	"os"
	"os/exec"
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
	msg := strings.Join(names, " or ") + " is not installed (" + install + ")"
	if os.Getenv(RequireEnv) != "" {
		t.Fatal(msg + " and " + RequireEnv + " is set")
	}
	t.Skip(msg)
	return ""
}
