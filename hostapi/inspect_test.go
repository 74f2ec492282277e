package hostapi

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	ctx := context.Background()
	rep, err := Inspect(ctx, "echo", echoWasm(t), newHost(), testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.ABI != "v1.0" || rep.Start != "_initialize" || !slices.Equal(rep.ExportedKinds, []string{KindChannel, KindHook, KindSkill}) || rep.LoadError != "" || rep.MemoryUsed == 0 {
		t.Errorf("echo: %+v", rep)
	}
	if !slices.ContainsFunc(rep.Imports, func(s string) bool { return strings.HasPrefix(s, "portico.input ") }) {
		t.Errorf("imports: %v", rep.Imports)
	}
	bad, err := Inspect(ctx, "badabi", fixture(t, "badabi.wasm"), newHost(), testCacheDir(t))
	if err != nil || !strings.Contains(bad.LoadError, "ABI v2.0") {
		t.Errorf("badabi: %+v %v", bad, err)
	}
	if _, err := Inspect(ctx, "nope", []byte("nope"), newHost(), testCacheDir(t)); !errors.Is(err, ErrNotWasm) {
		t.Errorf("not wasm: %v", err)
	}
}
