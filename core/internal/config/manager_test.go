package config

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files (docs/configuration.md's key table)")

// newWatched starts a manager on a config file with the watcher running and
// returns a channel of the changes it reports.
func newWatched(t *testing.T, body string, env ...string) (*Manager, string, <-chan Change) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.toml")
	writeFile(t, path, body)
	m, err := NewManager(Sources{File: path, Env: env}, nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan Change, 100)
	m.Subscribe(func(c Change) { changes <- c })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := m.Watch(ctx, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return m, path, changes
}

// next waits for the next change report; the deadline only guards against a
// hang, it is not a speed assertion.
func next(t *testing.T, changes <-chan Change) Change {
	t.Helper()
	select {
	case c := <-changes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no config change reported within 10s")
		return Change{}
	}
}

func TestWatchAppliesAndRejects(t *testing.T) {
	t.Parallel()
	m, path, changes := newWatched(t, "[log]\nlevel = \"info\"\n")
	first := m.Current()

	writeFile(t, path, "[log]\nlevel = \"debug\"\n[http]\nmax_body_bytes = 4096\n")
	c := next(t, changes)
	if c.Err != nil {
		t.Fatalf("valid change rejected: %v", c.Err)
	}
	if got := m.Config(); got.Log.Level != "debug" || got.HTTP.MaxBodyBytes != 4096 {
		t.Fatalf("change not applied: %+v", got.Log)
	}
	if !slices.Equal(c.Changed, []string{"http.max_body_bytes", "log.level"}) || c.Source != FromFile {
		t.Errorf("change = %+v", c)
	}
	if m.Current().Generation != first.Generation+1 {
		t.Errorf("generation %d, want %d", m.Current().Generation, first.Generation+1)
	}
	if first.Config.Log.Level != "info" {
		t.Error("the old snapshot was modified in place")
	}

	// A broken file keeps the old config serving and is reported.
	applied := m.Current()
	writeFile(t, path, "[log]\nlevel = \"debug\"\n[http\n")
	c = next(t, changes)
	if c.Err == nil || !errors.Is(c.Err, ErrInvalid) {
		t.Fatalf("broken file: change err = %v", c.Err)
	}
	if m.Current() != applied {
		t.Fatal("broken file replaced the snapshot")
	}
	if st := m.Status(); st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Errorf("status does not show the error: %+v", st)
	}

	// An invalid value is rejected the same way, naming the key.
	writeFile(t, path, "[log]\nlevel = \"shout\"\n")
	c = next(t, changes)
	if !slices.Contains(Keys(c.Err), "log.level") {
		t.Fatalf("invalid value: err = %v", c.Err)
	}
	if !strings.Contains(m.Status().LastError, "log.level") {
		t.Errorf("status error %q does not name the key", m.Status().LastError)
	}

	// Fixing the file recovers.
	writeFile(t, path, "[log]\nlevel = \"warn\"\n")
	c = next(t, changes)
	if c.Err != nil || m.Config().Log.Level != "warn" {
		t.Fatalf("fixed file not applied: err %v level %q", c.Err, m.Config().Log.Level)
	}
	if st := m.Status(); st.LastError != "" {
		t.Errorf("error still reported after recovery: %q", st.LastError)
	}
}

func TestWatchRenameReplace(t *testing.T) {
	t.Parallel()
	m, path, changes := newWatched(t, "[log]\nlevel = \"info\"\n")
	for i, level := range []string{"debug", "error", "warn"} {
		// What editors do: write a new file, then rename it over the old one.
		tmp := filepath.Join(filepath.Dir(path), ".portico.toml.swp")
		writeFile(t, tmp, "[log]\nlevel = \""+level+"\"\n")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		c := next(t, changes)
		if c.Err != nil || m.Config().Log.Level != level {
			t.Fatalf("replace %d: err %v level %q, want %q", i, c.Err, m.Config().Log.Level, level)
		}
	}
}

