package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/plugins"
)

// scenario is one kind of request against one target.
type scenario struct {
	name   string
	target *target
	req    request
	mw     int    // middleware in front of the route
	base   string // with mw: the scenario without them (same route and server)
}

// row is a scenario's results over all rounds.
type row struct {
	name string
	res  result
	cpu  time.Duration // target CPU per request; -1 unknown
	mw   int
	base string
}

type report struct {
	closed, open         []row
	reloads, reloadReqs  int
	reloadErrs           int
	reloadFirstErr       string
	plugins              int
	moduleBytes          int
	coldStart, warmStart time.Duration
	cold, warm           *footprint
	callTimes            []string // Portico's middleware by their own p50 call time
	cpuModel             string
	cores                int
	date                 string
}

// benchConfig keeps Portico as shipped except for rate limits high enough
// never to refuse.
const benchConfig = `[ratelimit.default]
rate = 1e12
burst = 1000000000
[ratelimit.sessions_write]
rate = 1e12
burst = 1000000000
`

// loadedFirst makes a target turn ready once its plugins have loaded.
const loadedFirst = "[plugin]\nready_after_load = true\n"

func get(t *target, path string) request {
	return func() (*http.Request, error) {
		r, err := http.NewRequest("GET", t.url+path, nil)
		if err == nil && t.key != "" {
			r.Header.Set("Authorization", "Bearer "+t.key)
		}
		return r, err
	}
}

func invoke(t *target) request {
	body := `{"input":"` + strings.Repeat("a", 64) + `"}`
	return func() (*http.Request, error) {
		r, err := http.NewRequest("POST", t.url+"/api/v1/skills/echo/invoke", strings.NewReader(body))
		if err == nil {
			r.Header.Set("Authorization", "Bearer "+t.key)
			r.Header.Set("Content-Type", "application/json")
		}
		return r, err
	}
}

// message posts a chat message to one of n sessions, round robin, so the
// connections do not queue behind one session's turn lock.
func message(t *target, n int) (request, error) {
	ids := make([]string, n)
	for i := range ids {
		r, _ := http.NewRequest("POST", t.url+"/api/v1/sessions", strings.NewReader(`{"channel":"api"}`))
		r.Header.Set("Authorization", "Bearer "+t.key)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return nil, err
		}
		var se struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&se)
		resp.Body.Close()
		if err != nil || se.ID == "" {
			return nil, fmt.Errorf("create session: %d %v", resp.StatusCode, err)
		}
		ids[i] = se.ID
	}
	var next atomic.Uint64
	body := `{"text":"/echo ` + strings.Repeat("a", 64) + `"}`
	return func() (*http.Request, error) {
		id := ids[next.Add(1)%uint64(n)]
		r, err := http.NewRequest("POST", t.url+"/api/v1/sessions/"+id+"/messages", strings.NewReader(body))
		if err == nil {
			r.Header.Set("Authorization", "Bearer "+t.key)
			r.Header.Set("Content-Type", "application/json")
		}
		return r, err
	}, nil
}

