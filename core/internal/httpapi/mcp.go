package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/mcp"
)

func caller(r *http.Request) mcp.Caller {
	p := PrincipalFrom(r.Context())
	if p == nil {
		return mcp.Caller{}
	}
	return mcp.Caller{KeyID: p.KeyID, Scopes: p.Scopes}
}

// mcpServe serves /api/v1/mcp (MCP streamable HTTP; POST, GET, DELETE):
// the active skills as tools, for the key the guard authenticated.
func (a *API) mcpServe(w http.ResponseWriter, r *http.Request) error {
	a.d.MCP.ServeHTTP(w, r, caller(r))
	return nil
}

// mcpProxy serves /api/v1/mcp/{server}/mcp: an upstream MCP server's tools
// under Portico's auth, rate limits and audit. A key scoped to skills
// reaches only the servers named among its scopes.
func (a *API) mcpProxy(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "server")
	if p := PrincipalFrom(r.Context()); p != nil && !p.Allows(name) {
		writeRPCError(w, http.StatusForbidden, -32600, "upstream MCP server \""+name+"\" is not among this API key's scopes")
		return nil
	}
	a.d.MCP.Proxy(w, r, name, caller(r))
	return nil
}

// mcpRegistry lists the upstream MCP servers with their status and tools.
func (a *API) mcpRegistry(w http.ResponseWriter, r *http.Request) error {
	list := a.d.MCP.Upstream().List(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"servers": list, "total": len(list)})
	return nil
}
