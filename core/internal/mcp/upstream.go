package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/plugin"
)

// Errors of the registry, for errors.Is.
var (
	ErrUnknownServer = plugin.ErrUnknownMCPServer // a guest's mcp_call_tool answers -1 for it
	ErrUpstream      = errors.New("upstream MCP server failed")
	ErrBadRequest    = errors.New("invalid MCP tool call request")
)

// Registry holds the upstream MCP servers of the config: one client
// session each, opened on first use and opened again after it breaks.
type Registry struct {
	d          Deps
	newHandler func(func(*http.Request) *sdk.Server) *sdk.StreamableHTTPHandler

	mu  sync.Mutex
	ups map[string]*upstream
}

// upstream is one configured server, its session and its tools.
type upstream struct {
	cfg     config.MCPServer
	timeout time.Duration
	refresh time.Duration
	headers http.Header
	log     func(msg string, args ...any)
	record  func(ctx context.Context, actor, tool string, err error)

	// The proxy: an MCP server whose tools mirror the upstream's.
	proxy   *sdk.Server
	handler *sdk.StreamableHTTPHandler

	mu       sync.Mutex
	session  *sdk.ClientSession
	tools    []*sdk.Tool
	proxied  map[string]bool // tool names the proxy server has
	listedAt time.Time
	lastErr  string
	stale    bool // the upstream said its tools changed
}

// NewRegistry returns the registry of the upstream MCP servers of the
// live config (d.Config); it uses d's Logger, Audit, Getenv, Version and
// Config, not its Plugins.
func NewRegistry(d Deps) *Registry {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Registry{d: d, newHandler: func(get func(*http.Request) *sdk.Server) *sdk.StreamableHTTPHandler { return newHandler(d, get) }, ups: map[string]*upstream{}}
	g.apply(d.Config().MCP)
	return g
}

// Apply applies a new config's upstream servers.
func (g *Registry) Apply(_ context.Context, c *config.Config) error {
	g.apply(c.MCP)
	return nil
}

// Close closes the upstream sessions.
func (g *Registry) Close(context.Context) error {
	g.close()
	return nil
}

// apply keeps servers whose table is unchanged and replaces the others.
func (g *Registry) apply(c config.MCP) {
	getenv := g.d.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	next := map[string]*upstream{}
	for _, sc := range c.Servers {
		timeout := sc.Timeout.D()
		if timeout == 0 {
			timeout = c.Timeout.D()
		}
		if old, ok := g.ups[sc.Name]; ok && old.cfg.URL == sc.URL && maps.Equal(old.cfg.Headers, sc.Headers) {
			old.mu.Lock()
			old.timeout, old.refresh = timeout, c.RefreshInterval.D()
			old.mu.Unlock()
			next[sc.Name] = old
			continue
		}
		u := &upstream{cfg: sc, timeout: timeout, refresh: c.RefreshInterval.D(), headers: http.Header{}, proxied: map[string]bool{},
			log: func(msg string, args ...any) { g.d.Logger.Warn(msg, append(args, "mcp_server", sc.Name)...) }}
		u.record = func(ctx context.Context, actor, tool string, err error) { g.record(ctx, actor, sc.Name, tool, err) }
		for k, v := range sc.Headers {
			u.headers.Set(k, os.Expand(v, getenv))
		}
		u.proxy = sdk.NewServer(&sdk.Implementation{Name: "portico-" + sc.Name, Version: g.d.Version}, &sdk.ServerOptions{
			Logger: g.d.Logger, Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}}})
		u.handler = g.newHandler(func(r *http.Request) *sdk.Server {
			// A new session sees the upstream's tools as they are now.
			if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
				ctx, cancel := context.WithTimeout(r.Context(), u.timeout)
				defer cancel()
				if _, err := u.listTools(ctx); err != nil {
					u.log("upstream tools not listed", "error", err)
				}
			}
			return u.proxy
		})
		next[sc.Name] = u
	}
	for name, old := range g.ups {
		if next[name] != old {
			old.closeSession()
		}
	}
	g.ups = next
}

