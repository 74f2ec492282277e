package core_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/core"
)

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd here (%v): the descriptor check needs Linux", err)
	}
	return len(entries)
}

// settle waits until the goroutines are back to base (a part's goroutines
// may take a moment to return after Close) and fails naming what is left.
func settle(t *testing.T, what string, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%s: %d goroutines left, %d before:\n%s", what, n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := openFDs(t); n != fds {
		out, _ := os.ReadDir("/proc/self/fd")
		var names []string
		for _, e := range out {
			if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
				names = append(names, l)
			}
		}
		t.Errorf("%s: %d open descriptors, %d before: %s", what, n, fds, strings.Join(names, ", "))
	}
}

// TestFailedStartLeavesNothing injects a failure right after each part New
// builds (and one in Start, a listen address in use) and checks that what
// was built is closed: no goroutine, open file or listener stays behind.
// Not parallel: it counts the whole process's goroutines and descriptors.
func TestFailedStartLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	opts := func() core.Options {
		return core.Options{
			Settings: map[string]string{"data_dir": dir, "listen": "127.0.0.1:0", "storage.memtable_bytes": "1048576", "storage.cache_bytes": "1048576",
				// every part that can be on is on: the tracer exports (to nowhere), TLS serves a self-signed certificate
				"tracing.enabled": "true", "tracing.endpoint": "http://127.0.0.1:1", "tls.enabled": "true"},
			Environ:   []string{"PORTICO_PLUGIN__CACHE_DIR=" + sharedCache(t)},
			LogOutput: io.Discard,
		}
	}
	// A first gateway makes the data dir (admin key, certificate, cache)
	// and tells the parts' names.
	g, err := core.New(opts())
	if err != nil {
		t.Fatal(err)
	}
	names := g.PartNames()
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(names) < 8 {
		t.Fatalf("parts %v: fewer than expected", names)
	}
	for _, name := range names {
		t.Run("fail after "+name, func(t *testing.T) {
			goroutines, fds := runtime.NumGoroutine(), openFDs(t)
			core.SetFailAt(name)
			defer core.SetFailAt("")
			g, err := core.New(opts())
			if err == nil || !strings.Contains(err.Error(), name+": injected failure") {
				if g != nil {
					g.Shutdown(context.Background())
				}
				t.Fatalf("New with a failure after %s: %v", name, err)
			}
			settle(t, "New failing after "+name, goroutines, fds)
		})
	}
	t.Run("Start failing to listen", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		goroutines, fds := runtime.NumGoroutine(), openFDs(t)
		o := opts()
		o.Settings["listen"] = busy.Addr().String()
		g, err := core.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "listen on") {
			t.Fatalf("Start on a busy address: %v", err)
		}
		if err := g.Start(context.Background()); !errors.Is(err, core.ErrStopped) {
			t.Errorf("Start after a failed Start: %v, want ErrStopped", err)
		}
		settle(t, "a failed Start", goroutines, fds)
	})
}
