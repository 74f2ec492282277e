package main

import (
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestSummarize(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	out, err := sdk.Invoke("summarize", []byte(`{"text":"A b. C d. E f g h i j k.","max_chars":10}`))
	if err != nil || !strings.Contains(string(out), `"summary":"A b. C d."`) || !strings.Contains(string(out), "extractive") {
		t.Errorf("fallback: %s %v", out, err)
	}
	f.LLM = func(req []byte) ([]byte, error) { return []byte(`{"text":"short"}`), nil }
	out, err = sdk.Invoke("summarize", []byte(`{"text":"anything"}`))
	if err != nil || string(out) != `{"method":"llm","summary":"short"}` {
		t.Errorf("llm: %s %v", out, err)
	}
}
