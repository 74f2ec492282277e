package sdk

// mcpBackend is the part of the host API that reaches upstream MCP servers
// (ABI v1.2); both backends implement it.
type mcpBackend interface {
	mcpCall(req []byte) ([]byte, int32)
}

// MCPCall calls tool on the upstream MCP server the operator configured
// under that name ([[mcp.servers]]), with its JSON arguments (nil for
// none), and returns the tool's result as JSON: MCP's CallToolResult,
// {"content":[{"type":"text","text":"..."}],"isError":false,...} [mcp].
// ErrNotFound means no such server. It needs a host with ABI v1.2 or later;
// an older host refuses the module at load, naming the import
// mcp_call_tool.
func MCPCall(server, tool string, arguments []byte) ([]byte, error) {
	req := NewObject().Str("server", server).Str("tool", tool)
	if len(arguments) > 0 {
		req.Raw("arguments", arguments)
	}
	b := req.Bytes()
	if err := req.Err(); err != nil {
		return nil, err
	}
	out, code := be.(mcpBackend).mcpCall(b)
	if code < 0 {
		if code == -3 || code == -1 {
			return nil, &hostError{resultErr(code), "MCP server " + server + ": " + string(out)}
		}
		return nil, resultErr(code)
	}
	return out, nil
}
