package plugin

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/porticohq/portico/core/internal/config"
)

// logLimiter keeps one plugin's log lines within log.plugin_lines_per_second
// and log.plugin_burst. Lines past the limit are dropped and counted; the
// next line let through is preceded by one note saying how many were lost.
type logLimiter struct {
	limits  *atomic.Pointer[config.Log] // the live settings, shared by all plugins
	dropped *atomic.Uint64              // total for the plugin, across reloads

	mu      sync.Mutex
	lim     *rate.Limiter
	pending uint64 // dropped since the last note
}

func newLogLimiter(limits *atomic.Pointer[config.Log], dropped *atomic.Uint64) *logLimiter {
	l := limits.Load()
	return &logLimiter{limits: limits, dropped: dropped, lim: rate.NewLimiter(rate.Limit(l.PluginLinesPerSecond), int(l.PluginBurst))}
}

// allow reports whether a line may be logged now, and how many lines were
// dropped before it (to be noted once).
func (l *logLimiter) allow(now time.Time) (ok bool, droppedBefore uint64) {
	c := l.limits.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, b := rate.Limit(c.PluginLinesPerSecond), int(c.PluginBurst); l.lim.Limit() != r || l.lim.Burst() != b {
		l.lim.SetLimitAt(now, r)
		l.lim.SetBurstAt(now, b)
	}
	if !l.lim.AllowN(now, 1) {
		l.pending++
		l.dropped.Add(1)
		return false, 0
	}
	n := l.pending
	l.pending = 0
	return true, n
}

// log writes one plugin line through the limiter.
func (l *logLimiter) log(ctx context.Context, log *slog.Logger, level slog.Level, msg string) {
	ok, dropped := l.allow(time.Now())
	if !ok || !log.Enabled(ctx, level) {
		return
	}
	if dropped > 0 {
		log.WarnContext(ctx, "plugin log lines dropped: the plugin logs faster than log.plugin_lines_per_second", "dropped", dropped)
	}
	log.Log(ctx, level, msg)
}
