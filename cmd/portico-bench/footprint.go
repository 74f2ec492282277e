package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// footprintConfig is Portico as shipped with the three embedded middleware
// in one group on one path that nothing but the footprint's own call uses
// (not the readiness probe's), so that every embedded plugin can be made to
// answer a call.
const footprintConfig = benchConfig + `
[[middleware.pre_auth]]
name = "footprint"
paths = ["/api/v1/audit"]
plugins = ["guard", "headers", "redact"]
`

// footprint is one start of Portico with its embedded plugins: how long to
// ready, resident memory at each point, and the first (and second) call to
// every plugin.
type footprint struct {
	ready           time.Duration
	readyCall       call          // a call to echo right after ready: it waits for echo's load
	loaded          time.Duration // from the start until no plugin is loading
	idleRSS         int64         // idle after every plugin loaded
	peakRSS         int64         // high-water mark up to then: the start's peak
	answeredRSS     int64         // idle again after every plugin answered once
	plugins         int           // plugins loaded
	answered        int           // plugins whose stats count a call
	first, second   []call
	compiledAtReady int64 // plugin_compiled_bytes in status at idle
}

// call is one timed request that makes a plugin answer.
type call struct {
	plugin string
	took   time.Duration
	status int
}

// footprintCall is a request that runs one embedded plugin.
type footprintCall struct {
	plugin, method, path, body string
	auth                       bool
}

var footprintCalls = func() []footprintCall {
	var cs []footprintCall
	in := `{"input":{"text":"hi","key":"k","value":"v","url":"https://example.com/","prompt":"hi"}}`
	for _, s := range [][2]string{{"echo", "echo"}, {"notes", "remember"}, {"summarize", "summarize"}, {"httpget", "http_get"},
		{"assistant", "ask"}, {"audit", "audit_log"}} {
		cs = append(cs, footprintCall{plugin: s[0], method: "POST", path: "/api/v1/skills/" + s[1] + "/invoke", body: in, auth: true})
	}
	cs = append(cs, footprintCall{plugin: "reverse", method: "POST", path: "/api/v1/skills/reverse/invoke", body: `{"input":"hi"}`, auth: true})
	// The channels: their webhook (a refusal for want of the platform's
	// secret still runs the plugin).
	cs = append(cs,
		footprintCall{plugin: "jsonhook", method: "POST", path: "/api/v1/channels/jsonhook/webhook", body: `{"user":"u1","text":"/echo hi"}`},
		footprintCall{plugin: "telegram", method: "POST", path: "/api/v1/channels/telegram/webhook", body: `{"update_id":1,"message":{"message_id":1,"chat":{"id":1},"from":{"id":1},"text":"/echo hi"}}`},
		// The middleware group on /api/v1/audit: guard, headers, redact.
		footprintCall{plugin: "guard,headers,redact", method: "GET", path: "/api/v1/audit?limit=1", auth: true},
	)
	return cs
}()

// measureFootprint starts Portico twice on one fresh data dir (a cold
// compilation cache, then warm) and measures each start.
func measureFootprint(ctx context.Context, o options, work string) (cold, warm *footprint, err error) {
	cfg := filepath.Join(work, "footprint.toml")
	if err := os.WriteFile(cfg, []byte(footprintConfig), 0o600); err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(work, "footprint-data")
	os.MkdirAll(dir, 0o700)
	for _, dst := range []**footprint{&cold, &warm} {
		f, err := oneFootprint(ctx, o, dir, cfg)
		if err != nil {
			return nil, nil, err
		}
		*dst = f
	}
	return cold, warm, nil
}

// settleFor is how long the process is left alone before its idle memory
// is read: past the load's settle (the compiler's garbage returned) and
// the first GC cycles.
const settleFor = 3 * time.Second

