package testtool

import (
	"runtime"
	"testing"
)

// recorder notes how Need ended a test instead of ending this one.
type recorder struct {
	testing.TB
	how string
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatal(args ...any)     { r.how = "fatal"; runtime.Goexit() }
func (r *recorder) Skip(args ...any)      { r.how = "skip"; runtime.Goexit() }
func (r *recorder) Errorf(string, ...any) {}

func run(tb testing.TB, names ...string) (string, string) {
	r := &recorder{TB: tb}
	var path string
	done := make(chan struct{})
	go func() { defer close(done); path = Need(r, "test", names...) }()
	<-done
	return path, r.how
}

func TestNeed(t *testing.T) {
	t.Setenv(RequireEnv, "")
	if p, how := run(t, "no-such-tool-xyz", "sh"); p == "" || how != "" {
		t.Errorf("sh: %q %q", p, how)
	}
	if _, how := run(t, "no-such-tool-xyz"); how != "skip" {
		t.Errorf("missing tool without %s: %q", RequireEnv, how)
	}
	t.Setenv(RequireEnv, "1")
	if _, how := run(t, "no-such-tool-xyz"); how != "fatal" {
		t.Errorf("missing tool with %s: %q", RequireEnv, how)
	}
}
