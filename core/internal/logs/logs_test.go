package logs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

func newLogger(size int) (*slog.Logger, *Ring, *bytes.Buffer) {
	var out bytes.Buffer
	ring := NewRing(size)
	return slog.New(NewHandler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}), ring)), ring, &out
}

func TestHandlerAttributesAndFilters(t *testing.T) {
	log, ring, out := newLogger(100)
	ctx := WithSessionID(WithRequestID(context.Background(), "req-1"), "ses-1")
	log.With("module", "http").InfoContext(ctx, "request", "status", 200)
	log.With("plugin", "echo").Warn("guest said", "n", 1)
	log.With("module", "webhook").Error("delivery dead", "error", errors.New("boom"), "took", time.Second)
	log.Debug("quiet")
	log.WithGroup("g").With("a", 1).Info("grouped", "b", 2)
	log.Info("explicit", "request_id", "req-2", "session_id", "ses-2")

	if !strings.Contains(out.String(), "request_id=req-1") || !strings.Contains(out.String(), "session_id=ses-1") {
		t.Errorf("context ids not added to the output:\n%s", out)
	}
	tests := []struct {
		name  string
		f     Filter
		msgs  []string
		total int
	}{
		{"all", Filter{}, []string{"request", "guest said", "delivery dead", "quiet", "grouped", "explicit"}, 6},
		{"warn and above", Filter{MinLevel: slog.LevelWarn, HasLevel: true}, []string{"guest said", "delivery dead"}, 2},
		{"module http", Filter{Modules: []string{"http"}}, []string{"request"}, 1},
		{"module plugin from the plugin attribute", Filter{Modules: []string{"plugin"}}, []string{"guest said"}, 1},
		{"modules gateway and webhook", Filter{Modules: []string{"gateway", "webhook"}}, []string{"delivery dead", "quiet", "grouped", "explicit"}, 4},
		{"session from context", Filter{SessionID: "ses-1"}, []string{"request"}, 1},
		{"session from an attribute", Filter{SessionID: "ses-2"}, []string{"explicit"}, 1},
		{"request", Filter{RequestID: "req-1"}, []string{"request"}, 1},
		{"plugin", Filter{Plugin: "echo"}, []string{"guest said"}, 1},
		{"after seq", Filter{AfterSeq: 4}, []string{"grouped", "explicit"}, 2},
		{"since the future", Filter{Since: time.Now().Add(time.Hour)}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := ring.Query(tt.f, 100)
			var msgs []string
			for _, e := range got {
				msgs = append(msgs, e.Message)
			}
			if strings.Join(msgs, "|") != strings.Join(tt.msgs, "|") || total != tt.total {
				t.Errorf("got %q (total %d), want %q (total %d)", msgs, total, tt.msgs, tt.total)
			}
		})
	}
	es, _ := ring.Query(Filter{}, 100)
	if e := es[0]; e.RequestID != "req-1" || e.SessionID != "ses-1" || e.Module != "http" || e.Attrs["status"] != int64(200) || e.Attrs["module"] != nil {
		t.Errorf("entry %+v", e)
	}
	if e := es[2]; e.Attrs["error"] != "boom" || e.Attrs["took"] != "1s" || e.Level != "ERROR" {
		t.Errorf("entry %+v", e)
	}
	if e := es[4]; e.Attrs["g.a"] != int64(1) || e.Attrs["g.b"] != int64(2) {
		t.Errorf("grouped entry %+v", e)
	}
}

func TestRingKeepsTheNewestAndLimits(t *testing.T) {
	log, ring, _ := newLogger(3)
	for _, m := range []string{"a", "b", "c", "d", "e"} {
		log.Info(m)
	}
	tests := []struct {
		limit int
		want  string
	}{{10, "c d e"}, {2, "d e"}, {1, "e"}}
	for _, tt := range tests {
		got, total := ring.Query(Filter{}, tt.limit)
		var msgs []string
		for _, e := range got {
			msgs = append(msgs, e.Message)
		}
		if strings.Join(msgs, " ") != tt.want || total != 3 {
			t.Errorf("limit %d: %q total %d, want %q total 3", tt.limit, msgs, total, tt.want)
		}
		if got[len(got)-1].Seq != 5 {
			t.Errorf("newest seq %d, want 5", got[len(got)-1].Seq)
		}
	}
}

func TestSubscription(t *testing.T) {
	log, ring, _ := newLogger(10)
	log.Info("old one")
	log.Warn("old two")
	sub := ring.Subscribe(Filter{MinLevel: slog.LevelWarn, HasLevel: true}, 2, 5)
	defer sub.Close()
	log.Info("skipped: below warn")
	log.Warn("new one")
	log.Error("new two: finds the queue full")
	var got []string
	for range 2 {
		got = append(got, (<-sub.Entries()).Message)
	}
	if strings.Join(got, "|") != "old two|new one" {
		t.Errorf("got %q", got)
	}
	if n := sub.TakeDropped(); n != 1 {
		t.Errorf("dropped %d, want 1", n)
	}
	if n := sub.TakeDropped(); n != 0 {
		t.Errorf("dropped again %d, want 0", n)
	}
	sub.Close()
	if ring.Subscribers() != 0 {
		t.Error("subscription not closed")
	}
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		q     string
		ok    bool
		check func(Filter, int) bool
	}{
		{"", true, func(f Filter, n int) bool { return !f.HasLevel && n == DefaultLimit }},
		{"level=warn&limit=7", true, func(f Filter, n int) bool { return f.HasLevel && f.MinLevel == slog.LevelWarn && n == 7 }},
		{"module=http,plugin", true, func(f Filter, n int) bool { return len(f.Modules) == 2 }},
		{"since=5m", true, func(f Filter, n int) bool { return f.Since.Equal(now.Add(-5 * time.Minute)) }},
		{"since=2026-01-02T14:00:00Z", true, func(f Filter, n int) bool { return f.Since.Equal(now.Add(-time.Hour)) }},
		{"session_id=s&request_id=r&plugin=p", true, func(f Filter, n int) bool { return f.SessionID == "s" && f.RequestID == "r" && f.Plugin == "p" }},
		{"level=loud", false, nil},
		{"level=info%2B2", false, nil},
		{"module=nope", false, nil},
		{"since=yesterday", false, nil},
		{"since=-5m", false, nil},
		{"limit=0", false, nil},
		{"limit=1001", false, nil},
		{"limit=x", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.q)
			f, n, err := ParseQuery(q, now, 1000)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrQuery) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !tt.check(f, n) {
				t.Errorf("filter %+v limit %d", f, n)
			}
		})
	}
}
