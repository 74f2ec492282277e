package plugin

import (
	"errors"
	"strings"
	"testing"
)

const goodManifest = `
name = "weather"
version = "1.2.0"
description = "Weather by city."
kinds = ["skill"]

[[skills]]
name = "forecast"
description = "Three-day forecast."
triggers = ["/forecast", "weather in"]
input_schema = '{"type":"object","properties":{"city":{"type":"string"}}}'

[capabilities]
required = ["http"]
optional = ["kv"]
`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "weather" || m.Module != "weather.wasm" || len(m.Skills) != 1 || m.Skills[0].Triggers[1] != "weather in" || len(m.Skills[0].Schema) == 0 {
		t.Errorf("manifest = %+v", m)
	}
	tests := []struct {
		name, edit, want string
	}{
		{"unknown key", goodManifest + "\nauthor = \"me\"\n", "author"},
		{"bad name", strings.Replace(goodManifest, `"weather"`, `"Weather!"`, 1), "name"},
		{"bad version", strings.Replace(goodManifest, `"1.2.0"`, `"latest"`, 1), "version"},
		{"unsupported kind", strings.Replace(goodManifest, `["skill"]`, `["skill", "teleport"]`, 1), "teleport"},
		{"bad skill name", strings.Replace(goodManifest, `"forecast"`, `"fore cast"`, 1), "fore cast"},
		{"bad schema", strings.Replace(goodManifest, `'{"type":"object","properties":{"city":{"type":"string"}}}'`, `'{nope'`, 1), "input_schema"},
		{"unknown capability", strings.Replace(goodManifest, `["http"]`, `["root"]`, 1), "root"},
		{"path in module", goodManifest + "\n", ""},
		{"module escapes", strings.Replace(goodManifest, "kinds =", "module = \"../x.wasm\"\nkinds =", 1), "module"},
		{"not toml", "name = ", "manifest"},
		{"no skills", strings.Split(goodManifest, "[[skills]]")[0], "at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.edit))
			if tt.want == "" {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrManifest mentioning %q", err, tt.want)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte("name = \"x\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"a\"\ndescription = \"d\"\n"))
	f.Add([]byte("[[skills]]\n[[skills]]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error not marked ErrManifest: %v", err)
			}
			return
		}
		if !PluginName.MatchString(m.Name) || len(m.Skills) == 0 || strings.ContainsAny(m.Module, "/\\") {
			t.Fatalf("accepted an invalid manifest: %+v", m)
		}
		for _, s := range m.Skills {
			if !SkillName.MatchString(s.Name) {
				t.Fatalf("accepted skill name %q", s.Name)
			}
		}
	})
}

func TestSkillInputSchema(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	s := &m.Skills[0]
	tests := []struct {
		input string
		ok    bool
		path  string
	}{
		{`{"city":"Oslo"}`, true, ""},
		{`{}`, true, ""},
		{`{"city":42}`, false, "city"},
		{`"Oslo"`, false, "object"},
		{`{nope`, false, "JSON"},
	}
	for _, tt := range tests {
		err := s.CheckInput([]byte(tt.input))
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), tt.path)) {
			t.Errorf("CheckInput(%s) = %v, want ok=%v mentioning %q", tt.input, err, tt.ok, tt.path)
		}
	}
	if _, err := ParseManifest([]byte(strings.Replace(goodManifest, `"type":"object"`, `"type":7`, 1))); err == nil {
		t.Error("a schema with a bad type was accepted")
	}
}
