package mcp

import (
	"log/slog"
	"testing"

	"github.com/porticohq/portico/core/internal/config"
)

func TestOriginAllowed(t *testing.T) {
	allowed := []string{"https://app.example.com", "https://*.corp.example"}
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"https://APP.example.com", true},
		{"http://app.example.com", false},
		{"https://a.corp.example", true},
		{"http://a.corp.example", false},
		{"https://evil.example.com", false},
		{"null", false},
		{"not a url", false},
	}
	for _, tt := range tests {
		if got := originAllowed(tt.origin, allowed); got != tt.want {
			t.Errorf("originAllowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if !originAllowed("https://any.where", []string{"*"}) {
		t.Error(`"*" does not allow every origin`)
	}
}

// TestHeadersFromEnv: header values name environment variables, resolved
// when the config is applied; a changed table replaces the upstream.
func TestHeadersFromEnv(t *testing.T) {
	env := map[string]string{"TOKEN": "abc"}
	c := config.Default()
	c.MCP.Servers = []config.MCPServer{{Name: "x", URL: "http://127.0.0.1:1/mcp", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}", "X-Plain": "v"}}}
	g := NewRegistry(Deps{Logger: slog.New(slog.DiscardHandler), Getenv: func(k string) string { return env[k] }, Config: func() *config.Config { return c }})
	u, err := g.get("x")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.headers.Get("Authorization"); got != "Bearer abc" || u.headers.Get("X-Plain") != "v" {
		t.Errorf("headers = %v", u.headers)
	}
	g.apply(c.MCP)
	if same, _ := g.get("x"); same != u {
		t.Error("an unchanged table replaced its upstream")
	}
	c.MCP.Servers[0].Headers = map[string]string{"Authorization": "Bearer new"}
	g.apply(c.MCP)
	if next, _ := g.get("x"); next == u || next.headers.Get("Authorization") != "Bearer new" {
		t.Errorf("a changed table kept its upstream: %v", next.headers)
	}
	if _, err := g.get("y"); err == nil {
		t.Error("an unknown server was found")
	}
}
