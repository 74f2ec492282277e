package sdk_test

import (
	"errors"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestMCPCallFake(t *testing.T) {
	tests := []struct {
		name    string
		fake    *sdk.Fake
		args    []byte
		want    string
		wantErr error
	}{
		{"answered", &sdk.Fake{MCP: func(server, tool string, args []byte) ([]byte, error) {
			return []byte(`{"content":[{"type":"text","text":"` + server + "/" + tool + " " + string(args) + `"}]}`), nil
		}}, []byte(`{"q":1}`), `{"content":[{"type":"text","text":"wiki/search {"q":1}"}]}`, nil},
		{"no arguments", &sdk.Fake{MCP: func(server, tool string, args []byte) ([]byte, error) {
			return []byte(string(args)), nil
		}}, nil, "", nil},
		{"no server", &sdk.Fake{}, nil, "", sdk.ErrNotFound},
		{"not granted", &sdk.Fake{Grants: []string{"kv"}}, nil, "", sdk.ErrDenied},
		{"tool failed", &sdk.Fake{MCP: func(string, string, []byte) ([]byte, error) { return nil, errors.New("boom") }}, nil, "", sdk.ErrHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdk.UseFake(tt.fake)
			defer sdk.UseFake(sdk.NewFake())
			out, err := sdk.MCPCall("wiki", "search", tt.args)
			if !errors.Is(err, tt.wantErr) || string(out) != tt.want {
				t.Fatalf("MCPCall = %q, %v; want %q, %v", out, err, tt.want, tt.wantErr)
			}
		})
	}
}
