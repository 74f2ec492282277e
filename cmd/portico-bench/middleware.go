package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/porticohq/portico/plugins"
)

// mwWASM is the small http-wasm guest every WAT target runs: it sets one
// request and one response header and passes the request on.
const mwWASM = "testdata/wasm/mw_headers.wasm"

// mwSet is one middleware target: a chain of http-wasm middleware in
// front of the measured route, in its own process.
type mwSet struct {
	key     string   // its name in -middleware
	label   string   // in the tables
	ref     bool     // the reference host in front of bare chi, not Portico
	plugins []string // Portico's middleware plugins, in order (see installGuest); the reference host runs mw_headers len(plugins) times
	header  string   // a response header the chain sets, checked before the run
}

// mwSets are the middleware targets, in table order.
var mwSets = []mwSet{
	{"wat1", "1 WAT middleware (mw_headers)", false, []string{"mwh1"}, "X-Frame-Options"},
	{"wat3", "3 WAT middleware (mw_headers ×3)", false, []string{"mwh1", "mwh2", "mwh3"}, "X-Frame-Options"},
	{"go1", "1 Go middleware (headers)", false, []string{"headers"}, "X-Bench"},
	{"go3", "3 Go middleware (headers ×3)", false, []string{"headers", "headers2", "headers3"}, "X-Bench"},
	{"fp3", "3 first-party Go middleware (headers, guard, redact)", false, []string{"headers", "guard", "redact"}, "X-Bench"},
	{"ref1", "1 WAT middleware (mw_headers)", true, []string{"mwh1"}, "X-Frame-Options"},
	{"ref3", "3 WAT middleware (mw_headers ×3)", true, []string{"mwh1", "mwh2", "mwh3"}, "X-Frame-Options"},
}

const allMiddleware = "wat1,wat3,go1,go3,fp3,ref1,ref3"

// selectMiddleware parses -middleware: a comma-separated list of mwSets
// keys, or "none".
func selectMiddleware(list string) ([]mwSet, error) {
	if list == "none" || list == "" {
		return nil, nil
	}
	var out []mwSet
	for _, k := range strings.Split(list, ",") {
		found := false
		for _, s := range mwSets {
			if s.key == strings.TrimSpace(k) {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-middleware: unknown target %q (choose from %s, or none)", k, allMiddleware)
		}
	}
	return out, nil
}

// n is the number of middleware in the chain.
func (s mwSet) n() int { return len(s.plugins) }

// scenarioName is the row label of a middleware target.
func (s mwSet) scenarioName() string {
	if s.ref {
		return "reference host (http-wasm-host-go nethttp), " + s.label + " + bare chi: GET /hello"
	}
	return "portico, " + s.label + ": GET /health"
}

// findRepoFile finds a repository file from the working directory or one
// above it (the harness runs from the root; its test from its package).
func findRepoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("%s not found in or above the working directory (run from the repository)", rel)
		}
		dir = up
	}
}

// startMiddleware starts one middleware target: the reference host in
// front of bare chi, or Portico with its own data dir and a config whose
// pre_auth chain (every path) runs the middleware. Portico targets share
// the first Portico's compilation cache, so they start warm.
func startMiddleware(ctx context.Context, o options, work string, s mwSet) (*target, error) {
	wasmFile, err := findRepoFile(mwWASM)
	if err != nil {
		return nil, err
	}
	if s.ref {
		return startSelf(ctx, "reference host", "serve-ref", "127.0.0.1:0", wasmFile, strconv.Itoa(s.n()))
	}
	root := filepath.Join(work, "mw-"+s.key)
	var cfg strings.Builder
	cfg.WriteString(benchConfig)
	fmt.Fprintf(&cfg, "%scache_dir = %q\n", loadedFirst, filepath.Join(work, "data", "wasm-cache"))
	for _, name := range s.plugins {
		if err := installGuest(&cfg, root, wasmFile, name); err != nil {
			return nil, err
		}
	}
	q := make([]string, s.n())
	for i, n := range s.plugins {
		q[i] = strconv.Quote(n)
	}
	fmt.Fprintf(&cfg, "[[middleware.pre_auth]]\nname = \"bench\"\nplugins = [%s]\n", strings.Join(q, ", "))
	file := filepath.Join(root, "bench.toml")
	dir := filepath.Join(root, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	t, _, err := startPortico(ctx, o.portico, dir, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.key, err)
	}
	return t, nil
}