func oneFootprint(ctx context.Context, o options, dir, cfg string) (*footprint, error) {
	t, took, err := startPortico(ctx, o.portico, dir, cfg)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	f := &footprint{ready: took}
	// Ready comes before the compiles end: the first call waits for its
	// plugin (moved to the front of the load), and must not be refused.
	began := time.Now()
	status, err := footprintDo(t, footprintCalls[0])
	if err != nil {
		return nil, fmt.Errorf("the call right after ready: %w", err)
	}
	f.readyCall = call{plugin: footprintCalls[0].plugin, took: time.Since(began), status: status}
	for {
		var ps struct{ Plugins []struct{ Status string } }
		if err := getJSON(t, "/api/v1/plugins", &ps); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(ps.Plugins, func(p struct{ Status string }) bool { return p.Status == "loading" }) {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.loaded = took + time.Since(began)
	sleep(ctx, settleFor)
	f.idleRSS, f.peakRSS = t.rss()
	var st struct {
		Runtime struct {
			PluginCompiledBytes int64 `json:"plugin_compiled_bytes"`
		} `json:"runtime"`
	}
	if err := getJSON(t, "/api/v1/status", &st); err != nil {
		return nil, err
	}
	f.compiledAtReady = st.Runtime.PluginCompiledBytes
	for _, round := range []*[]call{&f.first, &f.second} {
		for _, c := range footprintCalls {
			began := time.Now()
			status, err := footprintDo(t, c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.plugin, err)
			}
			*round = append(*round, call{plugin: c.plugin, took: time.Since(began), status: status})
		}
	}
	sleep(ctx, settleFor)
	f.answeredRSS, _ = t.rss()
	var ps struct {
		Plugins []struct {
			Name  string
			Stats struct{ Calls int64 }
		}
	}
	if err := getJSON(t, "/api/v1/plugins", &ps); err != nil {
		return nil, err
	}
	f.plugins = len(ps.Plugins)
	for _, p := range ps.Plugins {
		if p.Stats.Calls > 0 {
			f.answered++
		}
	}
	return f, nil
}

func footprintDo(t *target, c footprintCall) (int, error) {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r, err := http.NewRequest(c.method, t.url+c.path, body)
	if err != nil {
		return 0, err
	}
	if c.auth {
		r.Header.Set("Authorization", "Bearer "+t.key)
	}
	if c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0, fmt.Errorf("%s %s answered 503: a plugin was not ready to answer", c.method, c.path)
	}
	return resp.StatusCode, nil
}

func getJSON(t *target, path string, v any) error {
	r, _ := http.NewRequest("GET", t.url+path, nil)
	r.Header.Set("Authorization", "Bearer "+t.key)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// rss returns the process's resident memory now and its high-water mark,
// in bytes, from /proc (Linux); -1 where unknown.
func (t *target) rss() (now, peak int64) {
	now, peak = -1, -1
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", t.cmd.Process.Pid))
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			now = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return
}

func mb(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(n)/(1<<20))
}

// footprintTable writes the cold and warm starts side by side.
func footprintTable(b *strings.Builder, cold, warm *footprint) {
	fmt.Fprintf(b, "\nFootprint: `portico serve` as shipped (%d plugins: the embedded ones; their three middleware in one `pre_auth` group on `/api/v1/audit` so that they run), "+
		"started on a fresh data dir (cold: the compilation cache empty), then again on it (warm). Resident memory from `/proc/PID/status` "+
		"(`VmRSS`; peak `VmHWM`), idle = %s after the last request. \"Answered once\": one call to every plugin "+
		"(each skill invoked, each channel's webhook, the middleware group); %d of %d plugins counted a call:\n\n",
		warm.plugins, settleFor, warm.answered, warm.plugins)
	b.WriteString("| start | ready ms | echo called at ready: ms (status) | every plugin loaded ms | RSS idle once loaded MB | peak RSS up to then MB | compiled code at idle MB | RSS after every plugin answered once MB | first calls p50 / max ms | second calls max ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range []struct {
		name string
		f    *footprint
	}{{"cold", cold}, {"warm", warm}} {
		p50, max := spread(r.f.first)
		_, max2 := spread(r.f.second)
		fmt.Fprintf(b, "| %s | %s | %s (%d) | %s | %s | %s | %s | %s | %s / %s | %s |\n", r.name, ms(r.f.ready), ms(r.f.readyCall.took), r.f.readyCall.status, ms(r.f.loaded), mb(r.f.idleRSS), mb(r.f.peakRSS),
			mb(r.f.compiledAtReady), mb(r.f.answeredRSS), ms(p50), ms(max), ms(max2))
	}
	b.WriteString("\nFirst call to each plugin, warm start (ms, HTTP status): ")
	var parts []string
	for _, c := range warm.first {
		parts = append(parts, fmt.Sprintf("%s %.1f (%d)", c.plugin, float64(c.took)/float64(time.Millisecond), c.status))
	}
	b.WriteString(strings.Join(parts, "; ") + ".\n")
}

// spread is the median and the maximum of the calls' times.
func spread(cs []call) (p50, max time.Duration) {
	if len(cs) == 0 {
		return 0, 0
	}
	ds := make([]time.Duration, len(cs))
	for i, c := range cs {
		ds[i] = c.took
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)-1]
}
