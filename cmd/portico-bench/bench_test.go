package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for portico-bench when the
// harness starts the bare chi or reference host target (os.Executable()
// serve-chi ADDR, serve-ref ADDR WASM N).
func TestMain(m *testing.M) {
	if ok, err := subcommand(os.Args[1:]); ok {
		if err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestQuantile(t *testing.T) {
	r := result{lat: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	if r.quantile(0) != 1 || r.quantile(0.5) != 5 || r.quantile(1) != 10 {
		t.Errorf("quantiles %v %v %v", r.quantile(0), r.quantile(0.5), r.quantile(1))
	}
	if (result{}).quantile(0.99) != 0 {
		t.Error("empty result has a quantile")
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# B\n\nintro\n" + sectionBegin + "old\n" + sectionEnd + "\ntail\n"
	out, err := replaceSection([]byte(doc), "new\n")
	if err != nil || string(out) != "# B\n\nintro\n"+sectionBegin+"new\n"+sectionEnd+"\ntail\n" {
		t.Errorf("replace: %q %v", out, err)
	}
	out, err = replaceSection([]byte("# B\n"), "t\n")
	if err != nil || !strings.HasSuffix(string(out), sectionBegin+"t\n"+sectionEnd+"\n") {
		t.Errorf("append: %q %v", out, err)
	}
	if _, err := replaceSection([]byte(sectionEnd+sectionBegin), "x"); err == nil {
		t.Error("markers out of order accepted")
	}
}

// TestHarnessSmoke runs the whole harness briefly against real processes.
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts bare chi and portico processes; skipped in -short mode")
	}
	work := t.TempDir()
	bin := filepath.Join(work, "portico")
	b := exec.Command("go", "build", "-o", bin, "../portico")
	b.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := b.CombinedOutput(); err != nil {
		t.Fatalf("build portico: %v\n%s", err, out)
	}
	// One middleware target of each kind of host keeps the run short.
	o := options{duration: 200 * time.Millisecond, rounds: 1, conns: 4, rate: 200, portico: bin, reloads: 3, middleware: "wat1,ref1"}
	rep, err := measure(context.Background(), o, work)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range append(rep.closed, rep.open...) {
		if row.res.requests == 0 || row.res.errors != 0 {
			t.Errorf("%s: %d requests, %d errors (first: %s)", row.name, row.res.requests, row.res.errors, row.res.firstErr)
		}
	}
	if len(rep.closed) != 7 || rep.closed[6].mw != 1 {
		t.Errorf("middleware rows: %d closed-loop rows", len(rep.closed))
	}
	if rep.reloadErrs != 0 || rep.reloadReqs == 0 {
		t.Errorf("reload under load: %d of %d failed (first: %s)", rep.reloadErrs, rep.reloadReqs, rep.reloadFirstErr)
	}
	if rep.coldStart <= 0 || rep.warmStart <= 0 {
		t.Errorf("start times %v %v", rep.coldStart, rep.warmStart)
	}
	md := rep.markdown(o)
	for _, want := range []string{"bare chi", "vs bare chi", "reload under load", "cold compilation cache", "1 WAT middleware", "reference host", "added CPU µs per middleware"} {
		if !strings.Contains(strings.ToLower(md), strings.ToLower(want)) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
