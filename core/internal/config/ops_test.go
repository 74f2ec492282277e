package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOpsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		keys []string // keys the error must name; none: valid
	}{
		{"defaults", "", nil},
		{"tracing on with an endpoint", "[tracing]\nenabled = true\nendpoint = \"http://127.0.0.1:4318/v1/traces\"\nheaders = [\"X-Key: k\"]\nsample_ratio = 0.5\n", nil},
		{"tracing on without an endpoint", "[tracing]\nenabled = true\n", []string{"tracing.endpoint"}},
		{"tracing endpoint not http", "[tracing]\nenabled = true\nendpoint = \"grpc://x:4317\"\n", []string{"tracing.endpoint"}},
		{"sample ratio over 1", "[tracing]\nsample_ratio = 1.5\n", []string{"tracing.sample_ratio"}},
		{"header without a colon", "[tracing]\nheaders = [\"X-Key\"]\n", []string{"tracing.headers"}},
		{"tls files", "[tls]\nenabled = true\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n", nil},
		{"tls cert without key", "[tls]\ncert_file = \"c.pem\"\n", []string{"tls.key_file"}},
		{"tls self-signed without hosts", "[tls]\nenabled = true\nhosts = []\n", []string{"tls.hosts"}},
		{"tls negative interval", "[tls]\ncheck_interval = \"-1s\"\n", []string{"tls.check_interval"}},
		{"log limits", "[log]\nring_size = 10\nstream_buffer = 0\nplugin_lines_per_second = 0.0\nplugin_burst = 0\n",
			[]string{"log.ring_size", "log.stream_buffer", "log.plugin_lines_per_second", "log.plugin_burst"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(Sources{File: path})
			if len(tt.keys) == 0 {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			got := Keys(err)
			for _, k := range tt.keys {
				if !slices.Contains(got, k) {
					t.Errorf("error names %v, not %s: %v", got, k, err)
				}
			}
		})
	}
}

func TestTracingHeadersRedacted(t *testing.T) {
	c := Default()
	c.Tracing.Headers = []string{"Authorization: Bearer s3cret"}
	if v := c.Flat(true)["tracing.headers"]; v != Redacted {
		t.Errorf("tracing.headers read as %v", v)
	}
}
