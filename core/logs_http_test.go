package core_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/logs"
)

type logPage struct {
	Entries []logs.Entry `json:"entries"`
	Total   int          `json:"total"`
	Limit   int          `json:"limit"`
}

func (g *gw) logs(t *testing.T, query string) logPage {
	t.Helper()
	r := g.do(t, "GET", g.url+"/api/v1/logs?"+query, "")
	if r.status != 200 {
		t.Fatalf("GET /api/v1/logs?%s: %d %s", query, r.status, r.body)
	}
	var p logPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLogsAPI(t *testing.T) {
	g := start(t, small)
	chat := g.do(t, "POST", g.url+"/api/v1/chat", `{"text":"/echo hello"}`)
	if chat.status != 201 {
		t.Fatalf("chat: %d %s", chat.status, chat.body)
	}
	session, _ := chat.json(t)["session_id"].(string)
	if session == "" {
		t.Fatalf("no session id in %s", chat.body)
	}
	reqID := chat.header.Get("X-Request-Id")
	// The access line is written once the response is: it may come a moment
	// after the client has its answer.
	eventually(t, "the access line of the chat", func() bool { return g.logs(t, "module=http&request_id="+reqID).Total > 0 })

	has := func(p logPage, msg string) bool {
		for _, e := range p.Entries {
			if e.Message == msg {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name  string
		query string
		check func(p logPage) bool
	}{
		{"the start is logged", "module=gateway", func(p logPage) bool { return has(p, "portico serving") }},
		{"access lines are module http with their request id", "module=http&request_id=" + reqID, func(p logPage) bool {
			return has(p, "request") && p.Entries[0].RequestID == reqID && p.Entries[0].Attrs["path"] == "/api/v1/chat"
		}},
		{"the turn names its session", "session_id=" + session, func(p logPage) bool {
			return has(p, "turn") && p.Entries[0].SessionID == session && p.Entries[0].Module == "session"
		}},
		{"level filters", "level=error", func(p logPage) bool {
			for _, e := range p.Entries {
				if e.Level != "ERROR" {
					return false
				}
			}
			return true
		}},
		{"limit keeps the newest, newest last", "limit=2", func(p logPage) bool {
			return len(p.Entries) == 2 && p.Limit == 2 && p.Total >= 2 && p.Entries[0].Seq < p.Entries[1].Seq
		}},
		{"since a duration", "since=1h", func(p logPage) bool { return has(p, "portico serving") }},
		{"since a time in the future", "since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), func(p logPage) bool {
			return len(p.Entries) == 0 && p.Total == 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := g.logs(t, tt.query); !tt.check(p) {
				t.Errorf("%s: %+v", tt.query, p)
			}
		})
	}
	for _, q := range []string{"level=loud", "module=nope", "since=yesterday", "limit=0", "limit=99999999"} {
		t.Run("bad "+q, func(t *testing.T) {
			for _, path := range []string{"/api/v1/logs?", "/api/v1/logs/stream?"} {
				r := g.do(t, "GET", g.url+path+q, "")
				if r.status != 400 || r.errCode(t) != "bad_request" {
					t.Errorf("%s%s: %d %s", path, q, r.status, r.body)
				}
			}
		})
	}
	// Credentials never reach the log lines the API serves.
	for _, e := range g.logs(t, "limit=10000").Entries {
		if b, _ := json.Marshal(e); strings.Contains(string(b), g.key) {
			t.Errorf("the admin key is in a log line: %s", b)
		}
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data string }

// readSSE sends the events of an SSE body to a channel until it ends.
func readSSE(body *bufio.Scanner) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		var ev sseEvent
		for body.Scan() {
			line := body.Text()
			switch {
			case line == "":
				if ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func TestLogStream(t *testing.T) {
	g := start(t, small)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/api/v1/logs/stream?module=http&level=info", nil)
	req.Header.Set("X-API-Key", g.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := readSSE(bufio.NewScanner(resp.Body))
	// A request made now is logged, and its line reaches the stream.
	r := do(t, "GET", g.url+"/api/v1/nothing-here", "")
	want := r.header.Get("X-Request-Id")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended early")
			}
			var e logs.Entry
			if err := json.Unmarshal([]byte(ev.data), &e); err != nil || ev.event != "log" || ev.id == "" {
				t.Fatalf("bad event %+v: %v", ev, err)
			}
			if e.Module != "http" {
				t.Fatalf("filter let through %+v", e)
			}
			if e.RequestID == want && e.Attrs["status"] == float64(404) {
				cancel() // the stream ends with the request
				for range events {
				}
				return
			}
		case <-deadline:
			t.Fatal("the logged line did not reach the stream")
		}
	}
}
