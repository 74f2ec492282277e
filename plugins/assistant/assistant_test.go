package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestAsk(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	var got map[string]any
	f.LLM = func(req []byte) ([]byte, error) {
		json.Unmarshal(req, &got)
		return []byte(`{"text":"Oslo.","model":"m1","provider":"p","usage":{"input_tokens":9,"output_tokens":2}}`), nil
	}
	f.Conf["system"] = "Be terse."
	out, err := sdk.Invoke("ask", []byte(`{"text":"Capital of Norway?","history":[{"role":"user","text":"hi"},{"role":"assistant","text":"hello"}],"session_id":"s"}`))
	if err != nil || string(out) != `{"text":"Oslo.","model":"m1"}` {
		t.Fatalf("%s %v", out, err)
	}
	msgs := got["messages"].([]any)
	if got["system"] != "Be terse." || got["stream"] != true || len(msgs) != 3 || msgs[2].(map[string]any)["content"] != "Capital of Norway?" || msgs[1].(map[string]any)["role"] != "assistant" {
		t.Errorf("request: %v", got)
	}
	if _, err := sdk.Invoke("ask", []byte(`{"history":[]}`)); err == nil {
		t.Error("no text accepted")
	}
	f.LLM = func([]byte) ([]byte, error) { return nil, errors.New("no provider") }
	if _, err := sdk.Invoke("ask", []byte(`{"text":"x"}`)); err == nil {
		t.Error("provider error swallowed")
	}
	f.Grants = []string{}
	if _, err := sdk.Invoke("ask", []byte(`{"text":"x"}`)); err == nil || !strings.Contains(err.Error(), "llm capability") {
		t.Errorf("denied: %v", err)
	}
}