func (g *Registry) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.ups {
		u.closeSession()
	}
}

func (g *Registry) get(name string) (*upstream, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.ups[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (configured: [[mcp.servers]])", ErrUnknownServer, name)
	}
	return u, nil
}

// ServerInfo describes an upstream server for GET /api/v1/mcp/registry.
type ServerInfo struct {
	Name      string     `json:"name"`
	URL       string     `json:"url"`
	Status    string     `json:"status"` // ok or error
	Error     string     `json:"error,omitempty"`
	Tools     []ToolInfo `json:"tools"`
	ListedAt  *time.Time `json:"listed_at,omitempty"`
	ProxyPath string     `json:"proxy_path"`
}

// ToolInfo is one upstream tool.
type ToolInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	InputSchema any    `json:"input_schema,omitempty"`
}

// List lists every upstream with its status and tools, listing each
// server's tools again when they are older than mcp.refresh_interval.
func (g *Registry) List(ctx context.Context) []ServerInfo {
	g.mu.Lock()
	ups := make([]*upstream, 0, len(g.ups))
	for _, u := range g.ups {
		ups = append(ups, u)
	}
	g.mu.Unlock()
	sort.Slice(ups, func(i, j int) bool { return ups[i].cfg.Name < ups[j].cfg.Name })
	out := make([]ServerInfo, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, u.timeout)
			defer cancel()
			tools, err := u.listTools(cctx)
			info := ServerInfo{Name: u.cfg.Name, URL: u.cfg.URL, Status: "ok", Tools: []ToolInfo{}, ProxyPath: "/api/v1/mcp/" + u.cfg.Name + "/mcp"}
			if err != nil {
				info.Status, info.Error = "error", err.Error()
			}
			for _, t := range tools {
				info.Tools = append(info.Tools, ToolInfo{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema})
			}
			u.mu.Lock()
			if !u.listedAt.IsZero() {
				at := u.listedAt.UTC()
				info.ListedAt = &at
			}
			u.mu.Unlock()
			out[i] = info
		}()
	}
	wg.Wait()
	return out
}

// CallTool calls a tool of an upstream server.
func (g *Registry) CallTool(ctx context.Context, server, tool string, args json.RawMessage) (*sdk.CallToolResult, error) {
	u, err := g.get(server)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	return u.call(ctx, tool, args)
}

// Proxy serves /api/v1/mcp/{server}/mcp: an MCP server whose tools are the
// upstream's, each call forwarded on the gateway's own session with the
// configured headers. Calls are audited.
func (s *Service) Proxy(w http.ResponseWriter, r *http.Request, server string, c Caller) {
	u, err := s.upstream.get(server)
	if err != nil {
		writeRPCError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, err.Error())
		return
	}
	s.serve(w, r, c, u.handler)
}

// connect opens the session when there is none; u.mu is held.
func (u *upstream) connect(ctx context.Context) (*sdk.ClientSession, error) {
	if u.session != nil {
		return u.session, nil
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "portico"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			u.mu.Lock()
			u.stale = true
			u.mu.Unlock()
		},
	})
	hc := &http.Client{Transport: headerTransport{h: u.headers, rt: http.DefaultTransport}}
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: u.cfg.URL, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		u.lastErr = err.Error()
		return nil, fmt.Errorf("%w: connect to %s: %w", ErrUpstream, u.cfg.Name, err)
	}
	u.session = cs
	return cs, nil
}

func (u *upstream) closeSession() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.session != nil {
		u.session.Close()
		u.session = nil
	}
}

// listTools returns the upstream's tools, listing them again when they are
// stale, and mirrors them on the proxy server.
func (u *upstream) listTools(ctx context.Context) ([]*sdk.Tool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.stale && !u.listedAt.IsZero() && time.Since(u.listedAt) < u.refresh {
		return u.tools, nil
	}
	var tools []*sdk.Tool
	err := u.retry(ctx, func(cs *sdk.ClientSession) error {
		tools = nil
		for t, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return err
			}
			tools = append(tools, t)
		}
		return nil
	})
	if err != nil {
		u.lastErr = err.Error()
		return u.tools, err
	}
	u.tools, u.listedAt, u.stale, u.lastErr = tools, time.Now(), false, ""
	u.mirror()
	return tools, nil
}

