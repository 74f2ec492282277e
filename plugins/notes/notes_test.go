package main

import (
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestNotes(t *testing.T) {
	sdk.UseFake(sdk.NewFake())
	steps := []struct {
		skill, input, want, err string
	}{
		{"remember", `{"key":"shop","text":"milk"}`, `{"remembered":"shop"}`, ""},
		{"remember", `{"key":"todo","text":"call"}`, `{"remembered":"todo"}`, ""},
		{"recall", `{"key":"shop"}`, `{"key":"shop","text":"milk"}`, ""},
		{"notes", `null`, `{"keys":["shop","todo"]}`, ""},
		{"forget", `{"key":"shop"}`, `{"forgot":"shop"}`, ""},
		{"recall", `{"key":"shop"}`, "", "no note"},
		{"notes", `null`, `{"keys":["todo"]}`, ""},
		{"remember", `{"key":"x"}`, "", "text must be"},
		{"remember", `not json`, "", "want {"},
		{"recall", `{"key":"a/b"}`, "", "without /"},
	}
	for i, s := range steps {
		out, err := sdk.Invoke(s.skill, []byte(s.input))
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Errorf("step %d %s: err %v, want %q", i, s.skill, err, s.err)
			}
			continue
		}
		if err != nil || string(out) != s.want {
			t.Errorf("step %d %s: %s %v, want %s", i, s.skill, out, err, s.want)
		}
	}
}

func TestNotesWithoutKV(t *testing.T) {
	sdk.UseFake(&sdk.Fake{Grants: []string{}})
	_, err := sdk.Invoke("remember", []byte(`{"key":"k","text":"t"}`))
	if err == nil || !strings.Contains(err.Error(), `grants = ["kv"]`) {
		t.Errorf("denied kv: %v", err)
	}
}
