package plugin

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/pack"
)

// testPack builds the pack "duo" at version: two skill plugins, duo-a and
// duo-b (skills "duo-a" and "duo-b"), each running the WAT module
// testdata/wasm/<module>.wasm. edit may change the files before parsing.
func testPack(t testing.TB, version, module string, edit func(fstest.MapFS)) *pack.Pack {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", module+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"pack.toml": {Data: []byte(fmt.Sprintf("name = \"duo\"\nversion = %q\ndescription = \"two skills\"\nabi = \"v1.0\"\n"+
			"[[plugins]]\nname = \"duo-a\"\n[[plugins]]\nname = \"duo-b\"\ngrants = [\"kv\"]\n", version))},
	}
	for _, name := range []string{"duo-a", "duo-b"} {
		fsys[name+"/plugin.toml"] = &fstest.MapFile{Data: []byte(fmt.Sprintf("name = %q\nversion = %q\nkinds = [\"skill\"]\n"+
			"[[skills]]\nname = %q\ndescription = \"answers its version\"\n", name, version, name))}
		fsys[name+"/"+name+".wasm"] = &fstest.MapFile{Data: wasm}
	}
	if edit != nil {
		edit(fsys)
	}
	p, err := pack.Parse(fsys, pack.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bare is a config without the embedded plugins, which these tests do not
// need (they take most of a fixture's start).
func bare() *config.Config {
	c := cfg()
	c.Plugin.Embedded = false
	return c
}

func packConfigWith(keys ...ed25519.PublicKey) *config.Config {
	c := cfg()
	for _, k := range keys {
		c.Packs.TrustedKeys = append(c.Packs.TrustedKeys, pack.FormatPublicKey(k))
	}
	return c
}

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := pack.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func invokeString(t testing.TB, m *Manager, skill string) string {
	t.Helper()
	out, _, err := m.Invoke(context.Background(), skill, []byte(`{}`))
	if err != nil {
		t.Fatalf("invoke %s: %v", skill, err)
	}
	return string(out)
}

// TestInstallPackRefused: every bad pack is refused with its error, and
// the running version (v1) keeps answering, its files untouched.
func TestInstallPackRefused(t *testing.T) {
	ctx := context.Background()
	key, other := mustKey(t), mustKey(t)
	f := newFixture(t, nil)
	f.m.d.InstallDir = filepath.Join(t.TempDir(), "plugins")
	f.m.LoadAll(ctx, packConfigWith(key.Public().(ed25519.PublicKey)))
	v1 := testPack(t, "1.0.0", "v1", nil)
	v1.Sign(key)
	if _, err := f.m.InstallPack(ctx, v1); err != nil {
		t.Fatal(err)
	}
	stored := filepath.Join(f.m.d.InstallDir, PacksDir, "duo", "duo-a", "duo-a.wasm")
	before, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}

	signed := func(p *pack.Pack, k ed25519.PrivateKey) *pack.Pack { p.Sign(k); return p }
	tampered := testPack(t, "2.0.0", "v2", nil)
	tampered.Sign(key)
	tamperedFiles := testPack(t, "2.0.0", "v1", nil) // same manifest, other module
	tamperedFiles.Signature = tampered.Signature

	tests := []struct {
		name string
		p    *pack.Pack
		want error
	}{
		{"tampered after signing", tamperedFiles, pack.ErrSignature},
		{"wrong key", signed(testPack(t, "2.0.0", "v2", nil), other), pack.ErrUntrusted},
		{"unsigned", testPack(t, "2.0.0", "v2", nil), pack.ErrUnsigned},
		{"ABI too new", signed(testPack(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["pack.toml"].Data = []byte("name = \"duo\"\nversion = \"2.0.0\"\nabi = \"v1.99\"\n[[plugins]]\nname = \"duo-a\"\n[[plugins]]\nname = \"duo-b\"\n")
		}), key), pack.ErrABI},
		{"module does not load", signed(testPack(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["duo-b/duo-b.wasm"] = &fstest.MapFile{Data: []byte("not wasm")}
		}), key), ErrInvalid},
		{"required grant missing", signed(testPack(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["duo-b/plugin.toml"].Data = append(m["duo-b/plugin.toml"].Data, "[capabilities]\nrequired = [\"kv\"]\n"...)
		}), key), ErrInvalid},
		{"skill taken", signed(testPack(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["duo-b/plugin.toml"].Data = []byte("name = \"duo-b\"\nversion = \"2.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"echo\"\ndescription = \"x\"\n")
		}), key), ErrConflict},
		{"plugin name taken", signed(testPack(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["pack.toml"].Data = []byte("name = \"duo\"\nversion = \"2.0.0\"\nabi = \"v1.0\"\n[[plugins]]\nname = \"duo-a\"\n[[plugins]]\nname = \"echo\"\n")
			m["echo/plugin.toml"] = &fstest.MapFile{Data: []byte("name = \"echo\"\nversion = \"2.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"echo2\"\ndescription = \"x\"\n")}
			m["echo/echo.wasm"] = m["duo-a/duo-a.wasm"]
			delete(m, "duo-b/plugin.toml")
			delete(m, "duo-b/duo-b.wasm")
		}), key), ErrConflict},
		{"middleware", signed(testPack(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["duo-b/plugin.toml"].Data = []byte("name = \"duo-b\"\nversion = \"2.0.0\"\nkinds = [\"middleware\"]\n")
		}), key), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.m.InstallPack(ctx, tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			t.Log(err)
			for _, skill := range []string{"duo-a", "duo-b"} {
				if got := invokeString(t, f.m, skill); got != "v1" {
					t.Errorf("%s answers %q after a refused upgrade, want v1", skill, got)
				}
			}
			if ps := f.m.Packs(); len(ps) != 1 || ps[0].Version != "1.0.0" {
				t.Errorf("packs = %+v", ps)
			}
			if after, err := os.ReadFile(stored); err != nil || string(after) != string(before) {
				t.Errorf("stored module changed: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(f.m.d.InstallDir, PacksDir)); len(entries) != 1 {
				t.Errorf("install dir holds %d entries, want 1", len(entries))
			}
		})
	}
}

