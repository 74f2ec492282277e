package middleware

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// TestConfigMap reads what Portico passes and refuses what is not an
// object of strings, as encoding/json would.
func TestConfigMap(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"  \n", map[string]string{}, ""},
		{"{}", map[string]string{}, ""},
		{` { "paths" : "/admin/**" , "b":"\u00e9\n\"x\"" } `, map[string]string{"paths": "/admin/**", "b": "é\n\"x\""}, ""},
		{`{"a":"1","a":"2"}`, map[string]string{"a": "2"}, ""},
		{`{"a":1}`, nil, "at offset 5: expected a string"},
		{`["a"]`, nil, "at offset 0: expected '{'"},
		{`{"a":"1"`, nil, "at offset 8: expected ',' or '}'"},
		{`{"a" "1"}`, nil, "at offset 5: expected ':'"},
		{`{"a":"1"} x`, nil, "at offset 10: text after the object"},
		{"{\"a\":\"\x01\"}", nil, "control characters must be escaped"},
		{`{"a":"\q"}`, nil, `expected an escape`},
	} {
		got, err := configMap([]byte(c.in))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "middleware config: want a JSON object of strings") {
				t.Errorf("%q: %v, want an error with %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

// FuzzConfigMap: configMap accepts exactly what encoding/json decodes into
// a map of strings, with the same result.
func FuzzConfigMap(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{}`, ` {"x":"\ud83d\ude00","y":""} `, `{"a":1}`, `null`, `{"a":"b",}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := configMap([]byte(in))
		var want map[string]string
		jerr := json.Unmarshal([]byte(in), &want)
		if strings.TrimSpace(in) == "" {
			return // ConfigMap's empty config; encoding/json calls it an error
		}
		if jerr == nil && want == nil {
			jerr = json.Unmarshal([]byte("x"), &want) // null: not an object here
		}
		if (err == nil) != (jerr == nil) {
			t.Fatalf("%q: configMap %v, encoding/json %v", in, err, jerr)
		}
		if err == nil && !maps.Equal(got, want) {
			t.Fatalf("%q: %v, encoding/json %v", in, got, want)
		}
	})
}
