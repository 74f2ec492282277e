// Package config defines Portico's configuration: one typed, validated,
// immutable value built from layers (built-in defaults < file < environment
// < flags) and a Manager that watches the file, reloads it safely and applies
// changes made over the API.
//
// A Config is never modified after it is built; a change produces a new one
// that is swapped in atomically. Every key has a dotted name (log.level), an
// environment name (PORTICO_LOG__LEVEL) and a reload mode: live keys take
// effect at once, restart keys (listen, data_dir, ...) are reported as
// reload_required until the process restarts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one immutable snapshot of the gateway's configuration. The koanf
// tag is the key name, doc describes it for docs/configuration.md, reload
// "restart" marks keys that need a process restart, and secret "true" marks
// values that every read redacts.
type Config struct {
	Listen    string        `koanf:"listen" reload:"restart" doc:"HOST:PORT the HTTP server listens on."`
	DataDir   string        `koanf:"data_dir" reload:"restart" doc:"Directory for the embedded database, the lock file and the default config file."`
	Log       Log           `koanf:"log"`
	HTTP      HTTP          `koanf:"http"`
	Storage   Storage       `koanf:"storage"`
	Audit     Audit         `koanf:"audit"`
	Events    Events        `koanf:"events"`
	Auth      Auth          `koanf:"auth"`
	RateLimit RateLimit     `koanf:"ratelimit"`
	Plugin    Plugin        `koanf:"plugin"`
	Plugins   []PluginEntry `koanf:"plugins" merge:"name" doc:"The plugins to load or configure, one [[plugins]] table each (file only; see docs/plugins.md). Tables merge by name: a table for a built-in plugin changes only the keys it sets."`
	Sessions  Sessions      `koanf:"sessions"`
	LLM       LLM           `koanf:"llm"`
	Webhooks  Webhooks      `koanf:"webhooks"`
	MCP       MCP           `koanf:"mcp"`
	A2A       A2A           `koanf:"a2a"`
	// Middleware chains; see middleware.go.
	Middleware Middleware `koanf:"middleware"`
	// Operations; see ops.go.
	Metrics Metrics `koanf:"metrics"`
	Tracing Tracing `koanf:"tracing"`
	TLS     TLS     `koanf:"tls"`
	// Skill packs; see packs.go.
	Packs Packs `koanf:"packs"`
	// Several nodes as one gateway.
	Cluster Cluster `koanf:"cluster"`
}

// Cluster configures what gateway nodes share beyond the store.
type Cluster struct {
	RedisURL           string   `koanf:"redis_url" reload:"restart" secret:"true" doc:"Redis (redis://[user:password@]host:6379/0, or rediss:// for TLS) that holds the rate-limit buckets and the failed-login lockouts every node shares; empty keeps them in each node's memory."`
	RedisPoolSize      int64    `koanf:"redis_pool_size" reload:"restart" doc:"Connections to Redis per node; 0 is go-redis's default (10 per CPU)."`
	RedisTimeout       Duration `koanf:"redis_timeout" reload:"restart" doc:"Longest wait for one shared check, connecting included; past it (or on any Redis error) the node limits with its own buckets until Redis answers again."`
	RedisRetryInterval Duration `koanf:"redis_retry_interval" reload:"restart" doc:"How often a node whose Redis failed tries it again; shared limits resume at the first answer."`
	RedisKeyPrefix     string   `koanf:"redis_key_prefix" reload:"restart" doc:"Prefix of every key Portico writes in Redis, so gateways can share one Redis apart."`
	HeartbeatInterval  Duration `koanf:"heartbeat_interval" doc:"How often a node writes its record (GET /api/v1/cluster) into the store; a node that missed three is listed as down, one silent for a hundred is forgotten."`
}

