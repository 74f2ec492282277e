package config

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MCP configures the MCP server at /api/v1/mcp and the upstream MCP
// servers Portico fronts (docs/mcp.md).
type MCP struct {
	MaxRequestBytes int64       `koanf:"max_request_bytes" doc:"Largest JSON-RPC message accepted on an MCP endpoint; larger ones get a JSON-RPC error (HTTP 413). Bodies over http.max_body_bytes are refused before that."`
	SessionTimeout  Duration    `koanf:"session_timeout" reload:"restart" doc:"An MCP session without requests for this long is closed; the client initializes a new one."`
	Timeout         Duration    `koanf:"timeout" doc:"Deadline of one call to an upstream MCP server (connecting, listing tools or calling one) unless its table sets timeout."`
	RefreshInterval Duration    `koanf:"refresh_interval" doc:"How long an upstream's tool list is trusted before it is listed again (it is also listed again when the upstream says it changed)."`
	Servers         []MCPServer `koanf:"servers" doc:"Upstream MCP servers (streamable HTTP), one [[mcp.servers]] table each: name, url, headers, timeout (see docs/mcp.md)."`
}

// MCPServer is one [[mcp.servers]] table: an upstream MCP server on the
// streamable HTTP transport.
type MCPServer struct {
	Name string `koanf:"name" json:"name"`
	URL  string `koanf:"url" json:"url"`
	// Headers are sent with every request to the upstream; a value may name
	// environment variables as ${NAME} (for tokens). Always redacted.
	Headers map[string]string `koanf:"headers" json:"headers" secret:"true"`
	Timeout Duration          `koanf:"timeout" json:"timeout"` // 0: mcp.timeout
}

// A2A configures the A2A agent card and JSON-RPC endpoint (docs/a2a.md).
type A2A struct {
	Name            string     `koanf:"name" doc:"Name on the gateway's agent card (/.well-known/agent-card.json)."`
	Description     string     `koanf:"description" doc:"Description on the gateway's agent card."`
	PublicURL       string     `koanf:"public_url" doc:"Base URL clients reach the gateway at (https://agents.example.com); the cards' urls are built on it. Empty: taken from each card request's Host."`
	MaxRequestBytes int64      `koanf:"max_request_bytes" doc:"Largest JSON-RPC request accepted on POST /a2a; larger ones get a JSON-RPC error (HTTP 413)."`
	Agents          []A2AAgent `koanf:"agents" doc:"Further agents, one [[a2a.agents]] table each (name, description, skills): each has its card at /.well-known/agent-cards/{name}."`
}

// A2AAgent is one [[a2a.agents]] table: a named agent card advertising a
// subset of the skills.
type A2AAgent struct {
	Name        string   `koanf:"name" json:"name"`
	Description string   `koanf:"description" json:"description"`
	Skills      []string `koanf:"skills" json:"skills"` // empty: every active skill
}

func defaultMCP() MCP {
	return MCP{MaxRequestBytes: 256 << 10, SessionTimeout: Duration(30 * time.Minute), Timeout: Duration(30 * time.Second),
		RefreshInterval: Duration(time.Minute), Servers: []MCPServer{}}
}

func defaultA2A() A2A {
	return A2A{Name: "Portico", Description: "An agent gateway whose skills are WebAssembly plugins.", MaxRequestBytes: 256 << 10, Agents: []A2AAgent{}}
}

func (c *Config) validateMCP(bad func(key, format string, args ...any)) {
	m := c.MCP
	if m.MaxRequestBytes < 1024 {
		bad("mcp.max_request_bytes", "must be at least 1024 (got %d)", m.MaxRequestBytes)
	}
	for k, d := range map[string]Duration{"mcp.session_timeout": m.SessionTimeout, "mcp.timeout": m.Timeout, "mcp.refresh_interval": m.RefreshInterval} {
		if d <= 0 {
			bad(k, "must be a positive duration (got %s)", d.D())
		}
	}
	names := map[string]bool{}
	for i, s := range m.Servers {
		key := fmt.Sprintf("mcp.servers[%d]", i)
		if !pluginName.MatchString(s.Name) || s.Name == "registry" {
			bad(key+".name", "%q must be 1 to 64 lower-case letters, digits, _ or - (and not \"registry\")", s.Name)
		} else if names[s.Name] {
			bad(key+".name", "server %q is listed twice", s.Name)
		}
		names[s.Name] = true
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".url", "want the server's streamable HTTP URL, such as https://mcp.example.com/mcp (got %q)", s.URL)
		}
		for h := range s.Headers {
			if h == "" || strings.ContainsAny(h, " :\r\n") || http.CanonicalHeaderKey(h) == "" {
				bad(key+".headers", "%q is not a header name", h)
			}
		}
		if s.Timeout < 0 {
			bad(key+".timeout", "must not be negative")
		}
	}
	a := c.A2A
	if strings.TrimSpace(a.Name) == "" {
		bad("a2a.name", "must not be empty")
	}
	if a.PublicURL != "" {
		if u, err := url.Parse(a.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			bad("a2a.public_url", "want a base URL such as https://agents.example.com (got %q)", a.PublicURL)
		}
	}
	if a.MaxRequestBytes < 1024 {
		bad("a2a.max_request_bytes", "must be at least 1024 (got %d)", a.MaxRequestBytes)
	}
	agents := map[string]bool{}
	for i, ag := range a.Agents {
		key := fmt.Sprintf("a2a.agents[%d]", i)
		if !pluginName.MatchString(ag.Name) {
			bad(key+".name", "%q must be 1 to 64 lower-case letters, digits, _ or -", ag.Name)
		} else if agents[ag.Name] {
			bad(key+".name", "agent %q is listed twice", ag.Name)
		}
		agents[ag.Name] = true
		for _, s := range ag.Skills {
			if !skillName.MatchString(s) {
				bad(key+".skills", "%q is not a skill name", s)
			}
		}
	}
}
