// Package mcp is Portico's Model Context Protocol surface, built on the
// official Go SDK (github.com/modelcontextprotocol/go-sdk): an MCP server
// whose tools are the active skills, kept in step with the plugin registry
// (a plugin change sends notifications/tools/list_changed); a registry of
// upstream MCP servers from config, which Portico lists, proxies under its
// own auth and audit, and lets skills call through the mcp capability.
//
// The HTTP API authenticates, authorizes and rate-limits every request
// first and hands this package the caller (Caller); sessions are bound to
// the key that opened them.
package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/plugin"
)

// Deps are what the service needs.
type Deps struct {
	Plugins *plugin.Manager
	// Upstream is the registry of upstream MCP servers (NewRegistry); nil
	// makes one. The gateway builds it before the plugins, which call it
	// through the mcp capability, and the service after them.
	Upstream *Registry
	Bus      *events.Bus
	Audit    *audit.Trail
	Logger   *slog.Logger
	Config   func() *config.Config // the live config
	// Getenv resolves ${NAME} in upstream headers.
	Getenv  func(string) string
	Version string
}

// Service is the MCP server of the skills and the upstream registry.
type Service struct {
	d        Deps
	skills   *sdk.Server
	handler  *sdk.StreamableHTTPHandler
	upstream *Registry

	mu    sync.Mutex
	tools map[string]string // tool name -> fingerprint of what was added
}

// New builds the service; Run keeps its tools in step with the plugins.
func New(d Deps) *Service {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{d: d, tools: map[string]string{}}
	s.skills = sdk.NewServer(&sdk.Implementation{Name: "portico", Title: "Portico skills", Version: d.Version}, &sdk.ServerOptions{
		Instructions: "Each tool is a Portico skill; its input is the skill's JSON input.",
		Logger:       d.Logger,
		// Advertise tools (and list_changed) even before the first skill loads.
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
	})
	s.skills.AddReceivingMiddleware(scopeMiddleware)
	s.handler = newHandler(d, func(*http.Request) *sdk.Server { return s.skills })
	if s.upstream = d.Upstream; s.upstream == nil {
		s.upstream = NewRegistry(d)
	}
	return s
}

func newHandler(d Deps, get func(*http.Request) *sdk.Server) *sdk.StreamableHTTPHandler {
	return sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{
		Logger:         d.Logger,
		SessionTimeout: d.Config().MCP.SessionTimeout.D(),
		// The gateway listens where its operator says and checks Origin
		// itself; the API's guard has authenticated the caller.
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        -1, // Serve applies mcp.max_request_bytes, live
	})
}

// Upstream returns the registry of upstream MCP servers.
func (s *Service) Upstream() *Registry { return s.upstream }

// Run keeps the tools in step with the plugin registry until ctx ends:
// every plugin.* event syncs them. Call it before the plugins load.
func (s *Service) Run(ctx context.Context, sub *events.Subscription) {
	defer sub.Close()
	s.Sync("")
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-sub.Events():
			name, _ := pluginOf(e)
			s.Sync(name)
		}
	}
}

// Subscribe subscribes to the events Run needs; subscribe before the
// plugins load so none is missed.
func (s *Service) Subscribe() (*events.Subscription, error) {
	return s.d.Bus.Subscribe("plugin.*", int(s.d.Config().Events.Buffer))
}

func pluginOf(e events.Event) (string, bool) {
	if m, ok := e.Data.(map[string]any); ok {
		n, ok := m["plugin"].(string)
		return n, ok
	}
	return "", false
}