// Plugin configures the plugin runtime and the defaults of every plugin.
type Plugin struct {
	CacheDir         string   `koanf:"cache_dir" reload:"restart" doc:"Directory of the on-disk compilation cache; empty means <data_dir>/wasm-cache."`
	CacheMaxBytes    int64    `koanf:"cache_max_bytes" reload:"restart" doc:"Size bound of the compilation cache, enforced at start by deleting the least recently written entries."`
	Embedded         bool     `koanf:"embedded" doc:"Load the first-party plugins built into the binary (echo)."`
	CallTimeout      Duration `koanf:"call_timeout" doc:"Deadline of one plugin call."`
	AcquireTimeout   Duration `koanf:"acquire_timeout" doc:"How long a call waits for a free instance before 503 plugin_busy."`
	MinInstances     int64    `koanf:"min_instances" doc:"Instances kept warm per plugin. 0 keeps none: once its load has checked the module (with one instance), and again once its instances have been idle for idle_release_after, the plugin holds no instance and no compiled code, and its next call compiles it from the cache and starts one."`
	IdleReleaseAfter Duration `koanf:"idle_release_after" doc:"Instances above min_instances that stayed idle this long are released (0 keeps them); under steady load none is idle that long."`
	MaxInstances     int64    `koanf:"max_instances" doc:"Most instances per plugin (calls served at once)."`
	ReadyAfterLoad   bool     `koanf:"ready_after_load" reload:"restart" doc:"At start, stay not ready (503 on /api/v1/status/ready) until every plugin has compiled and started. false: ready once every plugin is registered from its manifest; a call to a plugin still loading waits for it (up to its call timeout) and moves it to the front of the queue."`
	MemoryBytes      int64    `koanf:"memory_bytes" doc:"Memory ceiling of one instance, in bytes (rounded up to 64 KiB pages)."`
	MaxOutputBytes   int64    `koanf:"max_output_bytes" doc:"Largest reply a call may write."`
	KVQuotaBytes     int64    `koanf:"kv_quota_bytes" doc:"Most bytes of key-value data one plugin may hold."`
	FailureThreshold int64    `koanf:"failure_threshold" doc:"Consecutive traps or timeouts after which a plugin is marked failed."`
	MaxUploadBytes   int64    `koanf:"max_upload_bytes" doc:"Largest body of POST /api/v1/plugins (manifest and module), in bytes."`
	MaxCallDepth     int64    `koanf:"max_call_depth" doc:"How deep skills may call skills (A -> B -> C is 2)."`
	HTTPTimeout      Duration `koanf:"http_timeout" doc:"Deadline of one outbound HTTP request of a plugin."`
	HTTPMaxResponse  int64    `koanf:"http_max_response_bytes" doc:"Largest response body a plugin's HTTP request may read."`
	HTTPMaxRequests  int64    `koanf:"http_max_requests" doc:"Most outbound HTTP requests in one plugin call."`
	HookCommitWindow Duration `koanf:"hook_commit_window" doc:"How long a hook plugin's key-value writes wait for more events before they are committed together in one transaction (0: as soon as its queue is empty). Writes held are lost if the process dies, like the events queued for the hook; at most 1s."`
}

// PluginEntry is one [[plugins]] table: where a plugin is and what the
// operator grants it. Zero limits take the plugin.* defaults.
type PluginEntry struct {
	Name         string            `koanf:"name" json:"name"`
	Path         string            `koanf:"path" json:"path"` // empty: the plugin installed over the API under this name
	Grants       []string          `koanf:"grants" json:"grants"`
	Config       map[string]string `koanf:"config" json:"config"`
	MinInstances int64             `koanf:"min_instances" json:"min_instances"`           // 0: plugin.min_instances
	IdleRelease  Duration          `koanf:"idle_release_after" json:"idle_release_after"` // 0: plugin.idle_release_after
	MaxInstances int64             `koanf:"max_instances" json:"max_instances"`
	MemoryBytes  int64             `koanf:"memory_bytes" json:"memory_bytes"`
	CallTimeout  Duration          `koanf:"call_timeout" json:"call_timeout"`
	HTTPAllow    []string          `koanf:"http_allow" json:"http_allow"`     // hosts the http capability may reach; "*.example.com" allows subdomains
	HTTPPrivate  bool              `koanf:"http_private" json:"http_private"` // also loopback, private and link-local addresses
	LLMModels    []string          `koanf:"llm_models" json:"llm_models"`     // models the llm capability may ask for; empty: any configured model
	Trusted      bool              `koanf:"trusted" json:"trusted"`           // middleware only: run without per-phase deadlines (cheaper; an endless loop then holds its instance)
	Enabled      *bool             `koanf:"enabled" json:"enabled,omitempty"` // false: keep the plugin disabled (nil or true: load it)
}

// Off reports whether the table turns its plugin off (enabled = false).
func (p PluginEntry) Off() bool { return p.Enabled != nil && !*p.Enabled }

