//go:build wasip1

package sdk

//go:wasmimport portico mcp_call_tool
func hostMCPCallTool(ptr, size uint32) int32

func (wasmBackend) mcpCall(req []byte) ([]byte, int32) {
	code := hostMCPCallTool(ptr(req), uint32(len(req)))
	if code == -2 || code == -4 || code == -5 {
		return nil, code
	}
	out, _ := copyOut(func(buf, limit uint32) int32 { return hostResult(buf, limit) })
	return out, code
}