func measure(ctx context.Context, o options, work string) (*report, error) {
	rep := &report{cpuModel: cpuModel(), cores: runtime.NumCPU(), date: time.Now().UTC().Format("2006-01-02")}
	chi, err := startChi(ctx)
	if err != nil {
		return nil, err
	}
	defer chi.stop()
	cfg := filepath.Join(work, "bench.toml")
	// The throughput targets start one after another, each with its
	// plugins loaded (the start itself is the footprint's figure), so no
	// target's compiles run beside another's measurement or start.
	if err := os.WriteFile(cfg, []byte(benchConfig+loadedFirst), 0o600); err != nil {
		return nil, err
	}
	var extra []string
	for flag, file := range map[string]string{"--cpuprofile": o.cpuProfile, "--memprofile": o.memProfile} {
		if file != "" {
			abs, _ := filepath.Abs(file)
			extra = append(extra, flag, abs)
		}
	}
	dir := filepath.Join(work, "data")
	os.MkdirAll(dir, 0o700)
	p, _, err := startPortico(ctx, o.portico, dir, cfg, extra...)
	if err != nil {
		return nil, err
	}
	defer p.stop()

	chat, err := message(p, o.conns)
	if err != nil {
		return nil, err
	}
	scenarios := []scenario{
		{name: "bare chi: GET /hello", target: chi, req: get(chi, "/hello")},
		{name: "portico: GET /health (probe)", target: p, req: get(&target{url: p.url}, "/health")},
		{name: "portico: authenticated, rate-limited GET /api/v1/skills", target: p, req: get(p, "/api/v1/skills")},
		{name: "portico: POST /api/v1/skills/echo/invoke (64 B)", target: p, req: invoke(p)},
		{name: "portico: message in → echo reply out (POST .../messages)", target: p, req: chat},
	}
	open := []scenario{scenarios[0], scenarios[2], scenarios[3], scenarios[4]}
	if o.postgres != "" {
		pp, drop, err := startOnPostgres(ctx, o, work)
		if err != nil {
			return nil, err
		}
		defer drop()
		defer pp.stop()
		pchat, err := message(pp, o.conns)
		if err != nil {
			return nil, err
		}
		const on = "portico on PostgreSQL (CPU: Portico + PostgreSQL): "
		pg := []scenario{
			{name: on + "authenticated, rate-limited GET /api/v1/skills", target: pp, req: get(pp, "/api/v1/skills")},
			{name: on + "POST /api/v1/skills/echo/invoke (64 B)", target: pp, req: invoke(pp)},
			{name: on + "message in → echo reply out (POST .../messages)", target: pp, req: pchat},
		}
		scenarios = append(scenarios, pg...)
		open = append(open, pg...)
	}

	// The middleware targets: the same simple GET as the probe (Portico)
	// or the baseline (the reference host in front of bare chi), so the
	// difference is the middleware.
	sets, err := selectMiddleware(o.middleware)
	if err != nil {
		return nil, err
	}
	if len(sets) > 0 {
		open = append(open, scenarios[1])
	}
	var mwPortico []func() string
	for _, s := range sets {
		fmt.Fprintf(os.Stderr, "starting %s...\n", s.key)
		t, err := startMiddleware(ctx, o, work, s)
		if err != nil {
			return nil, err
		}
		defer t.stop()
		path, base := "/health", scenarios[1].name
		if s.ref {
			path, base = "/hello", scenarios[0].name
		}
		if err := checkMiddleware(t, s, path); err != nil {
			return nil, err
		}
		if !s.ref {
			mwPortico = append(mwPortico, func() string { return callTimes(t, s) })
		}
		sc := scenario{name: s.scenarioName(), target: t, req: get(&target{url: t.url}, path), mw: s.n(), base: base}
		scenarios = append(scenarios, sc)
		open = append(open, sc)
	}
	client := newClient(o.conns)
	// Warm up every scenario once, unmeasured.
	for _, s := range scenarios {
		closedLoop(ctx, client, o.conns, 300*time.Millisecond, s.req)
	}
	fmt.Fprintf(os.Stderr, "closed loop: %d connections, %d rounds of %s per scenario\n", o.conns, o.rounds, o.duration)
	rep.closed = rounds(ctx, o, scenarios, func(s scenario) result { return closedLoop(ctx, client, o.conns, o.duration, s.req) })
	fmt.Fprintf(os.Stderr, "open loop: %d requests/s\n", o.rate)
	rep.open = rounds(ctx, o, open, func(s scenario) result { return openLoop(ctx, newClient(64), o.rate, o.duration, s.req) })

	for _, f := range mwPortico {
		rep.callTimes = append(rep.callTimes, f())
	}

	fmt.Fprintf(os.Stderr, "reload under load: %d reloads\n", o.reloads)
	rep.reloads = o.reloads
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pause := o.duration / time.Duration(o.reloads+1)
		for range o.reloads {
			time.Sleep(pause)
			r, _ := http.NewRequest("POST", p.url+"/api/v1/plugins/echo/reload", nil)
			r.Header.Set("Authorization", "Bearer "+p.key)
			if resp, err := http.DefaultClient.Do(r); err == nil {
				resp.Body.Close()
			}
		}
	}()
	res := closedLoop(ctx, client, o.conns, o.duration, invoke(p))
	wg.Wait()
	rep.reloadReqs, rep.reloadErrs, rep.reloadFirstErr = res.requests, res.errors, res.firstErr

	fmt.Fprintln(os.Stderr, "start with 10 plugins: cold, then warm")
	rep.plugins = 10
	if wasm, err := plugins.FS.ReadFile("echo/echo.wasm"); err == nil {
		rep.moduleBytes = len(wasm)
	}
	if rep.coldStart, rep.warmStart, err = startTimes(ctx, o, work, rep.plugins); err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "footprint: the embedded plugins, cold then warm")
	if rep.cold, rep.warm, err = measureFootprint(ctx, o, work); err != nil {
		return nil, err
	}
	return rep, nil
}