// Sync makes the server's tools the active skills: it removes the ones
// gone, adds new and changed ones, and re-adds the skills of changed (a
// reload, an enable), so clients are told with list_changed.
func (s *Service) Sync(changed string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]plugin.SkillInfo{}
	for _, sk := range s.d.Plugins.Skills() {
		if sk.Status.Serves() {
			want[sk.Name] = sk
		}
	}
	var gone []string
	for name := range s.tools {
		if _, ok := want[name]; !ok {
			gone = append(gone, name)
			delete(s.tools, name)
		}
	}
	if len(gone) > 0 {
		s.skills.RemoveTools(gone...)
	}
	for name, sk := range want {
		fp := sk.Plugin + "\x00" + sk.Description + "\x00" + string(sk.Schema)
		if s.tools[name] == fp && sk.Plugin != changed {
			continue
		}
		s.tools[name] = fp
		s.skills.AddTool(toolOf(sk), s.callSkill)
	}
}

// anyObject is the input schema of a skill that declares none.
var anyObject = json.RawMessage(`{"type":"object"}`)

func toolOf(sk plugin.SkillInfo) *sdk.Tool {
	schema := anyObject
	var probe struct {
		Type string `json:"type"`
	}
	if len(sk.Schema) > 0 && json.Unmarshal(sk.Schema, &probe) == nil && probe.Type == "object" {
		schema = sk.Schema
	}
	return &sdk.Tool{Name: sk.Name, Description: sk.Description, InputSchema: schema}
}

// callSkill invokes the skill under the caller's key: its LLM use is
// counted against that key.
func (s *Service) callSkill(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	c := callerOf(req.Extra)
	if c.KeyID != "" {
		ctx = llm.WithAccount(ctx, c.KeyID)
	}
	args := []byte(req.Params.Arguments)
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	}
	out, _, err := s.d.Plugins.Invoke(ctx, req.Params.Name, args)
	if err != nil {
		return ToolError(err)
	}
	res := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(out)}}}
	var obj map[string]any
	if json.Unmarshal(out, &obj) == nil {
		res.StructuredContent = obj
	}
	return res, nil
}

// protocolKinds are the kinds of a failed skill call that MCP answers
// with a JSON-RPC error (the request was wrong, or refused for the
// caller); every other kind is a
// tool result with isError, which the model may read. Either carries the
// kind: the error's data and the result's structured content are
// {"kind": ...}. This is MCP's table (the HTTP API, the embedding API and
// A2A have theirs; a test holds them to each other).
var protocolKinds = map[plugin.Kind]int64{
	plugin.KindNotFound: jsonrpc.CodeInvalidParams,
	plugin.KindBadInput: jsonrpc.CodeInvalidParams,
	plugin.KindQuota:    jsonrpc.CodeInvalidRequest, // refused for the caller, as HTTP's 429
}

// ToolError is MCP's answer to a failed skill call.
func ToolError(err error) (*sdk.CallToolResult, error) {
	k := plugin.KindOf(err)
	if k == "" {
		return nil, err // the caller went away, say: no tool result to give
	}
	data, _ := json.Marshal(map[string]string{"kind": string(k)})
	if code, ok := protocolKinds[k]; ok {
		return nil, &jsonrpc.Error{Code: code, Message: err.Error(), Data: data}
	}
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}},
		StructuredContent: map[string]any{"kind": string(k), "error": err.Error()}}, nil
}

// scopeMiddleware shows a key scoped to skills only those tools and
// refuses calls to the others.
func scopeMiddleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		c := callerOf(req.GetExtra())
		switch method {
		case "tools/call":
			if p, ok := req.GetParams().(*sdk.CallToolParamsRaw); ok && !c.allows(p.Name) {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
					Message: fmt.Sprintf("tool %q is not among this API key's scopes", p.Name)}
			}
		case "tools/list":
			res, err := next(ctx, method, req)
			if lr, ok := res.(*sdk.ListToolsResult); ok && err == nil && len(c.Scopes) > 0 {
				lr.Tools = slices.DeleteFunc(slices.Clone(lr.Tools), func(t *sdk.Tool) bool { return !c.allows(t.Name) })
			}
			return res, err
		}
		return next(ctx, method, req)
	}
}
