package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPublicPackages keeps the module's importable surface to the list in
// docs/embedding.md: every package that is neither a command nor under an
// internal directory must be on it, and every package on it must exist.
func TestPublicPackages(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "embedding.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "<!-- public-packages:begin -->")
	table, _, ok2 := strings.Cut(table, "<!-- public-packages:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/embedding.md has no public-packages list")
	}
	var want []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(table, -1) {
		want = append(want, m[1])
	}
	var got []string
	for _, dir := range []string{"..", filepath.Join("..", "sdk")} {
		cmd := exec.Command("go", "list", "-f", "{{.Name}} {{.ImportPath}}", "./...")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list in %s: %v", dir, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			name, path, _ := strings.Cut(line, " ")
			if name == "main" || strings.Contains(path+"/", "/internal/") {
				continue
			}
			got = append(got, path)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	for _, p := range got {
		if !slices.Contains(want, p) {
			t.Errorf("package %s is importable but not on the list in docs/embedding.md: move it under internal/, or add it there with why", p)
		}
	}
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("docs/embedding.md lists %s, which is not a package of the module (or is internal now)", p)
		}
	}
}
