package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/porticohq/portico/core/internal/config"
)

func TestInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.d.InstallDir = filepath.Join(t.TempDir(), "plugins")
	f.m.LoadAll(ctx, cfg())
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	manifest := []byte("name = \"memo\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"memo\"\ndescription = \"n\"\n")

	bad := []struct {
		name             string
		manifest, module []byte
		want             error
	}{
		{"not wasm", manifest, []byte("nope"), ErrInvalid},
		{"bad manifest", []byte("name = 1"), read("ok.wasm"), ErrInvalid},
		{"hostile start", manifest, read("starttrap.wasm"), ErrInvalid},
		{"embedded name", []byte("name = \"echo\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"e2\"\ndescription = \"n\"\n"), read("ok.wasm"), ErrConflict},
		{"skill taken", []byte("name = \"thief\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"echo\"\ndescription = \"n\"\n"), read("ok.wasm"), ErrConflict},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.m.Install(ctx, tt.manifest, tt.module); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			entries, _ := os.ReadDir(f.m.d.InstallDir)
			for _, e := range entries {
				t.Errorf("a refused install left %s behind", e.Name())
			}
		})
	}

	info, err := f.m.Install(ctx, manifest, read("ok.wasm"))
	if err != nil || info.Status != Active {
		t.Fatalf("install: %+v %v", info, err)
	}
	if out, _, err := f.m.Invoke(ctx, "memo", []byte("hi")); err != nil || string(out[len(out)-2:]) != "hi" {
		t.Fatalf("invoke installed: %q %v", out, err)
	}
	// It survives a restart: a new manager finds it in the install dir.
	f2 := newFixture(t, f.st)
	f2.m.d.InstallDir = f.m.d.InstallDir
	f2.m.LoadAll(ctx, cfg())
	if i, err := f2.m.Get("memo"); err != nil || i.Status != Active {
		t.Fatalf("after restart: %+v %v", i, err)
	}
	f2.m.Close(ctx)
	// Upgrade: a new version replaces the old.
	up := []byte("name = \"memo\"\nversion = \"1.1.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"memo\"\ndescription = \"n\"\n")
	if i, err := f.m.Install(ctx, up, read("ok.wasm")); err != nil || i.Version != "1.1.0" {
		t.Fatalf("upgrade: %+v %v", i, err)
	}
	// Data survives uninstall unless purged.
	f.st.Set(ctx, []byte(kvPrefix("memo")+"k"), []byte("v"))
	if err := f.m.Uninstall(ctx, "echo", false); !errors.Is(err, ErrConflict) {
		t.Errorf("uninstall embedded: %v", err)
	}
	if err := f.m.Uninstall(ctx, "memo", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.Invoke(ctx, "memo", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("uninstalled skill: %v", err)
	}
	if _, err := f.st.Get(ctx, []byte(kvPrefix("memo")+"k")); err != nil {
		t.Errorf("data lost without purge: %v", err)
	}
	f.m.Install(ctx, manifest, read("ok.wasm"))
	if err := f.m.Uninstall(ctx, "memo", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Get(ctx, []byte(kvPrefix("memo")+"k")); err == nil {
		t.Error("purge kept the data")
	}
	if _, err := os.Stat(filepath.Join(f.m.d.InstallDir, "memo")); !os.IsNotExist(err) {
		t.Errorf("files left after uninstall: %v", err)
	}
	if err := f.m.Uninstall(ctx, "memo", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("uninstall twice: %v", err)
	}
}

func TestConfigTableGrantsAnInstalledPlugin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.d.InstallDir = filepath.Join(t.TempDir(), "plugins")
	wasm, _ := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", "ungranted.wasm"))
	manifest := []byte("name = \"writer\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"writer\"\ndescription = \"n\"\n[capabilities]\noptional = [\"kv\"]\n")
	f.m.LoadAll(ctx, cfg())
	if _, err := f.m.Install(ctx, manifest, wasm); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := f.m.Invoke(ctx, "writer", nil); len(out) != 4 || out[0] == 0 {
		t.Fatalf("write without a grant: %v", out)
	}
	// A [[plugins]] table without a path grants the installed plugin.
	f.m.Apply(ctx, cfg(config.PluginEntry{Name: "writer", Grants: []string{"kv"}}))
	if out, _, err := f.m.Invoke(ctx, "writer", nil); err != nil || len(out) != 4 || out[0] != 0 {
		t.Fatalf("write with the grant: %v %v", out, err)
	}
}
