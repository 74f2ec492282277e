package hostapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/porticohq/portico/internal/testtool"
)

func lookupFn(ctx context.Context, in []byte) ([]byte, error) {
	switch string(in) {
	case `"missing"`:
		return nil, fmt.Errorf("key %s: %w", in, ErrNotFound)
	case `"broken"`:
		return nil, errors.New("backend down")
	case `"quota"`:
		return nil, fmt.Errorf("lookup: %w", ErrQuota)
	}
	return append([]byte("found "), in...), nil
}

func TestAddHostFuncsValidates(t *testing.T) {
	ok := HostFunc{Module: "acme", Name: "lookup", Capability: "acme.lookup", Fn: lookupFn}
	with := func(change func(*HostFunc)) HostFunc {
		f := ok
		change(&f)
		return f
	}
	tests := []struct {
		name string
		fns  []HostFunc
		want string // "" for success
	}{
		{"valid", []HostFunc{ok}, ""},
		{"two in one module", []HostFunc{ok, with(func(f *HostFunc) { f.Name = "store" })}, ""},
		{"reserved portico", []HostFunc{with(func(f *HostFunc) { f.Module = "portico" })}, "reserved"},
		{"reserved wasi", []HostFunc{with(func(f *HostFunc) { f.Module = "wasi_snapshot_preview1" })}, "reserved"},
		{"reserved http_handler", []HostFunc{with(func(f *HostFunc) { f.Module = "http_handler" })}, "reserved"},
		{"bad module", []HostFunc{with(func(f *HostFunc) { f.Module = "Acme!" })}, "module"},
		{"empty module", []HostFunc{with(func(f *HostFunc) { f.Module = "" })}, "module"},
		{"bad name", []HostFunc{with(func(f *HostFunc) { f.Name = "look up" })}, "name"},
		{"built-in capability", []HostFunc{with(func(f *HostFunc) { f.Capability = "kv" })}, "capability"},
		{"empty capability", []HostFunc{with(func(f *HostFunc) { f.Capability = "" })}, "capability"},
		{"nil Fn", []HostFunc{with(func(f *HostFunc) { f.Fn = nil })}, "Fn is nil"},
		{"duplicate", []HostFunc{ok, ok}, "defined twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRuntime("")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			err = r.AddHostFuncs(tt.fns...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("AddHostFuncs: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrHostFunc) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AddHostFuncs = %v, want ErrHostFunc mentioning %q", err, tt.want)
			}
			if caps := r.ExtensionCapabilities(); len(caps) != 0 {
				t.Errorf("a refused batch added %v", caps)
			}
		})
	}
}

func TestAddHostFuncsAfterLoad(t *testing.T) {
	r := newRuntime(t)
	if _, err := load(t, r, "ok.wasm", Options{}); err != nil {
		t.Fatal(err)
	}
	err := r.AddHostFuncs(HostFunc{Module: "acme", Name: "lookup", Capability: "acme.lookup", Fn: lookupFn})
	if !errors.Is(err, ErrHostFunc) {
		t.Fatalf("AddHostFuncs after a load = %v, want ErrHostFunc", err)
	}
}

func TestExtensionHostFunc(t *testing.T) {
	r, err := NewRuntime(testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	if err := r.AddHostFuncs(HostFunc{Module: "test", Name: "lookup", Capability: "test.lookup", Fn: lookupFn}); err != nil {
		t.Fatal(err)
	}
	if got := r.ExtensionCapabilities(); !slices.Equal(got, []string{"test.lookup"}) {
		t.Errorf("ExtensionCapabilities = %v", got)
	}
	granted := newHost()
	p, err := load(t, r, "ext.wasm", Options{Name: "granted", Host: granted, Grants: []string{"test.lookup"}})
	if err != nil {
		t.Fatal(err)
	}
	ungrantedHost := newHost()
	q, err := load(t, r, "ext.wasm", Options{Name: "ungranted", Host: ungrantedHost, Grants: []string{"kv"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		p      *Plugin
		input  string
		code   int32
		result string
	}{
		{"reply", p, `"apples"`, int32(len(`found "apples"`)), `found "apples"`},
		{"not found", p, `"missing"`, ResNotFound, `key "missing": not found`},
		{"error", p, `"broken"`, ResError, "backend down"},
		{"quota", p, `"quota"`, ResTooLarge, "lookup: quota exceeded"},
		{"not granted", q, `"apples"`, ResDenied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.p.Call(context.Background(), envelope("ext", []byte(tt.input)))
			if err != nil {
				t.Fatal(err)
			}
			if len(out) < 4 {
				t.Fatalf("reply %q is too short", out)
			}
			code, result := int32(binary.LittleEndian.Uint32(out)), string(out[4:])
			if code != tt.code || result != tt.result {
				t.Errorf("got %d %q, want %d %q", code, result, tt.code, tt.result)
			}
		})
	}
	if !slices.Equal(ungrantedHost.denied, []string{"test.lookup"}) || len(granted.denied) != 0 {
		t.Errorf("denials reported: granted %v, ungranted %v; want only the ungranted one's", granted.denied, ungrantedHost.denied)
	}
}

func TestExtensionImportMissing(t *testing.T) {
	tests := []struct {
		name string
		fns  []HostFunc
		want string
	}{
		{"no host functions", nil, "imports test.lookup, which this host does not provide (host functions added by the embedding program: none)"},
		{"another one", []HostFunc{{Module: "test", Name: "other", Capability: "test.other", Fn: lookupFn}}, "(host functions added by the embedding program: test.other)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRuntime(testCacheDir(t))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			if err := r.AddHostFuncs(tt.fns...); err != nil {
				t.Fatal(err)
			}
			_, err = r.Load(context.Background(), fixture(t, "ext.wasm"), Options{Name: "ext", Host: newHost()})
			if !errors.Is(err, ErrABI) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want ErrABI containing %q", err, tt.want)
			}
		})
	}
}

// TestExtensionFixtureMatchesSource rebuilds ext.wat with wat2wasm.
func TestExtensionFixtureMatchesSource(t *testing.T) {
	testtool.Need(t, "Debian's wabt", "wat2wasm")
	out := filepath.Join(t.TempDir(), "ext.wasm")
	if b, err := exec.Command("wat2wasm", filepath.Join("..", "testdata", "wasm", "ext.wat"), "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	fresh, _ := os.ReadFile(out)
	if !bytes.Equal(fresh, fixture(t, "ext.wasm")) {
		t.Error("testdata/wasm/ext.wasm differs from a fresh build of ext.wat; rebuild it with wat2wasm")
	}
}