// Auth configures authentication.
type Auth struct {
	FailuresPerMinute int64 `koanf:"failures_per_minute" doc:"Failed authentication attempts (a credential sent and refused; requests without one count toward ratelimit.unauthenticated instead) allowed per client IP per minute; past it every request from that IP with a credential gets 429 until the bucket refills."`
	JWT               JWT   `koanf:"jwt"`
}

// JWT configures bearer JWTs from an identity provider, beside API keys.
// It is on when a secret or a JWKS file is set.
type JWT struct {
	HS256Secret string   `koanf:"hs256_secret" secret:"true" doc:"Shared secret for HS256 tokens (at least 32 bytes); empty turns HS256 off."`
	JWKSFile    string   `koanf:"jwks_file" doc:"JSON Web Key Set file with the RS256/ES256 public keys tokens are signed with; read at start and on every config change."`
	Issuer      string   `koanf:"issuer" doc:"Required iss claim; empty accepts any issuer."`
	Audience    string   `koanf:"audience" doc:"Required aud claim; empty accepts any audience."`
	RoleClaim   string   `koanf:"role_claim" doc:"Claim holding the caller's role (user, operator or admin); tokens without a valid one are refused."`
	Leeway      Duration `koanf:"leeway" doc:"Clock skew allowed when checking exp and nbf."`
}

// RateLimit configures the token buckets per principal (key, token subject
// or, unauthenticated, client IP) and endpoint group.
type RateLimit struct {
	Default         Bucket   `koanf:"default" doc:"Routes in no other group."`
	SessionsRead    Bucket   `koanf:"sessions_read" doc:"Reading sessions and messages."`
	SessionsWrite   Bucket   `koanf:"sessions_write" doc:"Creating sessions and posting messages."`
	ConfigWrite     Bucket   `koanf:"config_write" doc:"PATCH /api/v1/config."`
	Unauthenticated Bucket   `koanf:"unauthenticated" doc:"Public routes that are limited, per client IP."`
	IdleTTL         Duration `koanf:"idle_ttl" doc:"A bucket unused this long is forgotten."`
	MaxEntries      int64    `koanf:"max_entries" doc:"Most buckets kept in memory; past it idle and then arbitrary buckets are evicted."`
}

// Bucket is one token bucket: Rate tokens per second refill a bucket of
// Burst tokens.
type Bucket struct {
	Rate  float64 `koanf:"rate" doc:"Requests per second, sustained."`
	Burst int64   `koanf:"burst" doc:"Requests allowed at once (the bucket size)."`
}

// Groups returns the rate-limit groups by name.
func (r RateLimit) Groups() map[string]Bucket {
	return map[string]Bucket{
		"default": r.Default, "sessions_read": r.SessionsRead, "sessions_write": r.SessionsWrite,
		"config_write": r.ConfigWrite, "unauthenticated": r.Unauthenticated,
	}
}

// Log configures the process logger.
type Log struct {
	Level         string   `koanf:"level" doc:"Minimum level: debug, info, warn or error."`
	Format        string   `koanf:"format" reload:"restart" doc:"Log line format: text or json."`
	FlushInterval Duration `koanf:"flush_interval" reload:"restart" doc:"Logs are buffered and written at least this often (and at shutdown); 0 writes every line at once. A crash can lose up to one interval."`
	RingSize      int64    `koanf:"ring_size" reload:"restart" doc:"Log lines kept in memory for GET /api/v1/logs and the log stream."`
	StreamBuffer  int64    `koanf:"stream_buffer" doc:"Log lines queued per log-stream client; a client that reads slower loses lines (it is told how many)."`
	// Plugin log lines are limited per plugin so a chatty plugin cannot flood.
	PluginLinesPerSecond float64 `koanf:"plugin_lines_per_second" doc:"Log lines per second one plugin may write, sustained; past it lines are dropped and counted."`
	PluginBurst          int64   `koanf:"plugin_burst" doc:"Log lines one plugin may write at once before plugin_lines_per_second applies."`
}

