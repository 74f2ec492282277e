package hostapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// echoWasm is the Go-compiled echo skill (plugins/echo), built with
// -buildmode=c-shared and started with _initialize.
func echoWasm(t testing.TB) []byte {
	b, err := os.ReadFile(filepath.Join("..", "plugins", "echo", "echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoEcho(t *testing.T) {
	r := newRuntime(t)
	p, err := r.Load(context.Background(), echoWasm(t), Options{Name: "echo", Host: newHost()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, payload := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte("x"), 100_000)} {
		out, err := p.Call(context.Background(), envelope("echo", payload))
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("echo %d bytes: got %d bytes, %v", len(payload), len(out), err)
		}
	}
	if _, err := p.Call(context.Background(), []byte{0xff}); !errors.Is(err, ErrGuest) {
		t.Errorf("malformed envelope: %v", err)
	}
}

// BenchmarkSkillCall measures a warm call of the Go echo skill with a
// 64-byte payload through the pool, the envelope and the deadline, beside
// the floor: the same export called straight on a wazero instance.
func BenchmarkSkillCall(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b)
	p, err := r.Load(ctx, echoWasm(b), Options{Name: "echo", Host: newHost()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	in := envelope("echo", bytes.Repeat([]byte("a"), 64))

	b.Run("raw-wazero", func(b *testing.B) {
		rt, err := r.tier(ctx, tierKey{pages: uint32(p.opts.MemoryLimitBytes / 65536)})
		if err != nil {
			b.Fatal(err)
		}
		mod, err := rt.InstantiateModule(ctx, p.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
		if err != nil {
			b.Fatal(err)
		}
		defer mod.Close(ctx)
		f := mod.ExportedFunction(ExportSkill)
		c := &call{p: p, input: in}
		cctx := context.WithValue(ctx, callKey{}, c)
		var stack [1]uint64
		b.ReportAllocs()
		for b.Loop() {
			c.out = c.out[:0]
			stack[0] = uint64(len(in))
			if err := f.CallWithStack(cctx, stack[:]); err != nil || stack[0] != 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("portico", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Call(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoad measures loading the ~1.8 MB Go echo module with a warm
// compilation cache: compile (from cache), checks, one instance.
func BenchmarkLoad(b *testing.B) {
	r := newRuntime(b)
	wasm := echoWasm(b)
	for b.Loop() {
		p, err := r.Load(context.Background(), wasm, Options{Name: "echo", Host: newHost()})
		if err != nil {
			b.Fatal(err)
		}
		p.Close(context.Background())
	}
}

// BenchmarkFirstParty measures a warm call of each first-party plugin
// through the pool, envelope and deadline.
func BenchmarkFirstParty(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b)
	for _, c := range []struct{ name, skill, input string }{
		{"echo", "echo", `"` + strings.Repeat("a", 62) + `"`},
		{"notes", "recall", `{"key":"k"}`},
		{"audit", "audit_log", `{"limit":5}`},
		{"summarize", "summarize", `{"text":"One sentence. Another one, a little longer. A third.","max_chars":40}`},
		{"httpget", "http_get", `{"url":"https://example.com/"}`},
	} {
		wasm, err := os.ReadFile(filepath.Join("..", "plugins", c.name, c.name+".wasm"))
		if err != nil {
			b.Fatal(err)
		}
		h := newHost()
		h.kv["note/k"] = []byte("milk")
		p, err := r.Load(ctx, wasm, Options{Name: c.name, Host: h, Grants: []string{CapKV}})
		if err != nil {
			b.Fatal(err)
		}
		in := envelope(c.skill, []byte(c.input))
		b.Run(fmt.Sprintf("%s/%dKiB", c.name, len(wasm)>>10), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Call(ctx, in); err != nil && c.name != "httpget" {
					b.Fatal(err) // httpget answers "refused" on the fake host: still a full call
				}
			}
		})
		p.Close(ctx)
	}
}
