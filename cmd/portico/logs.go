package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func logsCmd(g *globals, stdout io.Writer) *cobra.Command {
	o := &adminOpts{}
	var f struct {
		follow                                  bool
		level, module, since, sessionID, plugin string
		limit                                   int
	}
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the running gateway's recent log lines; -f follows new ones until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.limit < 1 {
				return fmt.Errorf("--limit must be at least 1, got %d", f.limit)
			}
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"level": f.level, "module": f.module, "since": f.since, "session_id": f.sessionID, "plugin": f.plugin} {
				if v != "" {
					q.Set(k, v)
				}
			}
			ctx := cmd.Context()
			if !f.follow {
				q.Set("limit", fmt.Sprint(f.limit))
				var raw json.RawMessage
				if err := r.call(ctx, "GET", "/api/v1/logs?"+q.Encode(), nil, &raw); err != nil {
					return err
				}
				if o.json {
					return printJSON(stdout, raw)
				}
				var out struct {
					Entries []map[string]any `json:"entries"`
					Total   int              `json:"total"`
				}
				if err := json.Unmarshal(raw, &out); err != nil {
					return err
				}
				for _, l := range out.Entries {
					fmt.Fprintln(stdout, logLine(l))
				}
				return nil
			}
			// Like tail -f: a few recent lines first, then new ones.
			backlog := 10
			if cmd.Flags().Changed("limit") {
				backlog = f.limit
			}
			q.Set("limit", fmt.Sprint(backlog))
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return followLogs(ctx, r, "/api/v1/logs/stream?"+q.Encode(), o.json, stdout)
		},
	}
	addAdminFlags(cmd, o)
	fl := cmd.Flags()
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep the stream open and print lines as they are logged")
	fl.StringVar(&f.level, "level", "", "only lines at this level or above: debug, info, warn, error")
	fl.StringVar(&f.module, "module", "", "only lines of these modules, comma-separated (gateway, http, plugin, webhook, config, session, channel, llm, mcp, store, auth)")
	fl.StringVar(&f.plugin, "plugin", "", "only lines of this plugin")
	fl.StringVar(&f.since, "since", "", "only lines since a time (RFC 3339) or a duration ago (10m)")
	fl.StringVar(&f.sessionID, "session", "", "only lines about this session id")
	fl.IntVar(&f.limit, "limit", 100, "at most this many lines (with -f: this many recent lines before the new ones; default 10)")
	return cmd
}

// followLogs reads the server-sent events of the log stream until ctx ends
// or the gateway closes it.
func followLogs(ctx context.Context, r *remote, path string, asJSON bool, stdout io.Writer) error {
	// The stream stays open: no client timeout, ctx ends it.
	stream := *r.client
	stream.Timeout = 0
	resp, err := r.send(ctx, &stream, "GET", path, "", nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []string
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data:"); ok {
			data = append(data, strings.TrimPrefix(d, " "))
			continue
		}
		if e, ok := strings.CutPrefix(line, "event:"); ok {
			event = strings.TrimSpace(e)
			continue
		}
		if line != "" || len(data) == 0 {
			continue // ids and keep-alive comments
		}
		payload := strings.Join(data, "\n")
		ev := event
		data, event = data[:0], ""
		if asJSON {
			fmt.Fprintln(stdout, payload)
			continue
		}
		var l map[string]any
		if err := json.Unmarshal([]byte(payload), &l); err != nil {
			fmt.Fprintln(stdout, payload)
			continue
		}
		if ev == "dropped" {
			fmt.Fprintf(stdout, "(%v lines dropped: this client fell behind the stream)\n", l["dropped"])
			continue
		}
		fmt.Fprintln(stdout, logLine(l))
	}
	if ctx.Err() != nil {
		return nil // interrupted: a normal end
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("log stream from %s: %w", r.url, err)
	}
	return fmt.Errorf("the gateway at %s closed the log stream", r.url)
}

// logLine formats one log record: time, level, module, message, then the
// other attributes as key=value.
func logLine(l map[string]any) string {
	var b strings.Builder
	if t, ok := l["time"].(string); ok {
		if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
			t = ts.Local().Format("15:04:05.000")
		}
		b.WriteString(t)
	}
	lvl, _ := l["level"].(string)
	fmt.Fprintf(&b, " %-5s", strings.ToUpper(lvl))
	if m, ok := l["module"].(string); ok && m != "" {
		b.WriteString(" [" + m + "]")
	}
	msg, _ := l["msg"].(string)
	if msg == "" {
		msg, _ = l["message"].(string)
	}
	b.WriteString(" " + msg)
	keys := make([]string, 0, len(l))
	for k := range l {
		switch k {
		case "seq", "time", "level", "module", "msg", "message":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := l[k]
		if m, ok := v.(map[string]any); ok {
			// nested attributes, e.g. "attrs"
			sub := make([]string, 0, len(m))
			for sk := range m {
				sub = append(sub, sk)
			}
			slices.Sort(sub)
			for _, sk := range sub {
				fmt.Fprintf(&b, " %s=%s", sk, logValue(m[sk]))
			}
			continue
		}
		fmt.Fprintf(&b, " %s=%s", k, logValue(v))
	}
	return b.String()
}

func logValue(v any) string {
	switch x := v.(type) {
	case string:
		if strings.ContainsAny(x, " \t\"=") {
			return fmt.Sprintf("%q", x)
		}
		return x
	case nil:
		return "-"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
