package sdk_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestCompatible(t *testing.T) {
	tests := []struct {
		name         string
		major, minor int
		want         bool
	}{
		{"same version", sdk.ABIMajor, sdk.ABIMinor, true},
		{"newer host minor", sdk.ABIMajor, sdk.ABIMinor + 1, true},
		{"older host minor", sdk.ABIMajor, sdk.ABIMinor - 1, false},
		{"other major", sdk.ABIMajor + 1, sdk.ABIMinor, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sdk.Compatible(tt.major, tt.minor); got != tt.want {
				t.Errorf("Compatible(%d, %d) = %v, want %v", tt.major, tt.minor, got, tt.want)
			}
		})
	}
}

func ExampleABIVersion() {
	fmt.Println(sdk.ABIVersion())
	// Output: v1.2
}

func TestDispatchErrors(t *testing.T) {
	sdk.UseFake(sdk.NewFake())
	sdk.Skill("fails", func(sdk.Input) ([]byte, error) { return nil, errors.New("upstream down") })
	tests := []struct {
		skill   string
		wantErr string
		bad     bool
	}{
		{"fails", "upstream down", false},
		{"missing", "no skill missing", true},
	}
	for _, tt := range tests {
		_, err := sdk.Invoke(tt.skill, nil)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: %v", tt.skill, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a skill twice did not panic")
		}
	}()
	sdk.Skill("fails", nil)
}

func TestHostAPIOnFake(t *testing.T) {
	f := sdk.UseFake(&sdk.Fake{Grants: []string{"kv"}, KV: map[string][]byte{}})
	if _, err := sdk.KVGet("nope"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if err := sdk.Emit("x", nil); !errors.Is(err, sdk.ErrDenied) {
		t.Errorf("ungranted emit: %v", err)
	}
	if _, _, err := sdk.HTTP(sdk.Request{URL: "https://example.com"}); !errors.Is(err, sdk.ErrDenied) {
		t.Errorf("ungranted http: %v", err)
	}
	f.Grants = nil
	f.HTTP = func(req string) (int, []byte, error) {
		if !strings.HasPrefix(req, "POST https://api.example.com/x\n") || !strings.HasSuffix(req, "\n\nbody") {
			return 0, nil, errors.New("bad request text " + req)
		}
		return 201, []byte("ok"), nil
	}
	status, body, err := sdk.HTTP(sdk.Request{Method: "POST", URL: "https://api.example.com/x", Header: map[string]string{"A": "b"}, Body: []byte("body")})
	if err != nil || status != 201 || string(body) != "ok" {
		t.Errorf("http: %d %q %v", status, body, err)
	}
	if _, err := sdk.LLM([]byte(`{}`)); !errors.Is(err, sdk.ErrHost) || !strings.Contains(err.Error(), "no LLM provider") {
		t.Errorf("llm without provider: %v", err)
	}
	if _, err := sdk.CallSkill("ghost", nil); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("unknown skill: %v", err)
	}
	f.Conf = map[string]string{"city": "Oslo"}
	if v, ok := sdk.Config("city"); !ok || v != "Oslo" {
		t.Errorf("config: %q %v", v, ok)
	}
	sdk.Logf("hello %d", 1)
	if len(f.Logs) != 1 || f.Logs[0] != "hello 1" {
		t.Errorf("logs: %v", f.Logs)
	}
}

// The host's messages come through with the sentinel errors in front, for
// errors.Is.
func TestHostErrorMessages(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	f.Skills["fails"] = func([]byte) ([]byte, error) { return nil, errors.New("boom") }
	f.LLM = func([]byte) ([]byte, error) { return nil, errors.New("rate limited") }
	f.HTTP = func(string) (int, []byte, error) { return 0, nil, errors.New("dial timeout") }
	_, err1 := sdk.CallSkill("fails", nil)
	_, err2 := sdk.LLM(nil)
	_, _, err3 := sdk.HTTP(sdk.Request{URL: "https://example.com/"})
	f.HTTP = nil
	_, _, err4 := sdk.HTTP(sdk.Request{URL: "https://example.com/"})
	for _, tt := range []struct {
		err  error
		is   error
		want string
	}{
		{err1, sdk.ErrHost, "host error: skill fails: boom"},
		{err2, sdk.ErrHost, "host error: rate limited"},
		{err3, sdk.ErrHost, "host error: dial timeout"},
		{err4, sdk.ErrDenied, "refused by the gateway: host is not on the plugin's http_allow list"},
	} {
		if !errors.Is(tt.err, tt.is) || tt.err.Error() != tt.want {
			t.Errorf("%v, want %q (wrapping %v)", tt.err, tt.want, tt.is)
		}
	}
}
