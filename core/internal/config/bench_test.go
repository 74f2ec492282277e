package config

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkReload measures applying a changed file: read, parse, check,
// decode, validate and swap.
func BenchmarkReload(b *testing.B) {
	path := filepath.Join(b.TempDir(), "portico.toml")
	os.WriteFile(path, []byte("[events]\nbuffer = 1\n"), 0o600)
	m, err := NewManager(Sources{File: path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		i++
		b.StopTimer()
		os.WriteFile(path, []byte("[events]\nbuffer = "+strconv.Itoa(i)+"\n"), 0o600)
		b.StartTimer()
		if err := m.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileChangeApplied measures a file write until the new snapshot
// is in force, through the watcher, with a 10ms debounce (the gateway's
// default is 100ms; the rest is the same).
func BenchmarkFileChangeApplied(b *testing.B) {
	path := filepath.Join(b.TempDir(), "portico.toml")
	os.WriteFile(path, []byte("[events]\nbuffer = 1\n"), 0o600)
	m, err := NewManager(Sources{File: path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	applied := make(chan struct{}, 1)
	m.Subscribe(func(Change) { applied <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Watch(ctx, 10*time.Millisecond); err != nil {
		b.Fatal(err)
	}
	i := 1
	for b.Loop() {
		i++
		os.WriteFile(path, []byte("[events]\nbuffer = "+strconv.Itoa(i)+"\n"), 0o600)
		<-applied
	}
}

func BenchmarkCurrent(b *testing.B) {
	m, err := NewManager(Sources{Flags: map[string]string{"data_dir": b.TempDir()}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m.Config() == nil {
				b.Fatal("nil config")
			}
		}
	})
}
