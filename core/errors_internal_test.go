package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/porticohq/portico/core/internal/httpapi"
	"github.com/porticohq/portico/core/internal/mcp"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/hostapi"
)

// TestErrorKindsAgree sends each kind of failed plugin call, as the
// runtime and the manager make it, through the four surfaces' tables (the
// HTTP API, the embedding API, MCP and A2A) and checks that each reports
// the same kind and that they agree on whose fault it is: a 4xx over HTTP
// is a JSON-RPC error in MCP and A2A, a 5xx is a tool error and a failed
// task.
func TestErrorKindsAgree(t *testing.T) {
	refused := func(kind error) error { return fmt.Errorf("%w: %w: refused", hostapi.ErrRefused, kind) }
	call := func(kind error) error { return &hostapi.CallError{Plugin: "p", Kind: kind, Msg: "m"} }
	cases := []struct {
		name string
		err  error
		kind plugin.Kind
	}{
		{"no such skill", fmt.Errorf("%w: no skill %q", plugin.ErrNotFound, "x"), plugin.KindNotFound},
		{"schema mismatch", fmt.Errorf("%w: input", plugin.ErrInput), plugin.KindBadInput},
		{"the skill refused its input", call(hostapi.ErrBadInput), plugin.KindBadInput},
		{"disabled", fmt.Errorf("%w: skill x", plugin.ErrDisabled), plugin.KindUnavailable},
		{"failed plugin", fmt.Errorf("%w: plugin p", plugin.ErrFailed), plugin.KindUnavailable},
		{"closed under the call", call(hostapi.ErrClosed), plugin.KindUnavailable}, // 502 over HTTP, ErrUnavailable when embedded, before
		{"busy", call(hostapi.ErrBusy), plugin.KindBusy},
		{"timeout", call(hostapi.ErrTimeout), plugin.KindTimeout},
		{"guest error", call(hostapi.ErrGuest), plugin.KindFailed},
		{"trap", call(hostapi.ErrTrap), plugin.KindFailed},
		{"output over the limit", call(hostapi.ErrOutputLimit), plugin.KindFailed},
		{"the plugin's own kv quota", call(hostapi.ErrQuota), plugin.KindFailed},
		{"the caller's token quota", &hostapi.CallError{Plugin: "p", Kind: hostapi.ErrQuota, Msg: "m", Cause: refused(hostapi.ErrQuota)}, plugin.KindQuota},
		{"too deep", &hostapi.CallError{Plugin: "p", Kind: hostapi.ErrDepth, Msg: "m", Cause: refused(hostapi.ErrDepth)}, plugin.KindDepth},
	}
	covered := map[plugin.Kind]bool{}
	sentinels := map[error]plugin.Kind{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if k := plugin.KindOf(c.err); k != c.kind {
				t.Fatalf("KindOf = %q, want %q", k, c.kind)
			}
			covered[c.kind] = true
			// HTTP
			var he *httpapi.Error
			if !errors.As(httpapi.PluginError(c.err), &he) {
				t.Fatalf("HTTP: %v is not an API error", httpapi.PluginError(c.err))
			}
			if got := he.Details.(map[string]any)["kind"]; got != string(c.kind) {
				t.Errorf("HTTP details.kind = %v", got)
			}
			callerFault := he.Status < 500 && he.Code != "plugin_disabled" // 409 for disabled: still the plugin's side
			// The embedding API
			public := invokeError(c.err)
			want := invokeErrors[c.kind]
			if !errors.Is(public, want) {
				t.Errorf("Invoke's error %v does not match %v", public, want)
			}
			if other, ok := sentinels[want]; ok && other != c.kind {
				t.Errorf("%v stands for both %s and %s", want, other, c.kind)
			}
			sentinels[want] = c.kind
			// MCP
			res, rpcErr := mcp.ToolError(c.err)
			var je *jsonrpc.Error
			switch {
			case errors.As(rpcErr, &je):
				var data map[string]string
				json.Unmarshal(je.Data, &data)
				if data["kind"] != string(c.kind) {
					t.Errorf("MCP error data %s", je.Data)
				}
				if !callerFault {
					t.Errorf("MCP answers a JSON-RPC error where HTTP answers %d", he.Status)
				}
			case res != nil && res.IsError:
				if res.StructuredContent.(map[string]any)["kind"] != string(c.kind) {
					t.Errorf("MCP tool error %v", res.StructuredContent)
				}
				if callerFault {
					t.Errorf("MCP answers a tool error where HTTP answers %d", he.Status)
				}
			default:
				t.Errorf("MCP: %v, %v", res, rpcErr)
			}
			// A2A
			if a := httpapi.A2AError(c.err); a != nil {
				if !strings.Contains(a.Error(), string(c.kind)) || !callerFault {
					t.Errorf("A2A JSON-RPC error %v where HTTP answers %d", a, he.Status)
				}
			} else if callerFault {
				t.Errorf("A2A fails the task where HTTP answers %d", he.Status)
			}
		})
	}
	for _, k := range plugin.Kinds {
		if !covered[k] {
			t.Errorf("kind %s has no case", k)
		}
	}
	if s := httpapi.PluginError(fmt.Errorf("%w: skill x", plugin.ErrDisabled)).(*httpapi.Error); s.Status != http.StatusConflict || s.Code != "plugin_disabled" {
		t.Errorf("a disabled plugin over HTTP: %d %s", s.Status, s.Code)
	}
}
