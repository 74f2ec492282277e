package core_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// keyTransport sends a Portico API key with every request.
type keyTransport struct{ key string }

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", k.key)
	return http.DefaultTransport.RoundTrip(r)
}

// mcpConnect opens an MCP session with the official Go SDK's client over
// streamable HTTP, as key; changed receives a value per list_changed.
func mcpConnect(t *testing.T, url, key string, changed chan<- struct{}) *mcp.ClientSession {
	t.Helper()
	opts := &mcp.ClientOptions{}
	if changed != nil {
		opts.ToolListChangedHandler = func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: keyTransport{key}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func textOf(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// scopedKey creates a user key that may call only the skills (and
// upstream servers) named.
func scopedKey(t *testing.T, g *gw, email string, scopes ...string) string {
	t.Helper()
	r := g.do(t, "POST", g.url+"/api/v1/users", fmt.Sprintf(`{"email":%q,"name":"n","role":"user"}`, email))
	if r.status != 201 {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	sc, _ := json.Marshal(scopes)
	r = g.do(t, "POST", g.url+"/api/v1/users/"+r.json(t)["id"].(string)+"/keys", fmt.Sprintf(`{"name":"k","role":"user","scopes":%s}`, sc))
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	return r.json(t)["secret"].(string)
}

// TestMCPOverHTTP drives /api/v1/mcp with the official Go SDK's client:
// initialize, list tools, call a skill, a skill outside the key's scopes,
// list_changed after a plugin is disabled, a session bound to its key and
// Origin checks.
func TestMCPOverHTTP(t *testing.T) {
	t.Parallel()
	g := start(t, small+"[http.cors]\nallowed_origins = [\"https://app.example.com\"]\n")
	endpoint := g.url + "/api/v1/mcp"
	alice := userKey(t, g, "alice@example.com", "user")
	scoped := scopedKey(t, g, "scoped@example.com", "echo")
	ctx := context.Background()

	changed := make(chan struct{}, 1)
	cs := mcpConnect(t, endpoint, alice, changed)
	if got := cs.InitializeResult(); got == nil || got.ServerInfo.Name != "portico" || got.Capabilities.Tools == nil {
		t.Fatalf("initialize result: %+v", got)
	}
	names := toolNames(t, cs)
	for _, want := range []string{"echo", "reverse", "notes"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %q: %v", want, names)
		}
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError || textOf(res) != `{"text":"hi"}` {
		t.Fatalf("tools/call echo: %v %+v", err, res)
	}

	// A key scoped to echo sees echo alone and may not call the others.
	sc := mcpConnect(t, endpoint, scoped, nil)
	if names := toolNames(t, sc); !slices.Equal(names, []string{"echo"}) {
		t.Errorf("scoped tools/list = %v, want [echo]", names)
	}
	_, err = sc.CallTool(ctx, &mcp.CallToolParams{Name: "reverse", Arguments: map[string]any{"text": "abc"}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, "scopes") {
		t.Errorf("scoped call to reverse: %v, want a JSON-RPC invalid-params error naming the scopes", err)
	}
	if res, err := sc.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"x": 1}}); err != nil || textOf(res) != `{"x":1}` {
		t.Errorf("scoped call to echo: %v %+v", err, res)
	}

	// Disabling a plugin sends list_changed, and its tool is gone.
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/reverse/disable", ""); r.status != 200 {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second): // a hang guard, not a speed assertion
		t.Fatal("no notifications/tools/list_changed after the disable")
	}
	if names := toolNames(t, cs); slices.Contains(names, "reverse") {
		t.Errorf("reverse still listed after disable: %v", names)
	}

	// The session is bound to alice's key: another key is refused on it.
	init := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	hdr := []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Mcp-Session-Id", cs.ID()}
	r := do(t, "POST", endpoint, init, append(hdr, "X-API-Key", scoped)...)
	if r.status != http.StatusForbidden || rpcCode(t, r.body) != jsonrpc.CodeInvalidRequest {
		t.Errorf("another key on alice's session: %d %s", r.status, r.body)
	}

	// Origin: absent or allowed passes, another is refused with 403.
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	base := []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "X-API-Key", alice}
	for _, tc := range []struct {
		origin string
		want   int
	}{{"", 200}, {"https://app.example.com", 200}, {"https://evil.example.com", 403}} {
		h := base
		if tc.origin != "" {
			h = append(slices.Clone(base), "Origin", tc.origin)
		}
		if r := do(t, "POST", endpoint, initialize, h...); r.status != tc.want {
			t.Errorf("origin %q: %d, want %d: %s", tc.origin, r.status, tc.want, r.body)
		} else if tc.want == 403 && rpcCode(t, r.body) == 0 {
			t.Errorf("origin %q: not a JSON-RPC error: %s", tc.origin, r.body)
		}
	}
}