// HTTP configures the HTTP server and its core middleware.
type HTTP struct {
	MaxBodyBytes      int64    `koanf:"max_body_bytes" doc:"Largest request body accepted, in bytes; larger bodies get 413 too_large."`
	MaxInFlight       int64    `koanf:"max_in_flight" doc:"Requests served at once before new ones get 503 overloaded; 0 means no limit. Health probes are exempt."`
	ReadHeaderTimeout Duration `koanf:"read_header_timeout" reload:"restart" doc:"Time allowed to read request headers."`
	ReadTimeout       Duration `koanf:"read_timeout" reload:"restart" doc:"Time allowed to read a whole request, body included."`
	WriteTimeout      Duration `koanf:"write_timeout" reload:"restart" doc:"Time allowed to write a response; streaming routes lift it for themselves."`
	IdleTimeout       Duration `koanf:"idle_timeout" reload:"restart" doc:"How long an idle keep-alive connection stays open."`
	ShutdownTimeout   Duration `koanf:"shutdown_timeout" doc:"How long a graceful shutdown waits for in-flight requests to finish."`
	TrustedProxies    []string `koanf:"trusted_proxies" doc:"CIDRs of proxies whose X-Forwarded-For is believed when finding the client IP; empty believes none."`
	CORS              CORS     `koanf:"cors"`
}

// CORS configures cross-origin requests. No allowed origin means CORS is off.
type CORS struct {
	AllowedOrigins   []string `koanf:"allowed_origins" doc:"Origins allowed to call the API (\"https://app.example.com\", \"https://*.example.com\" or \"*\"); empty turns CORS off."`
	AllowedMethods   []string `koanf:"allowed_methods" doc:"Methods allowed in cross-origin requests."`
	AllowedHeaders   []string `koanf:"allowed_headers" doc:"Request headers allowed in cross-origin requests."`
	ExposedHeaders   []string `koanf:"exposed_headers" doc:"Response headers a browser may read."`
	AllowCredentials bool     `koanf:"allow_credentials" doc:"Whether browsers may send credentials (not allowed with origin \"*\")."`
	MaxAge           Duration `koanf:"max_age" doc:"How long a browser may cache a preflight answer."`
}

// Storage configures where the gateway keeps its state: the embedded
// Badger database (the other keys) or PostgreSQL (storage.postgres).
type Storage struct {
	Backend  string   `koanf:"backend" reload:"restart" doc:"badger (embedded, in data_dir: one node) or postgres (storage.postgres: several nodes may share one database)."`
	Postgres Postgres `koanf:"postgres"`
	// The keys below apply to Badger.
	GCInterval      Duration `koanf:"gc_interval" doc:"How often the value log is garbage-collected."`
	GCDiscardRatio  float64  `koanf:"gc_discard_ratio" doc:"Rewrite a value-log file when at least this share of it is stale (0 < r < 1)."`
	MemTableBytes   int64    `koanf:"memtable_bytes" reload:"restart" doc:"Size of one in-memory write table, in bytes."`
	CacheBytes      int64    `koanf:"cache_bytes" reload:"restart" doc:"Size of the block cache, in bytes."`
	IndexCacheBytes int64    `koanf:"index_cache_bytes" reload:"restart" doc:"Size of the cache of table indexes and bloom filters, in bytes; 0 keeps every index in memory (Badger's default, which grows with the data)."`
}

// Postgres configures the PostgreSQL store (storage.backend = "postgres").
type Postgres struct {
	URL              string   `koanf:"url" reload:"restart" secret:"true" doc:"The database, as a URL (postgres://user:password@host:5432/db?sslmode=verify-full) or libpq key=value string; libpq's PG* environment variables fill what it leaves out."`
	MaxConns         int64    `koanf:"max_conns" reload:"restart" doc:"Connections in this node's pool (0: pgx's default, the larger of 4 and the number of CPUs). A session turn holds one for its whole length, the skill call included (its lock lives on it), so this bounds the turns a node runs at once; the nodes' sum must stay under the server's max_connections."`
	StatementTimeout Duration `koanf:"statement_timeout" reload:"restart" doc:"The server ends a statement that runs this long (and the request answers 503 store_unavailable); 0 keeps the server's setting."`
	ConnectTimeout   Duration `koanf:"connect_timeout" reload:"restart" doc:"How long one connection attempt may take."`
	RefreshInterval  Duration `koanf:"refresh_interval" doc:"Each node keeps users, API keys and webhooks in memory; it reads them from the database again this often (users and keys also at once, at most this often, when a request brings a key it does not know), so a key created on another node works at once and a revoked one stops within this interval."`
}

// Audit configures the audit trail.
type Audit struct {
	Retention     Duration `koanf:"retention" doc:"How long audit entries are kept; 0 keeps them forever."`
	SweepInterval Duration `koanf:"sweep_interval" doc:"How often entries older than the retention are deleted."`
}