// mirror makes the proxy server's tools the upstream's; u.mu is held.
func (u *upstream) mirror() {
	now := map[string]bool{}
	for _, t := range u.tools {
		if t.InputSchema == nil {
			t.InputSchema = anyObject
		}
		now[t.Name] = true
		u.proxy.AddTool(t, u.forward)
	}
	var gone []string
	for name := range u.proxied {
		if !now[name] {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		u.proxy.RemoveTools(gone...)
	}
	u.proxied = now
}

// forward is the proxy's handler of every tool.
func (u *upstream) forward(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	res, err := u.call(ctx, req.Params.Name, req.Params.Arguments)
	u.record(ctx, "key:"+callerOf(req.Extra).KeyID, req.Params.Name, err)
	return res, err
}

func (u *upstream) call(ctx context.Context, tool string, args json.RawMessage) (*sdk.CallToolResult, error) {
	var res *sdk.CallToolResult
	params := &sdk.CallToolParams{Name: tool}
	if len(args) > 0 && string(args) != "null" {
		params.Arguments = args
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	err := u.retry(ctx, func(cs *sdk.ClientSession) error {
		var err error
		res, err = cs.CallTool(ctx, params)
		return err
	})
	return res, err
}

// retry runs fn on the session, opening it first; when the session broke
// (the upstream restarted or forgot it) it opens a new one and runs fn
// once more. u.mu is held.
func (u *upstream) retry(ctx context.Context, fn func(*sdk.ClientSession) error) error {
	for attempt := 0; ; attempt++ {
		cs, err := u.connect(ctx)
		if err != nil {
			return err
		}
		err = fn(cs)
		if err == nil {
			return nil
		}
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) || attempt > 0 || ctx.Err() != nil {
			// The upstream answered (an unknown tool, bad arguments): pass it on.
			if errors.As(err, &rpcErr) {
				return err
			}
			return fmt.Errorf("%w: %s: %w", ErrUpstream, u.cfg.Name, err)
		}
		u.session.Close()
		u.session = nil
	}
}

// headerTransport adds the configured headers to every upstream request.
type headerTransport struct {
	h  http.Header
	rt http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.rt.RoundTrip(r)
}

// PluginCall serves the mcp capability's mcp_call_tool for plugin: the
// request is {"server","tool","arguments"}, the reply the tool's result
// (MCP's CallToolResult as JSON). Calls are audited.
func (g *Registry) PluginCall(ctx context.Context, pluginName string, request []byte) ([]byte, error) {
	var req struct {
		Server    string          `json:"server"`
		Tool      string          `json:"tool"`
		Arguments json.RawMessage `json:"arguments"`
	}
	dec := json.NewDecoder(bytes.NewReader(request))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Server == "" || req.Tool == "" {
		return nil, fmt.Errorf("%w: server and tool are required", ErrBadRequest)
	}
	res, err := g.CallTool(ctx, req.Server, req.Tool, req.Arguments)
	g.record(ctx, "plugin:"+pluginName, req.Server, req.Tool, err)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// record audits an upstream tool call.
func (g *Registry) record(ctx context.Context, actor, server, tool string, err error) {
	e := audit.Entry{Actor: actor, Action: "mcp.call", Target: server + "/" + tool, Outcome: audit.Success}
	if err != nil {
		e.Outcome, e.Details = audit.Failure, map[string]any{"error": err.Error()}
	}
	if g.d.Audit == nil {
		return
	}
	if aerr := g.d.Audit.Record(context.WithoutCancel(ctx), e); aerr != nil {
		g.d.Logger.Error("audit record failed", "action", e.Action, "error", aerr)
	}
}