// rpcCode returns the code of a JSON-RPC error response (0 if none).
func rpcCode(t *testing.T, body []byte) int64 {
	t.Helper()
	var m struct {
		JSONRPC string `json:"jsonrpc"`
		Error   *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.JSONRPC != "2.0" || m.Error == nil || m.Error.Message == "" {
		return 0
	}
	return m.Error.Code
}

// upstreamMCP runs a real MCP server built with the SDK on loopback: one
// tool, add, behind a bearer token.
func upstreamMCP(t *testing.T, token string) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "calc", Version: "1"}, nil)
	type args struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Add two integers."}, func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(in.A + in.B)}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestMCPProxy runs a second, real MCP server as the upstream and calls
// its tool through Portico's proxy, and lists it in the registry.
func TestMCPProxy(t *testing.T) {
	t.Parallel()
	up := upstreamMCP(t, "s3cret")
	// Two copies of a skill that calls mcp_call_tool: one granted mcp.
	plugins := ""
	for _, name := range []string{"granted", "ungranted"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \""+name+"\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n"+
			"[[skills]]\nname = \""+name+"\"\ndescription = \"calls an upstream tool\"\n[capabilities]\noptional = [\"mcp\"]\n"), 0o600)
		wasm, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", "mcp.wasm"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o600)
		plugins += "[[plugins]]\nname = \"" + name + "\"\npath = \"" + dir + "\"\n"
		if name == "granted" {
			plugins += "grants = [\"mcp\"]\n"
		}
	}
	g := start(t, small+plugins+fmt.Sprintf("[[mcp.servers]]\nname = \"calc\"\nurl = %q\nheaders = { Authorization = \"Bearer s3cret\" }\n"+
		"[[mcp.servers]]\nname = \"down\"\nurl = \"http://127.0.0.1:1/mcp\"\ntimeout = \"2s\"\n", up.URL))
	alice := userKey(t, g, "alice@example.com", "user")

	// The registry lists both, with status and tools.
	r := g.do(t, "GET", g.url+"/api/v1/mcp/registry", "")
	if r.status != 200 {
		t.Fatalf("registry: %d %s", r.status, r.body)
	}
	var reg struct {
		Servers []struct {
			Name, Status, Error string
			Tools               []struct{ Name string }
		}
	}
	json.Unmarshal(r.body, &reg)
	if len(reg.Servers) != 2 || reg.Servers[0].Name != "calc" || reg.Servers[0].Status != "ok" || len(reg.Servers[0].Tools) != 1 ||
		reg.Servers[0].Tools[0].Name != "add" || reg.Servers[1].Status != "error" || reg.Servers[1].Error == "" {
		t.Errorf("registry: %s", r.body)
	}
	if r := do(t, "GET", g.url+"/api/v1/mcp/registry", "", "X-API-Key", alice); r.status != 403 {
		t.Errorf("registry as a user: %d, want 403", r.status)
	}
	// The upstream's secret header never shows in the config.
	if r := g.do(t, "GET", g.url+"/api/v1/config", ""); strings.Contains(string(r.body), "s3cret") {
		t.Errorf("GET /api/v1/config shows the upstream header: %s", r.body)
	}

	cs := mcpConnect(t, g.url+"/api/v1/mcp/calc/mcp", alice, nil)
	if names := toolNames(t, cs); !slices.Equal(names, []string{"add"}) {
		t.Fatalf("proxied tools = %v", names)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3}})
	if err != nil || res.IsError || textOf(res) != "5" {
		t.Fatalf("proxied add: %v %+v", err, res)
	}
	r = g.do(t, "GET", g.url+"/api/v1/audit?action=mcp.call", "")
	if !strings.Contains(string(r.body), `"calc/add"`) {
		t.Errorf("no audit entry for the proxied call: %s", r.body)
	}

	// A skill granted mcp calls the upstream tool (mcp_call_tool); the
	// reply is the tool's result. Not granted: -2; unknown server: -1.
	call := func(skill, input string) (code int32, result string) {
		t.Helper()
		r := do(t, "POST", g.url+"/api/v1/skills/"+skill+"/invoke", `{"input":`+input+`}`, "X-API-Key", alice)
		out, ok := r.json(t)["output"].(string)
		if r.status != 200 || !ok || len(out) < 4 {
			t.Fatalf("invoke %s: %d %s", skill, r.status, r.body)
		}
		return int32(binary.LittleEndian.Uint32([]byte(out[:4]))), out[4:]
	}
	if code, out := call("granted", `{"server":"calc","tool":"add","arguments":{"a":20,"b":22}}`); code <= 0 || !strings.Contains(out, `"text":"42"`) {
		t.Errorf("granted skill: %d %q", code, out)
	}
	// (Negative codes do not survive the JSON string the API answers
	// with; the result text and the audit trail tell them apart.)
	if _, out := call("ungranted", `{"server":"calc","tool":"add","arguments":{"a":1,"b":1}}`); strings.Contains(out, "content") {
		t.Errorf("ungranted skill got a result: %q", out)
	}
	if _, out := call("granted", `{"server":"nope","tool":"add"}`); !strings.Contains(out, `no such upstream MCP server: "nope"`) {
		t.Errorf("unknown server: %q", out)
	}
	if _, out := call("granted", `{"server":"calc"}`); !strings.Contains(out, "server and tool are required") {
		t.Errorf("no tool: %q", out)
	}
	r = g.do(t, "GET", g.url+"/api/v1/audit?limit=200", "")
	for _, want := range []string{`"actor":"plugin:granted","action":"mcp.call","target":"calc/add"`, `"actor":"plugin:ungranted","action":"capability.denied","target":"mcp"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("audit lacks %s: %s", want, r.body)
		}
	}

	// A key scoped to echo does not reach the upstream; an unknown server
	// is a JSON-RPC error.
	scoped := scopedKey(t, g, "scoped@example.com", "echo")
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	hdr := []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream"}
	if r := do(t, "POST", g.url+"/api/v1/mcp/calc/mcp", initialize, append(hdr, "X-API-Key", scoped)...); r.status != 403 || rpcCode(t, r.body) == 0 {
		t.Errorf("scoped key on the proxy: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", g.url+"/api/v1/mcp/nope/mcp", initialize, append(hdr, "X-API-Key", alice)...); r.status != 404 || rpcCode(t, r.body) == 0 {
		t.Errorf("unknown upstream: %d %s", r.status, r.body)
	}
}

// TestMCPBadInput: malformed JSON-RPC, an unknown method and an oversized
// message get JSON-RPC errors, and the server keeps serving.
func TestMCPBadInput(t *testing.T) {
	t.Parallel()
	g := start(t, small+"[mcp]\nmax_request_bytes = 4096\n")
	endpoint := g.url + "/api/v1/mcp"
	alice := userKey(t, g, "alice@example.com", "user")
	cs := mcpConnect(t, endpoint, alice, nil)
	hdr := []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "X-API-Key", alice}
	session := append(slices.Clone(hdr), "Mcp-Session-Id", cs.ID(), "Mcp-Protocol-Version", cs.InitializeResult().ProtocolVersion)
	big := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 8000) + `"}}}`
	tests := []struct {
		name   string
		body   string
		hdr    []string
		status int
		code   int64
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,`, session, 400, jsonrpc.CodeParseError},
		{"not JSON-RPC", `[1,2,3]`, session, 400, 0},
		{"unknown method", `{"jsonrpc":"2.0","id":2,"method":"tools/frobnicate"}`, session, 400, jsonrpc.CodeMethodNotFound},
		{"oversized params", big, session, 413, jsonrpc.CodeInvalidRequest},
		{"wrong content type", `{}`, []string{"Content-Type", "text/plain", "Accept", "application/json, text/event-stream", "X-API-Key", alice}, 415, jsonrpc.CodeInvalidRequest},
		{"unknown session", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, append(slices.Clone(hdr), "Mcp-Session-Id", "nope"), 404, jsonrpc.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", endpoint, tt.body, tt.hdr...)
			body := r.body
			if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
				_, data, _ := strings.Cut(string(body), "data: ")
				body = []byte(strings.TrimSpace(data))
			}
			if r.status != tt.status || tt.code != 0 && rpcCode(t, body) != tt.code || tt.code == 0 && !strings.Contains(string(body), `"jsonrpc":"2.0"`) {
				t.Errorf("%d %s; want %d and JSON-RPC error %d", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	// Still serving the session.
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"ok": true}}); err != nil || textOf(res) != `{"ok":true}` {
		t.Errorf("after bad input: %v %+v", err, res)
	}
}
