package config

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// checkRoundTrip is the property every accepted PATCH must keep: the file
// it left loads (as `portico config validate` and `portico serve` load it)
// to the very config the manager applied.
func checkRoundTrip(t *testing.T, m *Manager, path string, body []byte) {
	t.Helper()
	got, err := Load(Sources{File: path})
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("accepted patch %s left a file that does not load: %v\n%s", body, err, b)
	}
	if want := m.Config(); !reflect.DeepEqual(want.Flat(false), got.Flat(false)) {
		b, _ := os.ReadFile(path)
		t.Fatalf("accepted patch %s: the file loads to a different config (keys %v)\n%s", body, changedKeys(want, got), b)
	}
}

func TestPatchRoundTrips(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"the integer of a plugin table", `{"plugins":[{"name":"echo","max_instances":8}]}`},
		{"every kind in a plugin table", `{"plugins":[{"name":"echo","min_instances":1,"max_instances":3,"memory_bytes":16777216,"call_timeout":"2s","grants":["kv"],"config":{"city":"Oslo"},"http_allow":["api.example.com"],"http_private":true,"llm_models":["m"],"trusted":false,"enabled":false}]}`},
		{"a table for a built-in plugin", `{"plugins":[{"name":"notes","max_instances":2}]}`},
		{"a provider table", `{"llm.providers":[{"name":"p","kind":"openai","base_url":"http://127.0.0.1:1/v1","models":["m"],"timeout":"3s"}]}`},
		{"middleware groups", `{"middleware.pre_auth":[{"name":"all","paths":["/api/"],"plugins":["guard"]}]}`},
		{"a float", `{"storage.gc_discard_ratio":0.25}`},
		{"an integer", `{"http.max_body_bytes":4096}`},
		{"a duration", `{"http.read_timeout":"90s"}`},
	}
	for _, format := range []string{"portico.toml", "portico.yaml"} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				m, path := patchFixture(t, format, "")
				patch, err := DecodePatch([]byte(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.Patch(patch); err != nil {
					t.Fatalf("Patch(%s): %v", tt.body, err)
				}
				checkRoundTrip(t, m, path, []byte(tt.body))
				if _, err := m.Patch(map[string]any{"log.level": "warn"}); err != nil {
					t.Fatalf("after patch %s, the next PATCH fails: %v", tt.body, err)
				}
			})
		}
	}
}

// TestPatchRoundTripsEveryKey sends, for every key, values of its kind
// through JSON as the API receives them; whatever Patch accepts must round
// trip. Rejected values must change nothing.
func TestPatchRoundTripsEveryKey(t *testing.T) {
	t.Parallel()
	def := Default().Flat(false)
	for _, format := range []string{"portico.toml", "portico.yml"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			everyKey(t, format, def)
		})
	}
}

func everyKey(t *testing.T, format string, def map[string]any) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, path := patchFixture(t, format, "")
	try := func(patch map[string]any) bool {
		t.Helper()
		body, _ := json.Marshal(patch)
		decoded, err := DecodePatch(body)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		snap := m.Current()
		if _, err := m.Patch(decoded); err != nil {
			if after, _ := os.ReadFile(path); string(after) != string(before) || m.Current() != snap {
				t.Fatalf("rejected patch %s changed state (%v)", body, err)
			}
			return false
		}
		checkRoundTrip(t, m, path, body)
		return true
	}
	// Every key at its default at once, then variations eight keys a patch;
	// a refused group is tried key by key, so one bad value hides no other.
	all := map[string]any{}
	for _, f := range Fields() {
		all[f.Key] = sampleValue(rng, f, def[f.Key], 0)
	}
	if !try(all) {
		t.Fatal("a patch of every default was refused")
	}
	fs := Fields()
	for i := 0; i < len(fs); i += 8 {
		group := map[string]any{}
		for _, f := range fs[i:min(i+8, len(fs))] {
			group[f.Key] = sampleValue(rng, f, def[f.Key], 1)
		}
		if try(group) {
			continue
		}
		for k, v := range group {
			try(map[string]any{k: v})
		}
	}
}

// sampleValue gives a value of f's kind: the default, then variations.
func sampleValue(rng *rand.Rand, f Field, def any, i int) any {
	if i == 0 {
		return def
	}
	switch f.Kind {
	case "integer":
		return def.(int64) + int64(rng.IntN(1000))
	case "number":
		return def.(float64) + rng.Float64()
	case "bool":
		return !def.(bool)
	case "duration":
		return fmt.Sprintf("%dms", 1+rng.IntN(100000))
	case "string":
		return def.(string) + "x"
	case "list of strings":
		return append(slices.Clone(def.([]string)), fmt.Sprintf("v%d", rng.IntN(10)))
	case "list of tables":
		if f.Key != "plugins" {
			return []any{}
		}
		return []any{map[string]any{
			"name":          []string{"echo", "notes", "audit", "new1"}[rng.IntN(4)],
			"max_instances": 1 + rng.IntN(16),
			"min_instances": rng.IntN(2),
			"memory_bytes":  (1 + rng.IntN(64)) << 20,
			"call_timeout":  fmt.Sprintf("%ds", 1+rng.IntN(30)),
			"grants":        []string{"kv"}[:rng.IntN(2)],
			"config":        map[string]any{"k": strings.Repeat("v", rng.IntN(3))},
			"enabled":       rng.IntN(2) == 0,
		}}
	}
	return def
}

func TestPatchMergesPluginTablesByName(t *testing.T) {
	t.Parallel()
	m, path := patchFixture(t, "portico.toml", "[[plugins]]\nname = \"counter\"\ngrants = [\"kv\"]\n")
	if _, err := m.Patch(map[string]any{"plugins": []any{map[string]any{"name": "echo", "max_instances": 8}}}); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		var out []string
		for _, p := range m.Config().Plugins {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"notes", "audit", "counter", "echo"}) {
		t.Fatalf("plugins after PATCH = %v", got)
	}
	// Null every key a table set: the table leaves the file.
	if _, err := m.Patch(map[string]any{"plugins": []any{map[string]any{"name": "echo", "max_instances": nil}}}); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"notes", "audit", "counter"}) {
		t.Fatalf("plugins after removing echo's keys = %v", got)
	}
	if b := readFile(t, path); strings.Contains(b, "echo") || !strings.Contains(b, "counter") {
		t.Errorf("file after removal:\n%s", b)
	}
	checkRoundTrip(t, m, path, nil)
}

func TestPatchRefusesWhatWouldNotReadBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.toml")
	m, err := NewManager(Sources{File: path, Env: nil}, nil)
	if err == nil {
		t.Fatal("an explicit missing file must be refused")
	}
	_ = m
	m, path = patchFixture(t, "portico.toml", "")
	// A value the encoder cannot keep: roundTrip compares the decoded file
	// with the applied config, key by key.
	c := m.Config()
	bad := "[log]\nlevel = \"debug\"\n"
	if err := roundTrip(path, []byte(bad), c, layers{}); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("roundTrip of a file that reads back differently = %v, want an error naming log.level", err)
	}
}
