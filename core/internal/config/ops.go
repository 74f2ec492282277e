package config

import (
	"net/url"
	"strings"
	"time"
)

// Metrics configures GET /metrics.
type Metrics struct {
	Token string `koanf:"token" secret:"true" doc:"Scrape token: a request with \"Authorization: Bearer <token>\" may read /metrics without an API key; empty allows only operator keys."`
}

// Tracing configures OpenTelemetry tracing, exported over OTLP/HTTP.
type Tracing struct {
	Enabled     bool     `koanf:"enabled" reload:"restart" doc:"Export request and plugin-call spans over OTLP/HTTP."`
	Endpoint    string   `koanf:"endpoint" reload:"restart" doc:"OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces (https for TLS)."`
	Headers     []string `koanf:"headers" reload:"restart" secret:"true" doc:"Extra \"Name: value\" headers sent with every export (e.g. an API key of the collector)."`
	SampleRatio float64  `koanf:"sample_ratio" reload:"restart" doc:"Share of new traces sampled, from 0 to 1; a request whose caller sampled its trace (traceparent) is always sampled."`
	ServiceName string   `koanf:"service_name" reload:"restart" doc:"service.name of the exported spans."`
}

// TLS configures HTTPS.
type TLS struct {
	Enabled       bool     `koanf:"enabled" reload:"restart" doc:"Serve HTTPS instead of HTTP."`
	CertFile      string   `koanf:"cert_file" reload:"restart" doc:"PEM certificate chain; re-read when the file changes. Empty (with key_file empty) generates a self-signed certificate in <data_dir>/tls on first start."`
	KeyFile       string   `koanf:"key_file" reload:"restart" doc:"PEM private key of cert_file."`
	Hosts         []string `koanf:"hosts" reload:"restart" doc:"DNS names and IPs the generated self-signed certificate is valid for."`
	CheckInterval Duration `koanf:"check_interval" reload:"restart" doc:"How often, at most, a TLS handshake checks cert_file and key_file for changes; 0 checks at every handshake."`
}

func defaultOps() (Metrics, Tracing, TLS) {
	return Metrics{},
		Tracing{SampleRatio: 1, ServiceName: "portico", Headers: []string{}},
		TLS{Hosts: []string{"localhost", "127.0.0.1", "::1"}, CheckInterval: Duration(time.Second)}
}

func (c *Config) validateOps(bad func(key, format string, args ...any)) {
	l := c.Log
	if l.RingSize < 100 || l.RingSize > 1<<20 {
		bad("log.ring_size", "must be between 100 and 1048576 (got %d)", l.RingSize)
	}
	if l.StreamBuffer < 1 || l.StreamBuffer > 1<<16 {
		bad("log.stream_buffer", "must be between 1 and 65536 (got %d)", l.StreamBuffer)
	}
	if l.PluginLinesPerSecond <= 0 {
		bad("log.plugin_lines_per_second", "must be a positive number (got %v)", l.PluginLinesPerSecond)
	}
	if l.PluginBurst < 1 {
		bad("log.plugin_burst", "must be at least 1 (got %d)", l.PluginBurst)
	}
	t := c.Tracing
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		bad("tracing.sample_ratio", "must be between 0 and 1 (got %v)", t.SampleRatio)
	}
	if t.Enabled {
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("tracing.endpoint", "must be an http or https URL such as http://127.0.0.1:4318/v1/traces when tracing is enabled (got %q)", t.Endpoint)
		}
		if strings.TrimSpace(t.ServiceName) == "" {
			bad("tracing.service_name", "must not be empty")
		}
	}
	for _, h := range t.Headers {
		if name, _, ok := strings.Cut(h, ":"); !ok || strings.TrimSpace(name) == "" {
			bad("tracing.headers", "want \"Name: value\" entries")
			break
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.key_file", "set both tls.cert_file and tls.key_file, or neither (a self-signed certificate)")
	}
	if c.TLS.CheckInterval < 0 {
		bad("tls.check_interval", "must not be negative (got %s)", c.TLS.CheckInterval.D())
	}
	if c.TLS.Enabled && c.TLS.CertFile == "" && len(c.TLS.Hosts) == 0 {
		bad("tls.hosts", "name at least one host for the self-signed certificate")
	}
}
