package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
}

func TestLoadLayers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string // file name in a temp dir; "" for no file
		body  string
		env   []string
		flags map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "defaults only",
			check: func(t *testing.T, c *Config) {
				if c.Listen != "127.0.0.1:3120" || c.Log.Level != "info" || c.HTTP.MaxBodyBytes != 1<<20 {
					t.Errorf("defaults not applied: %+v", c)
				}
			},
		},
		{
			name: "toml file",
			file: "p.toml",
			body: "[log]\nlevel = \"debug\"\n[http]\nmax_body_bytes = 2048\nshutdown_timeout = \"3s\"\n[http.cors]\nallowed_origins = [\"https://app.example.com\"]\n",
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "debug" || c.HTTP.MaxBodyBytes != 2048 || c.HTTP.ShutdownTimeout.D() != 3*time.Second {
					t.Errorf("file values not applied: %+v", c)
				}
				if !slices.Equal(c.HTTP.CORS.AllowedOrigins, []string{"https://app.example.com"}) {
					t.Errorf("origins = %v", c.HTTP.CORS.AllowedOrigins)
				}
				if c.Log.Format != "text" {
					t.Errorf("default under a file key lost: format %q", c.Log.Format)
				}
			},
		},
		{
			name: "yaml file",
			file: "p.yaml",
			body: "log:\n  level: warn\nhttp:\n  max_in_flight: 7\nstorage:\n  gc_discard_ratio: 0.7\n",
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "warn" || c.HTTP.MaxInFlight != 7 || c.Storage.GCDiscardRatio != 0.7 {
					t.Errorf("yaml values not applied: %+v", c)
				}
			},
		},
		{
			name: "env over file, flags over env",
			file: "p.toml",
			body: "listen = \"127.0.0.1:1\"\n[log]\nlevel = \"debug\"\n",
			env:  []string{"PORTICO_LOG__LEVEL=warn", "PORTICO_LISTEN=127.0.0.1:2", "HOME=/root"},
			flags: map[string]string{
				"listen": "127.0.0.1:3",
			},
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "warn" {
					t.Errorf("env did not win over file: %q", c.Log.Level)
				}
				if c.Listen != "127.0.0.1:3" {
					t.Errorf("flag did not win over env: %q", c.Listen)
				}
			},
		},
		{
			name: "plugin tables",
			file: "p.toml",
			body: "[[plugins]]\nname = \"notes\"\npath = \"/srv/notes\"\ngrants = [\"kv\", \"events\"]\ncall_timeout = \"2s\"\n[plugins.config]\ncity = \"Oslo\"\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Plugins) != 2 {
					t.Fatalf("plugins = %+v", c.Plugins)
				}
				p := c.Plugins[0]
				if p.Name != "notes" || p.Path != "/srv/notes" || !slices.Equal(p.Grants, []string{"kv", "events"}) || p.CallTimeout.D() != 2*time.Second || p.Config["city"] != "Oslo" {
					t.Errorf("plugin = %+v", p)
				}
				if a := c.Plugins[1]; a.Name != "audit" || !slices.Equal(a.Grants, []string{"kv"}) {
					t.Errorf("the built-in audit table was not kept: %+v", a)
				}
				if flat := c.Flat(false); len(flat["plugins"].([]any)) != 2 {
					t.Errorf("Flat plugins = %v", flat["plugins"])
				}
			},
		},
		{
			name: "a table for another plugin keeps the built-in tables",
			file: "p.toml",
			body: "[[plugins]]\nname = \"counter\"\ngrants = [\"kv\"]\n",
			check: func(t *testing.T, c *Config) {
				got := map[string]PluginEntry{}
				for _, p := range c.Plugins {
					got[p.Name] = p
				}
				for _, name := range []string{"notes", "audit", "counter"} {
					if !slices.Equal(got[name].Grants, []string{"kv"}) {
						t.Errorf("plugin %s grants = %v, want [kv] (plugins %+v)", name, got[name].Grants, c.Plugins)
					}
				}
			},
		},
		{
			name: "a table changes only the keys it sets; grants = [] and enabled = false remove",
			file: "p.yaml",
			body: "plugins:\n  - name: notes\n    max_instances: 8\n  - name: audit\n    grants: []\n    enabled: false\n",
			check: func(t *testing.T, c *Config) {
				n, a := c.Plugins[0], c.Plugins[1]
				if n.Name != "notes" || n.MaxInstances != 8 || !slices.Equal(n.Grants, []string{"kv"}) || n.Off() {
					t.Errorf("notes = %+v", n)
				}
				if a.Name != "audit" || len(a.Grants) != 0 || !a.Off() {
					t.Errorf("audit = %+v, want no grants and off", a)
				}
			},
		},
		{
			name: "env types and short forms",
			env: []string{
				"PORTICO_DATA_DIR=/tmp/pd",
				"PORTICO_HTTP__CORS__ALLOWED_ORIGINS=https://a.example, https://b.example",
				"PORTICO_HTTP__CORS__ALLOW_CREDENTIALS=true",
				"PORTICO_HTTP__READ_TIMEOUT=90s",
				"PORTICO_EVENTS__BUFFER=16",
				"PORTICO_ADMIN_KEY=pk_not_a_config_key",
				"PORTICO_TEST_REQUIRE_ALL=1",
			},
			check: func(t *testing.T, c *Config) {
				if c.DataDir != "/tmp/pd" || c.HTTP.ReadTimeout.D() != 90*time.Second || c.Events.Buffer != 16 || !c.HTTP.CORS.AllowCredentials {
					t.Errorf("env values not applied: %+v", c)
				}
				if !slices.Equal(c.HTTP.CORS.AllowedOrigins, []string{"https://a.example", "https://b.example"}) {
					t.Errorf("origins = %q", c.HTTP.CORS.AllowedOrigins)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := Sources{Env: tt.env, Flags: tt.flags}
			dir := t.TempDir()
			if tt.file != "" {
				src.File = filepath.Join(dir, tt.file)
				writeFile(t, src.File, tt.body)
			} else {
				src.Flags = mergeFlags(map[string]string{"data_dir": dir}, tt.flags)
				if slices.ContainsFunc(tt.env, func(s string) bool { return strings.HasPrefix(s, "PORTICO_DATA_DIR") }) {
					src.Flags = tt.flags
				}
			}
			c, err := Load(src)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func mergeFlags(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		file     string
		body     string
		env      []string
		flags    map[string]string
		keys     []string // keys the error must name
		contains string
		invalid  bool // errors.Is(err, ErrInvalid)
	}{
		{name: "unknown top-level key", file: "c.toml", body: "bogus = 1\n", keys: []string{"bogus"}, contains: "unknown config key", invalid: true},
		{name: "unknown nested key", file: "c.toml", body: "[log]\nlvl = \"debug\"\n", keys: []string{"log.lvl"}, invalid: true},
		{name: "wrong type", file: "c.toml", body: "[http]\nmax_body_bytes = \"big\"\n", keys: []string{"http.max_body_bytes"}, contains: "want an integer", invalid: true},
		{name: "fractional integer", file: "c.yaml", body: "http:\n  max_body_bytes: 1.5\n", keys: []string{"http.max_body_bytes"}, invalid: true},
		{name: "table given a value", file: "c.toml", body: "log = \"x\"\n", keys: []string{"log"}, contains: "table", invalid: true},
		{name: "bad enum", file: "c.toml", body: "[log]\nlevel = \"verbose\"\n", keys: []string{"log.level"}, contains: "must be one of", invalid: true},
		{name: "bad duration", file: "c.toml", body: "[http]\nread_timeout = \"soon\"\n", keys: []string{"http.read_timeout"}, contains: "duration", invalid: true},
		{name: "number for duration", file: "c.toml", body: "[http]\nread_timeout = 30\n", keys: []string{"http.read_timeout"}, contains: "duration", invalid: true},
		{name: "bad listen", file: "c.toml", body: "listen = \"nowhere\"\n", keys: []string{"listen"}, contains: "HOST:PORT", invalid: true},
		{name: "credentials with any origin", file: "c.toml", body: "[http.cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n", keys: []string{"http.cors.allow_credentials"}, invalid: true},
		{name: "bad origin", file: "c.toml", body: "[http.cors]\nallowed_origins = [\"ftp://x\"]\n", keys: []string{"http.cors.allowed_origins"}, invalid: true},
		{name: "several problems at once", file: "c.toml", body: "[log]\nlevel = \"loud\"\nformat = \"xml\"\n", keys: []string{"log.level", "log.format"}, invalid: true},
		{name: "toml syntax", file: "c.toml", body: "[log\nlevel=", contains: "c.toml", invalid: true},
		{name: "env typo", env: []string{"PORTICO_LOG_LEVEL=debug"}, keys: []string{"log_level"}, contains: "PORTICO_LOG__LEVEL", invalid: true},
		{name: "env bad integer", env: []string{"PORTICO_HTTP__MAX_BODY_BYTES=lots"}, keys: []string{"http.max_body_bytes"}, contains: "PORTICO_HTTP__MAX_BODY_BYTES", invalid: true},
		{name: "env invalid value names the variable", env: []string{"PORTICO_LOG__LEVEL=loud"}, keys: []string{"log.level"}, contains: "env PORTICO_LOG__LEVEL", invalid: true},
		{name: "flag bad value", flags: map[string]string{"listen": "x"}, keys: []string{"listen"}, contains: "flag", invalid: true},
		{name: "plugin table with unknown key", file: "c.toml", body: "[[plugins]]\nname = \"echo\"\npath = \"p\"\ngrant = [\"kv\"]\n", keys: []string{"plugins"}, contains: "grant", invalid: true},
		{name: "plugin with unknown capability", file: "c.toml", body: "[[plugins]]\nname = \"echo\"\npath = \"p\"\ngrants = [\"root\"]\n", keys: []string{"plugins[echo].grants"}, contains: "root", invalid: true},
		{name: "plugin listed twice", file: "c.toml", body: "[[plugins]]\nname = \"a\"\npath = \"p\"\n[[plugins]]\nname = \"a\"\npath = \"q\"\n", keys: []string{"plugins"}, contains: "listed twice", invalid: true},
		{name: "plugin bad name", file: "c.toml", body: "[[plugins]]\nname = \"A B\"\npath = \"p\"\n", keys: []string{`plugins["A B"].name`}, invalid: true},
		{name: "plugins from env", env: []string{"PORTICO_PLUGINS=x"}, keys: []string{"plugins"}, contains: "config file only", invalid: true},
		{name: "llm provider bad kind and url", file: "c.toml", body: "[[llm.providers]]\nname = \"x\"\nkind = \"gpt\"\nbase_url = \"nope\"\nmodels = [\"m\"]\n", keys: []string{"llm.providers[0].kind", "llm.providers[0].base_url"}, invalid: true},
		{name: "llm provider without models", file: "c.toml", body: "[[llm.providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n", keys: []string{"llm.providers[0].models"}, invalid: true},
		{name: "llm unknown default provider", file: "c.toml", body: "[llm]\ndefault_provider = \"ghost\"\n", keys: []string{"llm.default_provider"}, invalid: true},
		{name: "llm model on two providers", file: "c.toml", body: "[[llm.providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodels = [\"m\"]\n" +
			"[[llm.providers]]\nname = \"b\"\nkind = \"anthropic\"\nbase_url = \"https://api.anthropic.com/v1\"\nmodels = [\"n\", \"m\"]\n", keys: []string{"llm.providers[1].models"}, contains: "also listed by provider \"a\"", invalid: true},
		{name: "llm key and key env", file: "c.toml", body: "[[llm.providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodels = [\"m\"]\napi_key = \"k\"\napi_key_env = \"K\"\nheaders = [\"X-A\"]\n", keys: []string{"llm.providers[0].api_key_env", "llm.providers[0].headers"}, invalid: true},
		{name: "llm limits", file: "c.toml", body: "[llm]\nretry_backoff = \"0s\"\nmax_response_bytes = 10\ndefault_max_tokens = 0\nmax_retries = 11\nquota_period = \"1h\"\ntimeout = \"0s\"\n",
			keys: []string{"llm.retry_backoff", "llm.max_response_bytes", "llm.default_max_tokens", "llm.max_retries", "llm.quota_period", "llm.timeout"}, invalid: true},
		{name: "sessions bad default skill", file: "c.toml", body: "[sessions]\ndefault_skill = \"a b\"\nidle_timeout = \"0s\"\n", keys: []string{"sessions.default_skill", "sessions.idle_timeout"}, invalid: true},
		{name: "webhooks backoff order", file: "c.toml", body: "[webhooks]\ninitial_backoff = \"1m\"\nmax_backoff = \"1s\"\nmax_attempts = 0\n", keys: []string{"webhooks.max_backoff", "webhooks.max_attempts"}, invalid: true},
		{name: "middleware group without plugins or with a bad path", file: "c.toml", body: "[[middleware.pre_auth]]\nname = \"all\"\npaths = [\"api\"]\n", keys: []string{"middleware.pre_auth[0].plugins", "middleware.pre_auth[0].paths"}, invalid: true},
		{name: "middleware group with an unknown key", file: "c.toml", body: "[[middleware.post_auth]]\nplugin = [\"guard\"]\n", keys: []string{"middleware.post_auth"}, invalid: true},
		{name: "storage unknown backend", file: "c.toml", body: "[storage]\nbackend = \"sqlite\"\n", keys: []string{"storage.backend"}, contains: "badger or postgres", invalid: true},
		{name: "postgres without url", file: "c.toml", body: "[storage]\nbackend = \"postgres\"\n[storage.postgres]\nmax_conns = -1\nconnect_timeout = \"0s\"\n",
			keys: []string{"storage.postgres.url", "storage.postgres.max_conns", "storage.postgres.connect_timeout"}, invalid: true},
		{name: "cluster redis settings", file: "c.toml", body: "[cluster]\nredis_url = \"http://x\"\nredis_pool_size = -1\nredis_timeout = \"0s\"\nredis_retry_interval = \"0s\"\n",
			keys: []string{"cluster.redis_url", "cluster.redis_pool_size", "cluster.redis_timeout", "cluster.redis_retry_interval"}, invalid: true},
		{name: "missing explicit file", file: "missing.toml", contains: "does not exist"},
		{name: "unknown format", file: "c.ini", body: "x=1", contains: "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := Sources{Env: tt.env, Flags: mergeFlags(map[string]string{"data_dir": dir}, tt.flags)}
			if tt.file != "" {
				src.File = filepath.Join(dir, tt.file)
				if tt.body != "" {
					writeFile(t, src.File, tt.body)
				}
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(err, ErrInvalid) = %v, want %v (err: %v)", got, tt.invalid, err)
			}
			if got := Keys(err); !slices.Equal(sorted(got), sorted(tt.keys)) && tt.keys != nil {
				t.Errorf("error names keys %v, want %v (err: %v)", got, tt.keys, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestDefaultFileLocation(t *testing.T) {
	t.Parallel()
	t.Run("data dir file is used when present", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, DefaultFileName), "[log]\nlevel = \"error\"\n")
		m, err := NewManager(Sources{Flags: map[string]string{"data_dir": dir}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config().Log.Level != "error" || m.File() != filepath.Join(dir, DefaultFileName) {
			t.Errorf("level %q file %q", m.Config().Log.Level, m.File())
		}
	})
	t.Run("PORTICO_CONFIG names the file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "other.yaml")
		writeFile(t, p, "log:\n  level: warn\n")
		m, err := NewManager(Sources{Env: []string{"PORTICO_CONFIG=" + p}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config().Log.Level != "warn" || m.File() != p {
			t.Errorf("level %q file %q", m.Config().Log.Level, m.File())
		}
	})
}

func TestRedaction(t *testing.T) {
	type inner struct {
		Token string `koanf:"token" secret:"true"`
		Name  string `koanf:"name"`
	}
	type cfg struct {
		Auth  inner  `koanf:"auth"`
		Empty string `koanf:"empty" secret:"true"`
	}
	fs := fieldsOf(reflect.TypeFor[cfg]())
	got := flatOf(reflect.ValueOf(cfg{Auth: inner{Token: "s3cret", Name: "n"}}), fs, true)
	want := map[string]any{"auth.token": Redacted, "auth.name": "n", "empty": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("redacted = %v, want %v", got, want)
	}
	if plain := flatOf(reflect.ValueOf(cfg{Auth: inner{Token: "s3cret"}}), fs, false); plain["auth.token"] != "s3cret" {
		t.Errorf("unredacted read lost the value: %v", plain)
	}
	if f := fs[0]; !f.Secret || f.Env != "PORTICO_AUTH__TOKEN" {
		t.Errorf("field = %+v", f)
	}
}

func TestMiddlewareChains(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("[[middleware.pre_auth]]\nname = \"everything\"\nplugins = [\"guard\", \"headers\"]\n[[middleware.post_auth]]\nname = \"api\"\npaths = [\"/api/v1/\"]\nplugins = [\"redact\"]\n"), 0o600)
	c, err := Load(Sources{File: file})
	if err != nil {
		t.Fatal(err)
	}
	pre, post := c.Middleware.PreAuth, c.Middleware.PostAuth
	if len(pre) != 1 || !slices.Equal(pre[0].Plugins, []string{"guard", "headers"}) || !pre[0].Applies("/health") {
		t.Errorf("pre_auth: %+v", pre)
	}
	if len(post) != 1 || !post[0].Applies("/api/v1/chat") || post[0].Applies("/health") {
		t.Errorf("post_auth: %+v", post)
	}
}

func TestTableSecretsRedacted(t *testing.T) {
	c := Default()
	c.LLM.Providers = []LLMProvider{{Name: "a", Kind: "openai", BaseURL: "http://x/v1", APIKey: "sk-live", Models: []string{"m"}}, {Name: "b", Kind: "openai", BaseURL: "http://x/v1", Models: []string{"m"}}}
	got := c.Flat(true)["llm.providers"].([]any)
	if got[0].(map[string]any)["api_key"] != Redacted || got[1].(map[string]any)["api_key"] != "" {
		t.Errorf("redacted providers = %v", got)
	}
	if plain := c.Flat(false)["llm.providers"].([]any); plain[0].(map[string]any)["api_key"] != "sk-live" {
		t.Errorf("unredacted read lost the key: %v", plain)
	}
}

func TestEveryKeyHasDocAndType(t *testing.T) {
	for _, f := range Fields() {
		if f.Doc == "" {
			t.Errorf("%s has no doc tag", f.Key)
		}
		if f.Kind == "" {
			t.Errorf("%s has no kind", f.Key)
		}
	}
}
