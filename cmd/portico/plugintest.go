package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/harness"
)

// TestsFile holds a plugin's test cases, beside its manifest.
const TestsFile = "tests.toml"

// testCase is one [[case]] of tests.toml: a skill call (skill, input), an
// event delivered to the hook (event), or a channel operation (channel,
// input).
type testCase struct {
	Name          string            `toml:"name"`
	Skill         string            `toml:"skill"`
	Channel       string            `toml:"channel"` // webhook, send or health
	Input         string            `toml:"input"`
	Event         *testEvent        `toml:"event"`
	Output        string            `toml:"output"`          // the exact reply, when set
	Contains      string            `toml:"output_contains"` // a part of the reply, when set
	Error         string            `toml:"error"`           // "bad_input" or "error" when the call must fail
	ErrorContains string            `toml:"error_contains"`
	Grants        *[]string         `toml:"grants"` // default: everything the manifest asks for
	KV            map[string]string `toml:"kv"`     // the store before the call
	KVAfter       map[string]string `toml:"kv_after"`
	LogsContain   []string          `toml:"logs_contain"` // each in some log line of the call
	Config        map[string]string `toml:"config"`
	// HTTP answers the plugin's outbound requests by URL; others fail.
	HTTP map[string]testResponse `toml:"http"`
	// LLM is the reply of every llm_complete call; empty: no provider.
	LLM string `toml:"llm"`
	// Request runs a middleware on an HTTP request in front of the route:
	// by default the route answers 200 with what it saw as JSON
	// ({"method","uri","headers","body"}); Route sets its answer instead.
	// Output and output_contains then check the response body.
	Request         *testRequest      `toml:"request"`
	Route           *testRoute        `toml:"route"`
	Status          int               `toml:"status"`           // the response status, when set
	ResponseHeaders map[string]string `toml:"response_headers"` // each must be there with this value ("" for absent)
}

// testRequest is request = { method = "GET", uri = "/x", headers = { ... }, body = "..." }.
type testRequest struct {
	Method     string            `toml:"method"`
	URI        string            `toml:"uri"`
	Headers    map[string]string `toml:"headers"`
	Body       string            `toml:"body"`
	RemoteAddr string            `toml:"remote_addr"`
}

// testRoute is what the route answers: route = { status = 200, headers = { ... }, body = "..." }.
type testRoute struct {
	Status  int               `toml:"status"`
	Headers map[string]string `toml:"headers"`
	Body    string            `toml:"body"`
}

// testResponse is a canned HTTP answer: http = { "https://x/y" = { status = 200, body = '...' } }.
type testResponse struct {
	Status int    `toml:"status"`
	Body   string `toml:"body"`
}

// testEvent is an event for the hook: event = { type = "...", data = '...' }.
type testEvent struct {
	Type string `toml:"type"`
	Data string `toml:"data"` // JSON; default null
}

type testFile struct {
	Cases []testCase `toml:"case"`
}