// Events configures the in-process event bus.
type Events struct {
	Buffer int64 `koanf:"buffer" doc:"Events buffered per subscriber before new ones are dropped (and counted); applies to new subscribers."`
}

// Capabilities are what the operator may grant a plugin.
var Capabilities = []string{"kv", "events", "http", "skills", "llm", "mcp"}

var pluginName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// skillName is what MCP clients accept as a tool name.
var skillName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Default returns the built-in defaults: a gateway that starts with no
// config file at all.
func Default() *Config {
	metrics, tracing, tls := defaultOps()
	return &Config{
		Metrics: metrics, Tracing: tracing, TLS: tls, Packs: defaultPacks(),
		Listen:  "127.0.0.1:3120",
		DataDir: "./portico-data",
		Log: Log{Level: "info", Format: "text", FlushInterval: Duration(100 * time.Millisecond),
			RingSize: 10000, StreamBuffer: 256, PluginLinesPerSecond: 20, PluginBurst: 100},
		HTTP: HTTP{
			MaxBodyBytes:      1 << 20,
			MaxInFlight:       0,
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(60 * time.Second),
			WriteTimeout:      Duration(60 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			ShutdownTimeout:   Duration(15 * time.Second),
			CORS: CORS{
				AllowedOrigins: []string{},
				AllowedMethods: []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
				AllowedHeaders: []string{"Authorization", "Content-Type", "X-API-Key", "Idempotency-Key", "X-Request-Id"},
				ExposedHeaders: []string{"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"},
				MaxAge:         Duration(10 * time.Minute),
			},
			TrustedProxies: []string{},
		},
		Storage: Storage{
			Backend:         "badger",
			Postgres:        Postgres{MaxConns: 32, StatementTimeout: Duration(15 * time.Second), ConnectTimeout: Duration(5 * time.Second), RefreshInterval: Duration(2 * time.Second)},
			GCInterval:      Duration(10 * time.Minute),
			GCDiscardRatio:  0.5,
			MemTableBytes:   16 << 20,
			CacheBytes:      64 << 20,
			IndexCacheBytes: 16 << 20,
		},
		Cluster: Cluster{RedisTimeout: Duration(100 * time.Millisecond), RedisRetryInterval: Duration(time.Second), RedisKeyPrefix: "portico:",
			HeartbeatInterval: Duration(2 * time.Second)},
		Audit:  Audit{Retention: Duration(90 * 24 * time.Hour), SweepInterval: Duration(time.Hour)},
		Events: Events{Buffer: 256},
		Auth: Auth{
			FailuresPerMinute: 10,
			JWT:               JWT{RoleClaim: "portico_role", Leeway: Duration(30 * time.Second)},
		},
		Plugin: Plugin{
			Embedded:         true,
			CacheMaxBytes:    1 << 30,
			CallTimeout:      Duration(5 * time.Second),
			AcquireTimeout:   Duration(time.Second),
			MinInstances:     0, // measured: 305 -> 125 MB idle for the embedded plugins; a first call then pays ~60 ms (docs/benchmarks.md)
			IdleReleaseAfter: Duration(5 * time.Minute),
			HookCommitWindow: Duration(10 * time.Millisecond),
			MaxInstances:     4,
			MemoryBytes:      64 << 20,
			MaxOutputBytes:   1 << 20,
			KVQuotaBytes:     10 << 20,
			FailureThreshold: 5,
			MaxUploadBytes:   32 << 20,
			MaxCallDepth:     4,
			HTTPTimeout:      Duration(5 * time.Second),
			HTTPMaxResponse:  1 << 20,
			HTTPMaxRequests:  10,
		},
		// The embedded notes and audit plugins keep their data in their kv
		// stores: granted here, explicitly, like any other grant.
		Plugins: []PluginEntry{{Name: "notes", Grants: []string{"kv"}}, {Name: "audit", Grants: []string{"kv"}}},
		Sessions: Sessions{
			IdleTimeout:     Duration(30 * time.Minute),
			DefaultSkill:    "echo",
			HistoryMessages: 20,
			HistoryCache:    8 << 20,
			MaxMessageBytes: 32 << 10,
			IdempotencyTTL:  Duration(24 * time.Hour),
			WSQueue:         256,
			WSPingInterval:  Duration(30 * time.Second),
		},
		LLM: LLM{Timeout: Duration(60 * time.Second), MaxRetries: 2, RetryBackoff: Duration(500 * time.Millisecond),
			MaxResponseBytes: 4 << 20, DefaultMaxTokens: 1024, QuotaPeriod: Duration(30 * 24 * time.Hour), Providers: []LLMProvider{}},
		Middleware: Middleware{PreAuth: []MiddlewareGroup{}, PostAuth: []MiddlewareGroup{}, MaxBodyBytes: 1 << 20},
		Webhooks: Webhooks{
			MaxAttempts:    8,
			InitialBackoff: Duration(time.Second),
			MaxBackoff:     Duration(10 * time.Minute),
			Timeout:        Duration(10 * time.Second),
			Workers:        4,
			SecretOverlap:  Duration(24 * time.Hour),
			Retention:      Duration(7 * 24 * time.Hour),
			ClaimLease:     Duration(time.Minute),
			PollInterval:   Duration(time.Second),
		},
		MCP: defaultMCP(),
		A2A: defaultA2A(),
		RateLimit: RateLimit{
			Default:         Bucket{Rate: 30, Burst: 30},
			SessionsRead:    Bucket{Rate: 50, Burst: 50},
			SessionsWrite:   Bucket{Rate: 10, Burst: 10},
			ConfigWrite:     Bucket{Rate: 5, Burst: 5},
			Unauthenticated: Bucket{Rate: 10, Burst: 10},
			IdleTTL:         Duration(10 * time.Minute),
			MaxEntries:      100_000,
		},
	}
}

// Duration is a time.Duration written as a Go duration string ("30s",
// "1h30m") in files, environment variables and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"30s\" or \"5m\", got %q", b)
	}
	*d = Duration(v)
	return nil
}

