package plugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/plugins"
)

// BenchmarkStartTenPlugins measures a gateway start's plugin loading: ten
// plugins (each the Go echo module, ~1.8 MB) loaded concurrently, with a
// warm compilation cache and with an empty one.
func BenchmarkStartTenPlugins(b *testing.B) {
	wasm, err := plugins.FS.ReadFile("echo/echo.wasm")
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	var entries []config.PluginEntry
	for i := range 10 {
		name := fmt.Sprintf("echo%d", i)
		dir := filepath.Join(root, name)
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, ManifestFile), []byte("name = \""+name+"\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \""+name+"\"\ndescription = \"echo\"\n"), 0o600)
		os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o600)
		entries = append(entries, config.PluginEntry{Name: name, Path: dir})
	}
	c := config.Default()
	c.Plugin.Embedded = false
	c.Plugins = entries
	st, _ := store.OpenMemory()
	defer st.Close()
	start := func(b *testing.B, cacheDir string) {
		rt, err := hostapi.NewRuntime(cacheDir)
		if err != nil {
			b.Fatal(err)
		}
		m := NewManager(Deps{Runtime: rt, Store: st, Bus: events.New(), Audit: audit.New(st), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		m.LoadAll(context.Background(), c)
		for _, i := range m.List() {
			if i.Status != Active {
				b.Fatalf("%s: %s %s", i.Name, i.Status, i.LastError)
			}
		}
		m.Close(context.Background())
		rt.Close(context.Background())
	}
	b.Run("warm-cache", func(b *testing.B) {
		dir := b.TempDir()
		start(b, dir) // fill the cache
		b.ResetTimer()
		for b.Loop() {
			start(b, dir)
		}
	})
	b.Run("cold-cache", func(b *testing.B) {
		for b.Loop() {
			start(b, b.TempDir())
		}
	})
}
