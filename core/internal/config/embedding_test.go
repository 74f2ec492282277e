package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBaseLayer(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.toml")
	if err := os.WriteFile(file, []byte("[log]\nlevel = \"warn\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []byte("listen = \"127.0.0.1:0\"\n[log]\nlevel = \"debug\"\nformat = \"json\"\n[[plugins]]\nname = \"inventory\"\ngrants = [\"acme.stock\", \"kv\"]\n")
	tests := []struct {
		name     string
		src      Sources
		level    string
		format   string
		listen   string
		sourceOf map[string]string
	}{
		{"base alone", Sources{Base: base, Flags: map[string]string{"data_dir": t.TempDir()}}, "debug", "json", "127.0.0.1:0",
			map[string]string{"log.level": FromBase, "log.format": FromBase, "plugins": FromBase}},
		{"file over base", Sources{Base: base, File: file}, "warn", "json", "127.0.0.1:0",
			map[string]string{"log.level": FromFile, "log.format": FromBase}},
		{"flags over both", Sources{Base: base, File: file, Flags: map[string]string{"log.level": "error"}}, "error", "json", "127.0.0.1:0",
			map[string]string{"log.level": FromFlag}},
		{"no base", Sources{File: file}, "warn", "text", "127.0.0.1:3120", map[string]string{"log.format": FromDefault}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewManager(tt.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			snap := m.Current()
			c := snap.Config
			if c.Log.Level != tt.level || c.Log.Format != tt.format || c.Listen != tt.listen {
				t.Errorf("got level %s format %s listen %s, want %s %s %s", c.Log.Level, c.Log.Format, c.Listen, tt.level, tt.format, tt.listen)
			}
			for k, want := range tt.sourceOf {
				if got := snap.Sources[k]; got != want {
					t.Errorf("source of %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestBaseLayerErrors(t *testing.T) {
	tests := []struct {
		name, base, want string
	}{
		{"unknown key", "nonsense = 1\n", "nonsense (from base)"},
		{"bad value", "[log]\nlevel = \"loud\"\n", "log.level (from base)"},
		{"not TOML", "[log\n", "config file"},
		{"unknown plain grant", "[[plugins]]\nname = \"x\"\ngrants = [\"teleport\"]\n", "unknown capability \"teleport\""},
		{"malformed dotted grant", "[[plugins]]\nname = \"x\"\ngrants = [\"Acme.Stock\"]\n", "unknown capability \"Acme.Stock\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewManager(Sources{Base: []byte(tt.base), Flags: map[string]string{"data_dir": t.TempDir()}}, nil)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewManager = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestKnownCapability(t *testing.T) {
	for name, want := range map[string]bool{
		"kv": true, "llm": true, "acme.lookup": true, "acme.stock.read": true,
		"teleport": false, "": false, "Acme.lookup": false, ".lookup": false, "acme.": false,
	} {
		if got := KnownCapability(name); got != want {
			t.Errorf("KnownCapability(%q) = %v, want %v", name, got, want)
		}
	}
}