// installGuest adds one middleware plugin's [[plugins]] table to cfg:
// mwh* is mw_headers.wasm in a directory under root; headers, guard and
// redact are the embedded first-party plugins, addressed by name; headers2
// and headers3 are the embedded headers module installed again under
// those names (one plugin of a name may run).
func installGuest(cfg *strings.Builder, root, wasmFile, name string) error {
	var module string
	var wasm []byte
	var err error
	switch {
	case strings.HasPrefix(name, "mwh"):
		module = "mw_headers.wasm"
		wasm, err = os.ReadFile(wasmFile)
	case strings.HasPrefix(name, "headers") && name != "headers":
		module = "headers.wasm"
		wasm, err = plugins.FS.ReadFile("headers/headers.wasm")
	}
	if err != nil {
		return err
	}
	if module == "" {
		fmt.Fprintf(cfg, "[[plugins]]\nname = %q\n", name)
	} else {
		d := filepath.Join(root, "plugins", name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		manifest := fmt.Sprintf("name = %q\nversion = \"1.0.0\"\nkinds = [\"middleware\"]\nmodule = %q\n", name, module)
		if err := os.WriteFile(filepath.Join(d, "plugin.toml"), []byte(manifest), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, module), wasm, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(cfg, "[[plugins]]\nname = %q\npath = %q\n", name, d)
	}
	switch {
	case strings.HasPrefix(name, "headers"):
		fmt.Fprintf(cfg, "[plugins.config]\n\"response.set.X-Bench\" = \"1\"\n\"request.set.X-Bench-%s\" = \"1\"\n", name)
	case name == "guard": // a rule no measured request matches
		cfg.WriteString("[plugins.config]\npaths = \"/never/**\"\n")
	}
	return nil
}

// checkMiddleware makes sure the chain runs on the measured route: the
// response carries its header and, on Portico, every middleware counted
// calls.
func checkMiddleware(t *target, s mwSet, path string) error {
	resp, err := http.Get(t.url + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(s.header) == "" {
		return fmt.Errorf("%s: GET %s: %s without %s: the middleware did not run", s.key, path, resp.Status, s.header)
	}
	if s.ref {
		return nil
	}
	for _, name := range s.plugins {
		st, err := pluginStats(t, name)
		if err != nil || st.Calls == 0 || st.Errors != 0 {
			return fmt.Errorf("%s: middleware %s: %d calls, %d errors (%v)", s.key, name, st.Calls, st.Errors, err)
		}
	}
	return nil
}

// stats are a plugin's counters, from GET /api/v1/plugins/NAME.
type stats struct {
	Calls, Errors uint64
	P50           int64 `json:"p50_us"` // within a factor of two
}

func pluginStats(t *target, name string) (stats, error) {
	var info struct{ Stats stats }
	r, _ := http.NewRequest("GET", t.url+"/api/v1/plugins/"+name, nil)
	r.Header.Set("Authorization", "Bearer "+t.key)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return info.Stats, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return info.Stats, fmt.Errorf("GET /api/v1/plugins/%s: %s", name, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	return info.Stats, err
}

// callTimes describes a Portico target's middleware by their own p50 call
// time (both phases, as the plugin's stats count it).
func callTimes(t *target, s mwSet) string {
	parts := make([]string, len(s.plugins))
	for i, name := range s.plugins {
		st, err := pluginStats(t, name)
		if err != nil {
			parts[i] = name + " n/a"
			continue
		}
		parts[i] = fmt.Sprintf("%s %d µs", name, st.P50)
	}
	return s.label + ": " + strings.Join(parts, ", ")
}
