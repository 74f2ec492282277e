package config

import (
	"fmt"
	"strings"
)

// Middleware configures the two chains of WASM middleware plugins
// (http-wasm): pre_auth sees every request before authentication;
// post_auth runs after it, for authenticated routes. Each chain is an
// ordered list of groups; a request runs the plugins of every group whose
// paths match it, in the order listed.
type Middleware struct {
	PreAuth      []MiddlewareGroup `koanf:"pre_auth" doc:"Groups of middleware run before authentication, one [[middleware.pre_auth]] table each (see docs/middleware.md)."`
	PostAuth     []MiddlewareGroup `koanf:"post_auth" doc:"Groups of middleware run after authentication, on authenticated routes, one [[middleware.post_auth]] table each."`
	MaxBodyBytes int64             `koanf:"max_body_bytes" doc:"Largest request or response body a middleware may buffer; a larger one fails the request with 502 plugin_error."`
}

// MiddlewareGroup is one [[middleware.pre_auth]] or [[middleware.post_auth]]
// table.
type MiddlewareGroup struct {
	Name    string   `koanf:"name" json:"name"`       // a label for logs and errors
	Paths   []string `koanf:"paths" json:"paths"`     // path prefixes ("/api/v1/"); empty: every path
	Plugins []string `koanf:"plugins" json:"plugins"` // middleware plugins, in order
}

func (c *Config) validateMiddleware(bad func(key, format string, args ...any)) {
	if c.Middleware.MaxBodyBytes < 1 {
		bad("middleware.max_body_bytes", "must be at least 1 (got %d)", c.Middleware.MaxBodyBytes)
	}
	for chain, groups := range map[string][]MiddlewareGroup{"pre_auth": c.Middleware.PreAuth, "post_auth": c.Middleware.PostAuth} {
		for i, g := range groups {
			key := fmt.Sprintf("middleware.%s[%d]", chain, i)
			if len(g.Plugins) == 0 {
				bad(key+".plugins", "list at least one middleware plugin")
			}
			for _, p := range g.Plugins {
				if !pluginName.MatchString(p) {
					bad(key+".plugins", "%q is not a plugin name", p)
				}
			}
			for _, p := range g.Paths {
				if !strings.HasPrefix(p, "/") {
					bad(key+".paths", "%q must start with /", p)
				}
			}
		}
	}
}

// Applies reports whether the group runs for a request path.
func (g MiddlewareGroup) Applies(path string) bool {
	if len(g.Paths) == 0 {
		return true
	}
	for _, p := range g.Paths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
