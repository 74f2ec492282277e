package hostapi

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/api"
)

// ErrNoServer is what MCPHost.MCP returns for an upstream MCP server the
// gateway does not have.
var ErrNoServer = errors.New("no such upstream MCP server")

// MCPHost is a Host that reaches upstream MCP servers (ABI v1.2,
// capability mcp). It is optional: a Host without it answers
// mcp_call_tool with an error.
type MCPHost interface {
	// MCP calls an upstream tool: request is {"server","tool","arguments"}
	// and the reply MCP's CallToolResult, both JSON.
	MCP(ctx context.Context, request []byte) ([]byte, error)
}

// mcpCallTool is mcp_call_tool(req, req_len) -> len: the reply's length
// (fetched with result), -1 no such server, -2 not granted, -3 failed (the
// message is the result).
func mcpCallTool(ctx context.Context, m api.Module, s []uint64) {
	c := callOf(ctx)
	if !c.p.granted(ctx, CapMCP) {
		s[0] = api.EncodeI32(ResDenied)
		return
	}
	h, ok := c.p.opts.Host.(MCPHost)
	if !ok {
		c.result = []byte("this host reaches no upstream MCP servers")
		s[0] = api.EncodeI32(ResError)
		return
	}
	out, err := h.MCP(ctx, append([]byte{}, read(m, uint32(s[0]), uint32(s[1]))...))
	c.answer(s, out, err)
}