// rounds runs every scenario once per round, interleaved (A B A B ...), and
// merges each scenario's runs.
func rounds(ctx context.Context, o options, ss []scenario, run func(scenario) result) []row {
	rows := make([]row, len(ss))
	var cpu = make([]time.Duration, len(ss))
	for range o.rounds {
		for i, s := range ss {
			before := s.target.cpu()
			r := run(s)
			after := s.target.cpu()
			if before >= 0 && after >= 0 {
				cpu[i] += after - before
			} else {
				cpu[i] = -1 << 62
			}
			agg := &rows[i].res
			agg.requests += r.requests
			agg.errors += r.errors
			if agg.firstErr == "" {
				agg.firstErr = r.firstErr
			}
			agg.elapsed += r.elapsed
			agg.lat = append(agg.lat, r.lat...)
		}
	}
	for i, s := range ss {
		rows[i].name, rows[i].mw, rows[i].base = s.name, s.mw, s.base
		slices.Sort(rows[i].res.lat)
		rows[i].cpu = -1
		if cpu[i] >= 0 && rows[i].res.requests > 0 {
			rows[i].cpu = cpu[i] / time.Duration(rows[i].res.requests)
		}
	}
	return rows
}

// startTimes measures process start to every plugin loaded (ready, with
// plugin.ready_after_load) with n plugins (each the
// embedded echo module), first with an empty compilation cache, then warm.
func startTimes(ctx context.Context, o options, work string, n int) (cold, warm time.Duration, err error) {
	wasm, err := plugins.FS.ReadFile("echo/echo.wasm")
	if err != nil {
		return 0, 0, err
	}
	var cfg strings.Builder
	cfg.WriteString(loadedFirst + "embedded = false\n")
	for i := range n {
		name := fmt.Sprintf("echo%d", i)
		d := filepath.Join(work, "plugins", name)
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "plugin.toml"), []byte(fmt.Sprintf("name = %q\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = %q\ndescription = \"echo\"\n", name, name)), 0o600)
		os.WriteFile(filepath.Join(d, name+".wasm"), wasm, 0o600)
		fmt.Fprintf(&cfg, "[[plugins]]\nname = %q\npath = %q\n", name, d)
	}
	file := filepath.Join(work, "ten.toml")
	os.WriteFile(file, []byte(cfg.String()), 0o600)
	dir := filepath.Join(work, "ten-data")
	os.MkdirAll(dir, 0o700)
	for i, dst := range []*time.Duration{&cold, &warm} {
		t, took, err := startPortico(ctx, o.portico, dir, file)
		if err != nil {
			return 0, 0, fmt.Errorf("start %d with %d plugins: %w", i+1, n, err)
		}
		*dst = took
		t.stop()
	}
	return cold, warm, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
