package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestWireTypesMatchDocs checks the CLI's wire types against
// docs/http-api.md: every field a type reads must be documented in the
// section of the route it comes from, so the CLI reads what the API
// promises, not what the server's code happens to send.
func TestWireTypesMatchDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "http-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range []struct {
		heading string // the start of the section's heading
		v       any
	}{
		{"### `GET /api/v1/status`", statusAnswer{}},
		{"### `GET /api/v1/plugins`", pluginAnswer{}},
		{"### `POST /api/v1/sessions`", sessionAnswer{}},
		{"### `GET /api/v1/sessions/{id}/messages`", messageAnswer{}},
		{"### `PATCH /api/v1/config`", patchAnswer{}},
		{"### `POST /api/v1/packs`", packAnswer{}},
		{"### `GET /api/v1/keys`", keyAnswer{}},
	} {
		i := strings.Index(doc, c.heading)
		if i < 0 {
			t.Errorf("docs/http-api.md has no section %s", c.heading)
			continue
		}
		section := doc[i+len(c.heading):]
		if j := regexp.MustCompile(`\n##`).FindStringIndex(section); j != nil {
			section = section[:j[0]]
		}
		for _, field := range jsonFields(reflect.TypeOf(c.v)) {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(field) + `\b`).MatchString(section) {
				t.Errorf("%T reads %q, which the section %s of docs/http-api.md does not document", c.v, field, c.heading)
			}
		}
	}
}

// jsonFields lists the JSON names of t's fields, nested structs' included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == "" {
			out = append(out, jsonFields(f.Type)...)
		}
	}
	return out
}