// TestPackUpgradeUnderLoad upgrades v1 -> v2 (and back, a few times)
// while callers invoke both
// skills: no call fails, every snapshot shows the pack's plugins at one
// version, and afterwards every call answers v2.
func TestPackUpgradeUnderLoad(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.d.InstallDir = filepath.Join(t.TempDir(), "plugins")
	f.m.LoadAll(ctx, bare())
	if _, err := f.m.InstallPack(ctx, testPack(t, "1.0.0", "v1", nil)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, v2s atomic.Int64
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			skill := []string{"duo-a", "duo-b"}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, _, err := f.m.Invoke(ctx, skill, []byte(`{}`))
				calls.Add(1)
				switch {
				case err != nil:
					errs <- err
					return
				case string(out) == "v2":
					v2s.Add(1)
				case string(out) != "v1":
					errs <- fmt.Errorf("answer %q", out)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // every snapshot holds one version of the pack
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			versions := map[string]bool{}
			for _, i := range f.m.List() {
				if i.Pack != nil {
					versions[i.Pack.Version+"/"+i.Version] = true
				}
			}
			if len(versions) != 1 {
				errs <- fmt.Errorf("one snapshot shows the pack at %v", versions)
				return
			}
		}
	}()
	for calls.Load() < 200 { // let the load run before and after the swap
		runtime.Gosched()
	}
	// Several upgrades, back and forth, widen the window for a dropped
	// call; the last one is to v2.
	var info PackInfo
	for i := 1; i <= 7; i++ {
		module := map[bool]string{true: "v2", false: "v1"}[i%2 == 1]
		var err error
		if info, err = f.m.InstallPack(ctx, testPack(t, fmt.Sprintf("%d.0.0", i+1), module, nil)); err != nil {
			t.Fatal(err)
		}
		for start := calls.Load(); calls.Load() < start+100; {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if info.Version != "8.0.0" || info.Previous != "7.0.0" {
		t.Errorf("info = %+v", info)
	}
	if v2s.Load() == 0 {
		t.Error("no call answered v2")
	}
	for _, skill := range []string{"duo-a", "duo-b"} {
		if got := invokeString(t, f.m, skill); got != "v2" {
			t.Errorf("%s answers %q, want v2", skill, got)
		}
		i, _ := f.m.Get(skill)
		if i.Pack == nil || *i.Pack != (PackRef{"duo", "8.0.0"}) {
			t.Errorf("%s: pack = %+v", skill, i.Pack)
		}
	}
}

// TestPackRestartAndUninstall: an installed pack loads again in a new
// manager; uninstalling removes its plugins and files.
func TestPackRestartAndUninstall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	dir := filepath.Join(t.TempDir(), "plugins")
	f.m.d.InstallDir = dir
	f.m.LoadAll(ctx, bare())
	if _, err := f.m.InstallPack(ctx, testPack(t, "1.0.0", "v1", nil)); err != nil {
		t.Fatal(err)
	}
	f.m.Close(ctx)

	f2 := newFixture(t, f.st)
	f2.m.d.InstallDir = dir
	f2.m.LoadAll(ctx, bare())
	if got := invokeString(t, f2.m, "duo-b"); got != "v1" {
		t.Errorf("after restart duo-b answers %q", got)
	}
	if ps := f2.m.Packs(); len(ps) != 1 || ps[0].Name != "duo" || ps[0].Trusted || ps[0].Source != filepath.Join(dir, PacksDir, "duo") {
		t.Errorf("packs = %+v", ps)
	}
	// A pack's plugins are not single installs: they go with the pack.
	if err := f2.m.Uninstall(ctx, "duo-a", false); !errors.Is(err, ErrConflict) {
		t.Errorf("uninstall a pack's plugin: %v", err)
	}
	if err := f2.m.UninstallPack(ctx, "duo", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f2.m.Invoke(ctx, "duo-a", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("after uninstall: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, PacksDir, "duo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pack dir still there: %v", err)
	}
	if err := f2.m.UninstallPack(ctx, "duo", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("second uninstall: %v", err)
	}
}

// TestPackGrants: requested grants apply only to a pack signed by a
// trusted key and only with packs.grant_requested on.
func TestPackGrants(t *testing.T) {
	ctx := context.Background()
	key := mustKey(t)
	needsKV := func(m fstest.MapFS) {
		m["duo-b/plugin.toml"].Data = append(m["duo-b/plugin.toml"].Data, "[capabilities]\nrequired = [\"kv\"]\n"...)
	}
	tests := []struct {
		name    string
		sign    bool
		trust   bool
		request bool
		table   bool // a [[plugins]] table grants kv
		ok      bool
	}{
		{"unsigned, grant_requested", false, false, true, false, false},
		{"signed by an untrusted key, grant_requested", true, false, true, false, false},
		{"trusted, grant_requested off", true, true, false, false, false},
		{"trusted, grant_requested", true, true, true, false, true},
		{"unsigned, the operator's table grants", false, false, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			c := bare()
			if tt.trust {
				c = packConfigWith(key.Public().(ed25519.PublicKey))
				c.Plugin.Embedded = false
			}
			c.Packs.GrantRequested = tt.request
			if tt.table {
				c.Plugins = append(c.Plugins, config.PluginEntry{Name: "duo-b", Grants: []string{"kv"}})
			}
			f.m.LoadAll(ctx, c)
			p := testPack(t, "1.0.0", "v1", needsKV)
			if tt.sign {
				p.Sign(key)
			}
			_, err := f.m.InstallPack(ctx, p)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err == nil {
				if i, _ := f.m.Get("duo-b"); len(i.Granted) != 1 || i.Granted[0] != "kv" {
					t.Errorf("granted = %v", i.Granted)
				}
			}
		})
	}
}
