package hostapi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// BenchmarkBoundary compares the two ways of getting a call's input into a
// Go guest, on raw wazero instances of the same module: "pull" (the guest
// allocates and calls input, ABI v1) and "alloc" (the host calls the
// guest's allocator, writes the input, then calls the guest). The result
// is recorded in docs/RATIONALE.md.
func BenchmarkBoundary(b *testing.B) {
	out := filepath.Join(b.TempDir(), "goalloc.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../testdata/goalloc")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, o)
	}
	wasm, _ := os.ReadFile(out)
	ctx := context.Background()
	r := newRuntime(b)
	p, err := r.Load(ctx, wasm, Options{Name: "goalloc", Host: newHost()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	mod, err := p.rt.InstantiateModule(ctx, p.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close(ctx)
	for _, size := range []int{64, 4096} {
		in := bytes.Repeat([]byte("a"), size)
		c := &call{p: p, input: in}
		cctx := context.WithValue(ctx, callKey{}, c)
		b.Run("pull/"+itoa(size), func(b *testing.B) {
			f := mod.ExportedFunction(ExportSkill)
			var stack [1]uint64
			b.ReportAllocs()
			for b.Loop() {
				c.out = c.out[:0]
				stack[0] = uint64(size)
				if err := f.CallWithStack(cctx, stack[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("alloc/"+itoa(size), func(b *testing.B) {
			alloc, run := mod.ExportedFunction("alloc"), mod.ExportedFunction("skill_at")
			var s1 [1]uint64
			var s2 [2]uint64
			b.ReportAllocs()
			for b.Loop() {
				c.out = c.out[:0]
				s1[0] = uint64(size)
				if err := alloc.CallWithStack(cctx, s1[:]); err != nil {
					b.Fatal(err)
				}
				ptr := uint32(s1[0])
				mod.Memory().Write(ptr, in)
				s2[0], s2[1] = uint64(ptr), uint64(size)
				if err := run.CallWithStack(cctx, s2[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n == 64 {
		return "64B"
	}
	return "4KiB"
}