// testPlugin runs dir's tests.toml against its module on the harness and
// returns how many passed and failed.
func testPlugin(ctx context.Context, dir string, w io.Writer) (passed, failed int, err error) {
	mb, err := os.ReadFile(filepath.Join(dir, core.ManifestFile))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w (a plugin needs its manifest)", dir, err)
	}
	man, err := core.ParseManifest(mb)
	if err != nil {
		return 0, 0, err
	}
	wasm, err := os.ReadFile(filepath.Join(dir, man.Module))
	if err != nil {
		return 0, 0, fmt.Errorf("%w; build it first (portico plugin build %s)", err, dir)
	}
	tb, err := os.ReadFile(filepath.Join(dir, TestsFile))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w (write test cases as [[case]] tables)", dir, err)
	}
	var tf testFile
	dec := toml.NewDecoder(bytes.NewReader(tb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tf); err != nil {
		return 0, 0, fmt.Errorf("%s: %v", TestsFile, err)
	}
	if len(tf.Cases) == 0 {
		return 0, 0, fmt.Errorf("%s has no [[case]]", TestsFile)
	}
	pluginCacheDir()
	for _, c := range tf.Cases {
		if msg := runCase(ctx, man, wasm, c); msg != "" {
			failed++
			fmt.Fprintf(w, "FAIL %s: %s\n", c.Name, msg)
		} else {
			passed++
			fmt.Fprintf(w, "PASS %s\n", c.Name)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed, nil
}

func runCase(ctx context.Context, man *core.Manifest, wasm []byte, c testCase) string {
	if slices.Contains(man.Kinds, hostapi.KindMiddleware) {
		return runMiddlewareCase(ctx, man, wasm, c)
	}
	h := harness.NewHost()
	for k, v := range c.KV {
		h.KV[k] = []byte(v)
	}
	for k, v := range c.Config {
		h.Values[k] = v
	}
	if c.LLM != "" {
		h.Completer = func([]byte) ([]byte, error) { return []byte(c.LLM), nil }
	}
	for url, r := range c.HTTP {
		if h.Responses == nil {
			h.Responses = map[string]harness.Response{}
		}
		h.Responses[url] = harness.Response{Status: r.Status, Body: []byte(r.Body)}
	}
	grants := append(append([]string{}, man.Capabilities.Required...), man.Capabilities.Optional...)
	if c.Grants != nil {
		grants = *c.Grants
	}
	p, err := harness.Load(ctx, man.Name, wasm, h, man.Kinds, grants)
	if err != nil {
		return "load: " + err.Error()
	}
	defer p.Close(ctx)
	var out []byte
	switch {
	case (c.Event != nil && c.Skill != "") || (c.Channel != "" && (c.Skill != "" || c.Event != nil)):
		return "set one of skill, event and channel"
	case c.Channel != "":
		input := c.Input
		if input == "" {
			input = "{}"
		}
		out, err = p.Channel(ctx, c.Channel, []byte(input))
	case c.Event != nil:
		if c.Event.Type == "" {
			return "event needs a type"
		}
		if c.Output != "" || c.Contains != "" {
			return "a hook has no reply: check kv_after or logs_contain instead of output"
		}
		data := c.Event.Data
		if data == "" {
			data = "null"
		}
		err = p.Deliver(ctx, c.Event.Type, []byte(data))
	case c.Skill != "":
		out, err = p.Invoke(ctx, c.Skill, []byte(c.Input))
	default:
		return "set skill (and input), event, or channel (and input)"
	}
	if msg := checkResult(c, out, err); msg != "" {
		return msg
	}
	for _, k := range slices.Sorted(maps.Keys(c.KVAfter)) {
		if v, ok := h.KV[k]; !ok {
			return fmt.Sprintf("kv_after: no key %q in the store", k)
		} else if string(v) != c.KVAfter[k] {
			return fmt.Sprintf("kv_after: %q = %s, want %s", k, v, c.KVAfter[k])
		}
	}
	for _, want := range c.LogsContain {
		if !slices.ContainsFunc(h.Logs, func(l string) bool { return strings.Contains(l, want) }) {
			return fmt.Sprintf("no log line contains %q; logs: %q", want, h.Logs)
		}
	}
	return ""
}

// checkResult checks a call's reply or error against the case.
func checkResult(c testCase, out []byte, err error) string {
	switch {
	case c.Error != "":
		want := map[string]error{"bad_input": hostapi.ErrBadInput, "error": hostapi.ErrGuest}[c.Error]
		if want == nil {
			return fmt.Sprintf("error = %q; use bad_input or error", c.Error)
		}
		if !errors.Is(err, want) {
			return fmt.Sprintf("want a %s failure, got %q, %v", c.Error, out, err)
		}
		if !strings.Contains(err.Error(), c.ErrorContains) {
			return fmt.Sprintf("error %q does not contain %q", err, c.ErrorContains)
		}
	case err != nil:
		return err.Error()
	case c.Output != "" && string(out) != c.Output:
		return fmt.Sprintf("reply %s, want %s", out, c.Output)
	case c.Contains != "" && !strings.Contains(string(out), c.Contains):
		return fmt.Sprintf("reply %s does not contain %s", out, c.Contains)
	}
	return ""
}

// runMiddlewareCase serves the case's request through the middleware.
func runMiddlewareCase(ctx context.Context, man *core.Manifest, wasm []byte, c testCase) string {
	if c.Request == nil || c.Skill != "" || c.Event != nil || c.Channel != "" {
		return "a middleware case sets request (and maybe route), not skill, event or channel"
	}
	conf, _ := json.Marshal(c.Config)
	if c.Config == nil {
		conf = []byte("{}")
	}
	grants := append(append([]string{}, man.Capabilities.Required...), man.Capabilities.Optional...)
	if c.Grants != nil {
		grants = *c.Grants
	}
	mw, err := harness.LoadMiddleware(ctx, man.Name, wasm, harness.NewHost(), grants, conf)
	if err != nil {
		return "load: " + err.Error()
	}
	defer mw.Close(ctx)
	method, uri := c.Request.Method, c.Request.URI
	if method == "" {
		method = "GET"
	}
	if uri == "" {
		uri = "/"
	}
	r := httptest.NewRequest(method, uri, strings.NewReader(c.Request.Body))
	for k, v := range c.Request.Headers {
		r.Header.Set(k, v)
	}
	if c.Request.RemoteAddr != "" {
		r.RemoteAddr = c.Request.RemoteAddr
	}
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.Route != nil {
			for k, v := range c.Route.Headers {
				w.Header().Set(k, v)
			}
			w.WriteHeader(cmp.Or(c.Route.Status, 200))
			io.WriteString(w, c.Route.Body)
			return
		}
		body, _ := io.ReadAll(r.Body)
		headers := map[string]string{}
		for k := range r.Header {
			headers[strings.ToLower(k)] = r.Header.Get(k)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "uri": r.URL.RequestURI(), "headers": headers, "body": string(body)})
	})
	resp := mw.Serve(r, route)
	out := resp.Body.Bytes()
	if c.Status != 0 && resp.Code != c.Status {
		return fmt.Sprintf("status %d, want %d (body %s)", resp.Code, c.Status, out)
	}
	for _, k := range slices.Sorted(maps.Keys(c.ResponseHeaders)) {
		if got := resp.Header().Get(k); got != c.ResponseHeaders[k] {
			return fmt.Sprintf("response header %s = %q, want %q", k, got, c.ResponseHeaders[k])
		}
	}
	switch {
	case c.Output != "" && strings.TrimSpace(string(out)) != c.Output:
		return fmt.Sprintf("body %s, want %s", out, c.Output)
	case c.Contains != "" && !strings.Contains(string(out), c.Contains):
		return fmt.Sprintf("body %s does not contain %s", out, c.Contains)
	}
	return ""
}