func TestWatchBurstOfWrites(t *testing.T) {
	t.Parallel()
	m, path, changes := newWatched(t, "[events]\nbuffer = 1\n")
	const writes = 50
	for i := 2; i <= writes; i++ {
		writeFile(t, path, "[events]\nbuffer = "+strconv.Itoa(i)+"\n")
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Config().Events.Buffer != writes {
		if time.Now().After(deadline) {
			t.Fatalf("last write of the burst never applied: buffer = %d", m.Config().Events.Buffer)
		}
		select {
		case c := <-changes:
			if c.Err != nil {
				// A read may catch a half-written file; that is rejected and
				// the next event recovers. Anything else is a bug.
				if !errors.Is(c.Err, ErrInvalid) {
					t.Fatalf("unexpected error: %v", c.Err)
				}
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	if g := m.Current().Generation; g > writes {
		t.Errorf("generation %d after %d writes: the burst was not coalesced", g, writes)
	}
}

func TestRestartKeysReported(t *testing.T) {
	t.Parallel()
	m, path, changes := newWatched(t, "listen = \"127.0.0.1:3120\"\n")
	writeFile(t, path, "listen = \"127.0.0.1:4000\"\n")
	c := next(t, changes)
	if !slices.Equal(c.Restart, []string{"listen"}) {
		t.Errorf("change restart = %v", c.Restart)
	}
	if st := m.Status(); !slices.Equal(st.ReloadRequired, []string{"listen"}) {
		t.Errorf("status reload_required = %v", st.ReloadRequired)
	}
	writeFile(t, path, "listen = \"127.0.0.1:3120\"\n")
	next(t, changes)
	if st := m.Status(); len(st.ReloadRequired) != 0 {
		t.Errorf("back to the boot value, reload_required = %v", st.ReloadRequired)
	}
}

// patchFixture is a manager on a config file, with no watcher.
func patchFixture(t *testing.T, name, body string, env ...string) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	writeFile(t, path, body)
	m, err := NewManager(Sources{File: path, Env: env}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func TestPatchRejectsAndChangesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		patch map[string]any
		keys  []string
	}{
		{"unknown key", map[string]any{"log.lvl": "debug"}, []string{"log.lvl"}},
		{"unknown key among good ones", map[string]any{"log.level": "debug", "nope": 1}, []string{"nope"}},
		{"wrong type", map[string]any{"http.max_body_bytes": "big"}, []string{"http.max_body_bytes"}},
		{"table key", map[string]any{"http": map[string]any{}}, []string{"http"}},
		{"invalid value", map[string]any{"log.level": "verbose"}, []string{"log.level"}},
		{"invalid combination", map[string]any{"http.cors.allowed_origins": []any{"*"}, "http.cors.allow_credentials": true}, []string{"http.cors.allow_credentials"}},
		{"list with a number", map[string]any{"http.cors.allowed_origins": []any{"https://a.example", 3}}, []string{"http.cors.allowed_origins"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, path := patchFixture(t, "portico.toml", "# operator's file\n[log]\nlevel = \"info\"\n")
			before, snap := readFile(t, path), m.Current()
			_, err := m.Patch(tt.patch)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Patch err = %v, want ErrInvalid", err)
			}
			if got := Keys(err); !slices.Equal(sorted(got), sorted(tt.keys)) {
				t.Errorf("error names %v, want %v (%v)", got, tt.keys, err)
			}
			if readFile(t, path) != before {
				t.Error("the file changed")
			}
			if m.Current() != snap {
				t.Error("the snapshot changed")
			}
		})
	}
}

func TestPatchApplies(t *testing.T) {
	t.Parallel()
	t.Run("writes the file layer and applies", func(t *testing.T) {
		t.Parallel()
		m, path := patchFixture(t, "portico.toml", "[log]\nlevel = \"info\"\n")
		res, err := m.Patch(map[string]any{"log.level": "debug", "http.cors.allowed_origins": []any{"https://app.example.com"}, "listen": "127.0.0.1:4999"})
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config()
		if c.Log.Level != "debug" || !slices.Equal(c.HTTP.CORS.AllowedOrigins, []string{"https://app.example.com"}) {
			t.Errorf("not applied: %+v", c)
		}
		if !slices.Equal(res.Updated, []string{"http.cors.allowed_origins", "listen", "log.level"}) {
			t.Errorf("updated = %v", res.Updated)
		}
		if !slices.Equal(res.ReloadRequired, []string{"listen"}) {
			t.Errorf("reload_required = %v", res.ReloadRequired)
		}
		if res.Created || res.File != path || res.Generation != 2 {
			t.Errorf("result = %+v", res)
		}
		// The file round-trips through a fresh load.
		c2, err := Load(Sources{File: path})
		if err != nil {
			t.Fatal(err)
		}
		if c2.Log.Level != "debug" || c2.Listen != "127.0.0.1:4999" {
			t.Errorf("file does not hold the patch: %s", readFile(t, path))
		}
		// The watcher would see our own write: it must not count as a change.
		if err := m.Reload(); err != nil {
			t.Fatal(err)
		}
		if m.Current().Generation != 2 {
			t.Errorf("own write re-applied: generation %d", m.Current().Generation)
		}
	})
	t.Run("env values never land in the file", func(t *testing.T) {
		t.Parallel()
		m, path := patchFixture(t, "portico.toml", "[log]\nlevel = \"info\"\n", "PORTICO_HTTP__MAX_BODY_BYTES=2048")
		if _, err := m.Patch(map[string]any{"log.level": "warn"}); err != nil {
			t.Fatal(err)
		}
		if s := readFile(t, path); strings.Contains(s, "max_body_bytes") || strings.Contains(s, "2048") {
			t.Errorf("env value written to the file:\n%s", s)
		}
		res, err := m.Patch(map[string]any{"http.max_body_bytes": 4096})
		if err != nil {
			t.Fatal(err)
		}
		if m.Config().HTTP.MaxBodyBytes != 2048 {
			t.Errorf("env no longer wins: %d", m.Config().HTTP.MaxBodyBytes)
		}
		if res.Overridden["http.max_body_bytes"] != "env PORTICO_HTTP__MAX_BODY_BYTES" {
			t.Errorf("overridden = %v", res.Overridden)
		}
	})
	t.Run("null removes a key from the file", func(t *testing.T) {
		t.Parallel()
		m, path := patchFixture(t, "portico.toml", "[log]\nlevel = \"debug\"\nformat = \"json\"\n")
		if _, err := m.Patch(map[string]any{"log.level": nil}); err != nil {
			t.Fatal(err)
		}
		if m.Config().Log.Level != "info" || m.Config().Log.Format != "json" {
			t.Errorf("log = %+v", m.Config().Log)
		}
		if strings.Contains(readFile(t, path), "level") {
			t.Errorf("key still in file:\n%s", readFile(t, path))
		}
	})
	t.Run("yaml stays yaml", func(t *testing.T) {
		t.Parallel()
		m, path := patchFixture(t, "portico.yaml", "log:\n  level: info\n")
		if _, err := m.Patch(map[string]any{"log.level": "error"}); err != nil {
			t.Fatal(err)
		}
		if s := readFile(t, path); !strings.Contains(s, "level: error") {
			t.Errorf("yaml file = %q", s)
		}
	})
	t.Run("creates the default file in the data dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		m, err := NewManager(Sources{Flags: map[string]string{"data_dir": dir}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Patch(map[string]any{"log.level": "debug"})
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(dir, DefaultFileName)
		if !res.Created || res.File != want {
			t.Errorf("result = %+v, want created %s", res, want)
		}
		if s := readFile(t, want); strings.Contains(s, "data_dir") || !strings.Contains(s, "debug") {
			t.Errorf("created file holds flag values or misses the patch:\n%s", s)
		}
		fi, err := os.Stat(want)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("created file mode %v, err %v", fi.Mode().Perm(), err)
		}
	})
	t.Run("refuses to overwrite a file that does not parse", func(t *testing.T) {
		t.Parallel()
		m, path := patchFixture(t, "portico.toml", "[log]\nlevel = \"info\"\n")
		writeFile(t, path, "[log\n")
		_, err := m.Patch(map[string]any{"log.level": "debug"})
		if !errors.Is(err, ErrFileInvalid) {
			t.Fatalf("err = %v, want ErrFileInvalid", err)
		}
		if readFile(t, path) != "[log\n" || m.Config().Log.Level != "info" {
			t.Error("something changed")
		}
	})
	t.Run("empty patch", func(t *testing.T) {
		t.Parallel()
		m, _ := patchFixture(t, "portico.toml", "")
		if _, err := m.Patch(map[string]any{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDecodePatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"object", `{"log.level":"debug","http.max_body_bytes":10}`, true},
		{"not json", `log.level=debug`, false},
		{"array", `["log.level"]`, false},
		{"null", `null`, false},
		{"two objects", `{"a":1}{"b":2}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodePatch([]byte(tt.body))
			if (err == nil) != tt.ok {
				t.Errorf("DecodePatch(%s) err = %v, want ok=%v", tt.body, err, tt.ok)
			}
		})
	}
	// Exact numbers: 1.5 must not become 1 for an integer key.
	m, _ := patchFixture(t, "portico.toml", "")
	p, err := DecodePatch([]byte(`{"http.max_body_bytes": 1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Patch(p); !errors.Is(err, ErrInvalid) {
		t.Errorf("1.5 accepted for an integer: %v", err)
	}
}

// TestReferenceDoc keeps docs/configuration.md's key table in step with the
// Config type; go test ./core/internal/config -update rewrites it.
func TestReferenceDoc(t *testing.T) {
	path := filepath.Join("..", "..", "..", "docs", "configuration.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- keys:begin -->\n", "<!-- keys:end -->"
	i, j := bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q and %q markers", path, begin, end)
	}
	want := Reference()
	if got := string(b[i+len(begin) : j]); got != want {
		if *update {
			out := append(append(append([]byte{}, b[:i+len(begin)]...), want...), b[j:]...)
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s is out of date with the Config type; run go test ./core/internal/config -update", path)
	}
}

func FuzzParseFile(f *testing.F) {
	for _, seed := range []string{
		"",
		"[log]\nlevel = \"debug\"\n",
		"listen = \"127.0.0.1:0\"\n[http]\nmax_body_bytes = 10\n[http.cors]\nallowed_origins = [\"*\"]\n",
		"[storage]\ngc_discard_ratio = 0.9\ngc_interval = \"1m\"\n",
		"log = 1\n",
		"[http\n",
		"[events]\nbuffer = -1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		flat, err := parseFile("fuzz.toml", b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parse error not marked ErrInvalid: %v", err)
			}
			return
		}
		c, _, err := build(layers{file: flat})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("build error not marked ErrInvalid: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("build returned a config that does not validate: %v", err)
		}
	})
}

func FuzzPatch(f *testing.F) {
	for _, seed := range []string{
		`{"log.level":"debug"}`,
		`{"http.max_body_bytes":2048,"http.cors.allowed_origins":["https://a.example"]}`,
		`{"log.level":null}`,
		`{"bogus":1}`,
		`{"http.max_body_bytes":1.5}`,
		`{"http.read_timeout":"5s"}`,
		`{"plugins":[{"name":"echo","max_instances":8}]}`,
		`{"plugins":[{"name":"notes","grants":[],"enabled":false,"config":{"a":"b"},"call_timeout":"1s"}]}`,
		`{"plugins":[{"name":"echo","max_instances":null}]}`,
		`{"llm.providers":[{"name":"p","kind":"openai","base_url":"http://h/v1","models":["m"]}]}`,
		`{"storage.gc_discard_ratio":0.25}`,
		`[]`,
		`{`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "portico.toml")
	f.Fuzz(func(t *testing.T, b []byte) {
		const base = "[log]\nlevel = \"info\"\n"
		if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := NewManager(Sources{File: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		patch, err := DecodePatch(b)
		if err != nil {
			return
		}
		snap := m.Current()
		if _, err := m.Patch(patch); err != nil {
			got, _ := os.ReadFile(path)
			if string(got) != base || m.Current() != snap {
				t.Fatalf("rejected patch %s changed state (err %v)", b, err)
			}
			return
		}
		if err := m.Config().Validate(); err != nil {
			t.Fatalf("accepted patch %s gave an invalid config: %v", b, err)
		}
		checkRoundTrip(t, m, path, b)
	})
}
