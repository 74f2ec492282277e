package logs

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrQuery marks a query parameter that is not understood.
var ErrQuery = errors.New("bad log query")

// DefaultLimit is how many lines a query returns when it names no limit.
const DefaultLimit = 100

// ParseQuery reads a Filter and a limit from URL parameters: level
// (debug, info, warn or error: that level and above), module (one or a
// comma-separated list of Modules), since (an RFC 3339 time, or a Go
// duration such as 5m meaning that long before now), session_id,
// request_id, plugin and limit (1 to maxLimit; DefaultLimit when absent).
func ParseQuery(q url.Values, now time.Time, maxLimit int) (Filter, int, error) {
	var f Filter
	if s := q.Get("level"); s != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(s)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s)) {
			return f, 0, fmt.Errorf("%w: level must be debug, info, warn or error (got %q)", ErrQuery, s)
		}
		f.MinLevel, f.HasLevel = l, true
	}
	if s := q.Get("module"); s != "" {
		for _, m := range strings.Split(s, ",") {
			m = strings.TrimSpace(m)
			if !slices.Contains(Modules, m) {
				return f, 0, fmt.Errorf("%w: module %q is not one of %s", ErrQuery, m, strings.Join(Modules, ", "))
			}
			f.Modules = append(f.Modules, m)
		}
	}
	if s := q.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			f.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			f.Since = now.Add(-d)
		} else {
			return f, 0, fmt.Errorf("%w: since must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration (5m) (got %q)", ErrQuery, s)
		}
	}
	f.SessionID, f.RequestID, f.Plugin = q.Get("session_id"), q.Get("request_id"), q.Get("plugin")
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return f, 0, fmt.Errorf("%w: limit must be a whole number from 1 to %d (log.ring_size) (got %q)", ErrQuery, maxLimit, s)
		}
		limit = n
	}
	return f, min(limit, maxLimit), nil
}
