package plugin

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/logs"
)

func TestLogLimiter(t *testing.T) {
	var limits atomic.Pointer[config.Log]
	limits.Store(&config.Log{PluginLinesPerSecond: 1, PluginBurst: 3})
	var total atomic.Uint64
	l := newLogLimiter(&limits, &total)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name    string
		at      time.Duration
		ok      bool
		dropped uint64
	}{
		{"burst 1", 0, true, 0},
		{"burst 2", 0, true, 0},
		{"burst 3", 0, true, 0},
		{"over the burst", 0, false, 0},
		{"still over", 0, false, 0},
		{"refilled: notes the two dropped", time.Second, true, 2},
		{"empty again", time.Second, false, 0},
		{"next token: one dropped", 2 * time.Second, true, 1},
	}
	for _, s := range steps {
		ok, dropped := l.allow(t0.Add(s.at))
		if ok != s.ok || dropped != s.dropped {
			t.Fatalf("%s: allow = %v, %d; want %v, %d", s.name, ok, dropped, s.ok, s.dropped)
		}
	}
	if total.Load() != 3 {
		t.Errorf("total dropped %d, want 3", total.Load())
	}
	// A live change of the limits applies from the next line on.
	limits.Store(&config.Log{PluginLinesPerSecond: 1000, PluginBurst: 1000})
	l.allow(t0.Add(3 * time.Second))
	for i := range 100 {
		if ok, _ := l.allow(t0.Add(4 * time.Second)); !ok {
			t.Fatalf("line %d refused after the limit was raised", i)
		}
	}
}

// A chatty plugin's lines reach the log attributed to it, limited, with one
// note of how many were dropped.
func TestPluginLogAttributedAndLimited(t *testing.T) {
	ring := logs.NewRing(100)
	log := slog.New(logs.NewHandler(slog.NewTextHandler(discard{}, nil), ring))
	m := NewManager(Deps{Logger: log})
	m.logLimits.Store(&config.Log{PluginLinesPerSecond: 0.001, PluginBurst: 5})
	h := &pluginHost{name: "chatty", log: log.With("plugin", "chatty"), logLim: newLogLimiter(&m.logLimits, m.logDropCounter("chatty"))}
	for range 50 {
		h.Log(context.Background(), 1, "hello")
	}
	got, total := ring.Query(logs.Filter{Plugin: "chatty", Modules: []string{"plugin"}}, 100)
	if total != 5 || got[0].Message != "hello" {
		t.Errorf("%d lines reached the log, want the burst of 5: %+v", total, got)
	}
	if n := m.LogLinesDropped()["chatty"]; n != 45 {
		t.Errorf("dropped %d, want 45", n)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