// KeyError is a problem with one configuration key. Validation and decoding
// return one per bad key, joined with errors.Join.
type KeyError struct {
	Key    string // dotted key, e.g. "log.level"
	Source string // where the value came from: "file", "env", "flag", "api", or "" for the merged result
	Msg    string
}

func (e *KeyError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("%s (from %s): %s", e.Key, e.Source, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// Keys returns the dotted names of the keys named in err's KeyErrors, in
// order and without repeats.
func Keys(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *KeyError:
			if !slices.Contains(out, e.Key) {
				out = append(out, e.Key)
			}
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// Validate checks every value and returns all problems at once, each naming
// its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if err := validHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "must be one of debug, info, warn, error (got %q)", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "must be text or json (got %q)", c.Log.Format)
	}
	if c.HTTP.MaxBodyBytes < 1 {
		bad("http.max_body_bytes", "must be at least 1 (got %d)", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxInFlight < 0 {
		bad("http.max_in_flight", "must be 0 (no limit) or more (got %d)", c.HTTP.MaxInFlight)
	}
	positive := map[string]Duration{
		"http.read_header_timeout": c.HTTP.ReadHeaderTimeout,
		"http.shutdown_timeout":    c.HTTP.ShutdownTimeout,
		"storage.gc_interval":      c.Storage.GCInterval,
		"audit.sweep_interval":     c.Audit.SweepInterval,
	}
	nonNegative := map[string]Duration{
		"http.read_timeout":  c.HTTP.ReadTimeout,
		"http.write_timeout": c.HTTP.WriteTimeout,
		"http.idle_timeout":  c.HTTP.IdleTimeout,
		"http.cors.max_age":  c.HTTP.CORS.MaxAge,
		"audit.retention":    c.Audit.Retention,
		"log.flush_interval": c.Log.FlushInterval,
	}
	for k, d := range positive {
		if d <= 0 {
			bad(k, "must be a positive duration (got %s)", d.D())
		}
	}
	for k, d := range nonNegative {
		if d < 0 {
			bad(k, "must not be negative (got %s)", d.D())
		}
	}
	for _, o := range c.HTTP.CORS.AllowedOrigins {
		if err := validOrigin(o); err != nil {
			bad("http.cors.allowed_origins", "%v", err)
		}
	}
	if c.HTTP.CORS.AllowCredentials && slices.Contains(c.HTTP.CORS.AllowedOrigins, "*") {
		bad("http.cors.allow_credentials", "cannot be true while allowed_origins contains \"*\"; list the origins")
	}
	if r := c.Storage.GCDiscardRatio; r <= 0 || r >= 1 {
		bad("storage.gc_discard_ratio", "must be between 0 and 1, exclusive (got %v)", r)
	}
	if c.Storage.MemTableBytes < 1<<20 {
		bad("storage.memtable_bytes", "must be at least 1048576 (1 MiB) (got %d)", c.Storage.MemTableBytes)
	}
	if c.Storage.CacheBytes < 0 {
		bad("storage.cache_bytes", "must not be negative (got %d)", c.Storage.CacheBytes)
	}
	switch c.Storage.Backend {
	case "badger":
	case "postgres":
		if strings.TrimSpace(c.Storage.Postgres.URL) == "" {
			bad("storage.postgres.url", "must be set when storage.backend is postgres (postgres://user:password@host:5432/db)")
		}
	default:
		bad("storage.backend", "must be badger or postgres (got %q)", c.Storage.Backend)
	}
	if n := c.Storage.Postgres.MaxConns; n < 0 || n > 10000 {
		bad("storage.postgres.max_conns", "must be between 0 (pgx's default) and 10000 (got %d)", n)
	}
	if c.Storage.Postgres.ConnectTimeout <= 0 {
		bad("storage.postgres.connect_timeout", "must be a positive duration (got %s)", c.Storage.Postgres.ConnectTimeout.D())
	}
	if u := c.Cluster.RedisURL; u != "" && !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") && !strings.HasPrefix(u, "unix://") {
		bad("cluster.redis_url", "must be a redis://, rediss:// or unix:// URL")
	}
	if n := c.Cluster.RedisPoolSize; n < 0 || n > 10000 {
		bad("cluster.redis_pool_size", "must be between 0 (go-redis's default) and 10000 (got %d)", n)
	}
	if c.Cluster.RedisTimeout <= 0 {
		bad("cluster.redis_timeout", "must be a positive duration (got %s)", c.Cluster.RedisTimeout.D())
	}
	if c.Cluster.HeartbeatInterval <= 0 {
		bad("cluster.heartbeat_interval", "must be a positive duration (got %s)", c.Cluster.HeartbeatInterval.D())
	}
	if c.Cluster.RedisRetryInterval <= 0 {
		bad("cluster.redis_retry_interval", "must be a positive duration (got %s)", c.Cluster.RedisRetryInterval.D())
	}
	if c.Storage.Postgres.RefreshInterval <= 0 {
		bad("storage.postgres.refresh_interval", "must be a positive duration (got %s)", c.Storage.Postgres.RefreshInterval.D())
	}
	if c.Storage.Postgres.StatementTimeout < 0 {
		bad("storage.postgres.statement_timeout", "must not be negative (got %s)", c.Storage.Postgres.StatementTimeout.D())
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("http.trusted_proxies", "%q is not a CIDR such as 10.0.0.0/8 or an IP", p)
			}
		}
	}
	if c.Auth.FailuresPerMinute < 1 {
		bad("auth.failures_per_minute", "must be at least 1 (got %d)", c.Auth.FailuresPerMinute)
	}
	if s := c.Auth.JWT.HS256Secret; s != "" && len(s) < 32 {
		bad("auth.jwt.hs256_secret", "must be at least 32 bytes long (got %d)", len(s))
	}
	if (c.Auth.JWT.HS256Secret != "" || c.Auth.JWT.JWKSFile != "") && c.Auth.JWT.RoleClaim == "" {
		bad("auth.jwt.role_claim", "must name a claim when JWT is on")
	}
	if c.Auth.JWT.Leeway < 0 {
		bad("auth.jwt.leeway", "must not be negative (got %s)", c.Auth.JWT.Leeway.D())
	}
	for name, b := range c.RateLimit.Groups() {
		if b.Rate <= 0 {
			bad("ratelimit."+name+".rate", "must be a positive number of requests per second (got %v)", b.Rate)
		}
		if b.Burst < 1 {
			bad("ratelimit."+name+".burst", "must be at least 1 (got %d)", b.Burst)
		}
	}
	if c.RateLimit.IdleTTL <= 0 {
		bad("ratelimit.idle_ttl", "must be a positive duration (got %s)", c.RateLimit.IdleTTL.D())
	}
	if c.RateLimit.MaxEntries < 1000 {
		bad("ratelimit.max_entries", "must be at least 1000 (got %d)", c.RateLimit.MaxEntries)
	}
	for k, d := range map[string]Duration{"plugin.call_timeout": c.Plugin.CallTimeout, "plugin.acquire_timeout": c.Plugin.AcquireTimeout, "plugin.http_timeout": c.Plugin.HTTPTimeout} {
		if d <= 0 {
			bad(k, "must be a positive duration (got %s)", d.D())
		}
	}
	if c.Plugin.HookCommitWindow < 0 || c.Plugin.HookCommitWindow > Duration(time.Second) {
		bad("plugin.hook_commit_window", "must be between 0 and 1s (got %s)", c.Plugin.HookCommitWindow.D())
	}
	if c.Plugin.IdleReleaseAfter < 0 {
		bad("plugin.idle_release_after", "must not be negative (got %s)", c.Plugin.IdleReleaseAfter.D())
	}
	if c.Plugin.MinInstances < 0 || c.Plugin.MaxInstances < 1 || c.Plugin.MinInstances > c.Plugin.MaxInstances {
		bad("plugin.max_instances", "need 0 <= min_instances <= max_instances and max_instances >= 1 (got %d, %d)", c.Plugin.MinInstances, c.Plugin.MaxInstances)
	}
	if c.Plugin.MemoryBytes < 1<<20 {
		bad("plugin.memory_bytes", "must be at least 1048576 (got %d)", c.Plugin.MemoryBytes)
	}
	for k, v := range map[string]int64{"plugin.max_output_bytes": c.Plugin.MaxOutputBytes, "plugin.kv_quota_bytes": c.Plugin.KVQuotaBytes, "plugin.failure_threshold": c.Plugin.FailureThreshold, "plugin.max_upload_bytes": c.Plugin.MaxUploadBytes, "plugin.max_call_depth": c.Plugin.MaxCallDepth, "plugin.cache_max_bytes": c.Plugin.CacheMaxBytes,
		"plugin.http_max_response_bytes": c.Plugin.HTTPMaxResponse, "plugin.http_max_requests": c.Plugin.HTTPMaxRequests} {
		if v < 1 {
			bad(k, "must be at least 1 (got %d)", v)
		}
	}
	for _, p := range c.Plugins {
		// Tables merge by name across layers, so a table is named by its
		// plugin, not by a position the user never wrote.
		key := fmt.Sprintf("plugins[%s]", p.Name)
		if !pluginName.MatchString(p.Name) {
			key = fmt.Sprintf("plugins[%q]", p.Name)
			bad(key+".name", "%q must be 1 to 64 lower-case letters, digits, _ or -, starting with a letter or digit", p.Name)
		}
		for _, g := range p.Grants {
			if !KnownCapability(g) {
				bad(key+".grants", "unknown capability %q; known: %s, or an embedding program's dotted name such as \"acme.lookup\"", g, strings.Join(Capabilities, ", "))
			}
		}
		if p.MinInstances < 0 || p.MaxInstances < 0 || (p.MaxInstances > 0 && p.MinInstances > p.MaxInstances) {
			bad(key+".max_instances", "need 0 <= min_instances <= max_instances")
		}
		if p.MemoryBytes != 0 && p.MemoryBytes < 1<<20 {
			bad(key+".memory_bytes", "must be 0 (the default) or at least 1048576")
		}
		if p.CallTimeout < 0 {
			bad(key+".call_timeout", "must not be negative")
		}
		if p.IdleRelease < 0 {
			bad(key+".idle_release_after", "must not be negative")
		}
	}
	c.validateAgent(bad)
	c.validateMCP(bad)
	c.validateMiddleware(bad)
	c.validateOps(bad)
	c.validatePacks(bad)
	if c.Events.Buffer < 1 || c.Events.Buffer > 1<<20 {
		bad("events.buffer", "must be between 1 and 1048576 (got %d)", c.Events.Buffer)
	}
	return errors.Join(errs...)
}

func validHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT such as 127.0.0.1:3120, got %q", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /\\") {
		return fmt.Errorf("host %q is not a valid host name or IP", host)
	}
	return nil
}

func validOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(strings.Replace(o, "*.", "wildcard.", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
		return fmt.Errorf("origin %q must be \"*\" or scheme://host[:port], e.g. https://app.example.com", o)
	}
	if strings.Count(o, "*") > 1 {
		return fmt.Errorf("origin %q may contain at most one wildcard", o)
	}
	return nil
}
