package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestBadgerLoggerTrimsNewlines: Badger ends its formats with "\n"; the
// adapter must not carry it into slog messages (msg="...\n" broke
// `portico logs`).
func TestBadgerLoggerTrimsNewlines(t *testing.T) {
	var buf bytes.Buffer
	l := badgerLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Errorf("Error: %s\n", "disk full")
	l.Warningf("Warning %d\r\n", 2)
	l.Infof("Replaying file id: %d at offset: %d\n", 1, 20)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{`msg="Error: disk full"`, `msg="Warning 2"`, `msg="Replaying file id: 1 at offset: 20"`}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) || strings.Contains(lines[i], `\n`) || !strings.Contains(lines[i], "component=badger") {
			t.Errorf("line %d = %s, want %s and no \\n", i, lines[i], w)
		}
	}
}
