package hostapi

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneCache(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "wazero-v1")
	os.MkdirAll(sub, 0o700)
	base := time.Now().Add(-time.Hour)
	for i, name := range []string{"oldest", "middle", "newest"} {
		p := filepath.Join(sub, name)
		os.WriteFile(p, make([]byte, 1000), 0o600)
		os.Chtimes(p, base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute))
	}
	if n, err := PruneCache(dir, 3000); err != nil || n != 0 {
		t.Fatalf("under the bound: removed %d, %v", n, err)
	}
	n, err := PruneCache(dir, 1500)
	if err != nil || n != 2 {
		t.Fatalf("removed %d, %v; want 2", n, err)
	}
	if _, err := os.Stat(filepath.Join(sub, "newest")); err != nil {
		t.Error("the newest file was removed")
	}
	if _, err := os.Stat(filepath.Join(sub, "oldest")); !os.IsNotExist(err) {
		t.Error("the oldest file was kept")
	}
	if n, err := PruneCache(filepath.Join(dir, "missing"), 0); err != nil || n != 0 {
		t.Errorf("missing dir: %d %v", n, err)
	}
}
