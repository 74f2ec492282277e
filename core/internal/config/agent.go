package config

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Sessions configures conversations: sessions, messages and the router
// that hands each message to a skill.
type Sessions struct {
	IdleTimeout     Duration `koanf:"idle_timeout" doc:"A session without messages for this long is listed as idle (it still takes messages)."`
	DefaultSkill    string   `koanf:"default_skill" doc:"Skill that answers messages no skill trigger matches; empty answers 422 no_route for them."`
	HistoryMessages int64    `koanf:"history_messages" doc:"How many earlier messages of the session are handed to the skill with a new one."`
	HistoryCache    int64    `koanf:"history_cache_bytes" doc:"Bytes of message text kept in memory as the recent history of the most recently active sessions, so a turn does not read its history from the store again; 0 reads it every turn."`
	MaxMessageBytes int64    `koanf:"max_message_bytes" doc:"Largest message text accepted, in bytes; larger ones get 413 too_large."`
	IdempotencyTTL  Duration `koanf:"idempotency_ttl" doc:"How long a message post's Idempotency-Key is remembered."`
	WSQueue         int64    `koanf:"ws_queue" doc:"Frames queued per WebSocket client; a client that stops reading is closed once its queue is full."`
	WSPingInterval  Duration `koanf:"ws_ping_interval" doc:"How often WebSocket clients are pinged; one that does not answer within the interval is closed."`
}

// LLM configures the LLM providers skills reach through the llm capability.
type LLM struct {
	DefaultProvider  string        `koanf:"default_provider" doc:"Provider used when a request names no model a provider lists; empty means the first provider."`
	Timeout          Duration      `koanf:"timeout" doc:"Deadline of one provider call, retries included."`
	MaxRetries       int64         `koanf:"max_retries" doc:"Retries of a provider call that failed with a network error, 429 or 5xx, with exponential backoff."`
	RetryBackoff     Duration      `koanf:"retry_backoff" doc:"Wait before the first retry; each retry doubles it. A provider's Retry-After is honoured when it asks for longer."`
	MaxResponseBytes int64         `koanf:"max_response_bytes" doc:"Largest provider response read: a whole reply, or one event of a streamed one."`
	DefaultMaxTokens int64         `koanf:"default_max_tokens" doc:"max_tokens sent when a request names none and the provider requires it (Anthropic)."`
	KeyQuotaTokens   int64         `koanf:"key_quota_tokens" doc:"Tokens (input plus output) one API key may spend per quota_period; 0 means no quota. Spent keys get 429 quota_exceeded."`
	QuotaPeriod      Duration      `koanf:"quota_period" doc:"Window of key_quota_tokens, counted in whole UTC days back from today."`
	Providers        []LLMProvider `koanf:"providers" doc:"The providers, one [[llm.providers]] table each (see docs/llm.md)."`
}

// LLMProvider is one [[llm.providers]] table.
type LLMProvider struct {
	Name      string   `koanf:"name" json:"name"`
	Kind      string   `koanf:"kind" json:"kind"`                     // openai (any OpenAI-compatible server) or anthropic
	BaseURL   string   `koanf:"base_url" json:"base_url"`             // e.g. https://api.openai.com/v1, http://127.0.0.1:8080/v1
	APIKey    string   `koanf:"api_key" json:"api_key" secret:"true"` // prefer api_key_env
	APIKeyEnv string   `koanf:"api_key_env" json:"api_key_env"`       // environment variable holding the key
	Models    []string `koanf:"models" json:"models"`                 // models it serves; the first is its default
	Timeout   Duration `koanf:"timeout" json:"timeout"`               // 0: llm.timeout
	Headers   []string `koanf:"headers" json:"headers"`               // extra "Name: value" request headers
}

// Webhooks configures outbound webhook delivery.
type Webhooks struct {
	MaxAttempts    int64    `koanf:"max_attempts" doc:"Delivery attempts before a delivery moves to the dead-letter list."`
	InitialBackoff Duration `koanf:"initial_backoff" doc:"Wait before the first retry; each retry doubles it, with jitter."`
	MaxBackoff     Duration `koanf:"max_backoff" doc:"Longest wait between two attempts."`
	Timeout        Duration `koanf:"timeout" doc:"Deadline of one delivery attempt."`
	Workers        int64    `koanf:"workers" doc:"Deliveries sent at once."`
	AllowPrivate   bool     `koanf:"allow_private" doc:"Allow targets on loopback, private and link-local addresses (off: refused when the hook is created and at every attempt)."`
	SecretOverlap  Duration `koanf:"secret_overlap" doc:"How long the previous secret still signs deliveries (a second signature) after a rotation."`
	Retention      Duration `koanf:"retention" doc:"How long delivered and dead deliveries are kept for GET .../deliveries."`
	PollInterval   Duration `koanf:"poll_interval" doc:"On a store several nodes share (PostgreSQL), the longest a node waits before it reads the queue again, for deliveries other nodes queued or left behind."`
	ClaimLease     Duration `koanf:"claim_lease" doc:"On a store several nodes share (PostgreSQL), how long a node holds a delivery it is sending: another node sends it, with the same delivery id, once the lease has passed without an outcome (the node died). Longer than webhooks.timeout."`
}

var llmKinds = []string{"openai", "anthropic"}

func (c *Config) validateAgent(bad func(key, format string, args ...any)) {
	s := c.Sessions
	if s.IdleTimeout <= 0 {
		bad("sessions.idle_timeout", "must be a positive duration (got %s)", s.IdleTimeout.D())
	}
	if s.DefaultSkill != "" && !skillName.MatchString(s.DefaultSkill) {
		bad("sessions.default_skill", "%q is not a skill name (letters, digits, _ and -, up to 64)", s.DefaultSkill)
	}
	if s.HistoryMessages < 0 || s.HistoryMessages > 1000 {
		bad("sessions.history_messages", "must be between 0 and 1000 (got %d)", s.HistoryMessages)
	}
	if s.HistoryCache < 0 {
		bad("sessions.history_cache_bytes", "must not be negative (got %d)", s.HistoryCache)
	}
	if s.MaxMessageBytes < 1 {
		bad("sessions.max_message_bytes", "must be at least 1 (got %d)", s.MaxMessageBytes)
	}
	if s.IdempotencyTTL <= 0 {
		bad("sessions.idempotency_ttl", "must be a positive duration (got %s)", s.IdempotencyTTL.D())
	}
	if s.WSQueue < 1 {
		bad("sessions.ws_queue", "must be at least 1 (got %d)", s.WSQueue)
	}
	if s.WSPingInterval <= 0 {
		bad("sessions.ws_ping_interval", "must be a positive duration (got %s)", s.WSPingInterval.D())
	}

	l := c.LLM
	if l.Timeout <= 0 {
		bad("llm.timeout", "must be a positive duration (got %s)", l.Timeout.D())
	}
	if l.MaxRetries < 0 || l.MaxRetries > 10 {
		bad("llm.max_retries", "must be between 0 and 10 (got %d)", l.MaxRetries)
	}
	if l.RetryBackoff <= 0 {
		bad("llm.retry_backoff", "must be a positive duration (got %s)", l.RetryBackoff.D())
	}
	if l.MaxResponseBytes < 1024 {
		bad("llm.max_response_bytes", "must be at least 1024 (got %d)", l.MaxResponseBytes)
	}
	if l.DefaultMaxTokens < 1 {
		bad("llm.default_max_tokens", "must be at least 1 (got %d)", l.DefaultMaxTokens)
	}
	if l.KeyQuotaTokens < 0 {
		bad("llm.key_quota_tokens", "must be 0 (no quota) or more (got %d)", l.KeyQuotaTokens)
	}
	if l.QuotaPeriod < Duration(24*time.Hour) {
		bad("llm.quota_period", "must be at least 24h (got %s)", l.QuotaPeriod.D())
	}
	names := map[string]bool{}
	models := map[string]string{} // model -> provider listing it
	for i, p := range l.Providers {
		key := fmt.Sprintf("llm.providers[%d]", i)
		if !pluginName.MatchString(p.Name) {
			bad(key+".name", "%q must be 1 to 64 lower-case letters, digits, _ or -", p.Name)
		} else if names[p.Name] {
			bad(key+".name", "provider %q is listed twice", p.Name)
		}
		names[p.Name] = true
		if !slices.Contains(llmKinds, p.Kind) {
			bad(key+".kind", "must be openai (any OpenAI-compatible server) or anthropic (got %q)", p.Kind)
		}
		if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".base_url", "want an http(s) URL such as https://api.openai.com/v1 (got %q)", p.BaseURL)
		}
		if len(p.Models) == 0 {
			bad(key+".models", "list at least one model the provider serves")
		}
		for _, m := range p.Models {
			if other, ok := models[m]; ok {
				bad(key+".models", "model %q is also listed by provider %q; a model routes to one provider", m, other)
			} else if m == "" {
				bad(key+".models", "a model name must not be empty")
			}
			models[m] = p.Name
		}
		if p.APIKey != "" && p.APIKeyEnv != "" {
			bad(key+".api_key_env", "set api_key or api_key_env, not both")
		}
		if p.Timeout < 0 {
			bad(key+".timeout", "must not be negative")
		}
		for _, h := range p.Headers {
			if !validHeaderLine(h) {
				bad(key+".headers", "%q is not a \"Name: value\" header", h)
			}
		}
	}
	if l.DefaultProvider != "" && !names[l.DefaultProvider] {
		bad("llm.default_provider", "%q is not one of the [[llm.providers]]", l.DefaultProvider)
	}

	w := c.Webhooks
	if w.MaxAttempts < 1 || w.MaxAttempts > 100 {
		bad("webhooks.max_attempts", "must be between 1 and 100 (got %d)", w.MaxAttempts)
	}
	if w.Workers < 1 || w.Workers > 256 {
		bad("webhooks.workers", "must be between 1 and 256 (got %d)", w.Workers)
	}
	for k, d := range map[string]Duration{"webhooks.initial_backoff": w.InitialBackoff, "webhooks.max_backoff": w.MaxBackoff, "webhooks.timeout": w.Timeout, "webhooks.retention": w.Retention} {
		if d <= 0 {
			bad(k, "must be a positive duration (got %s)", d.D())
		}
	}
	if w.MaxBackoff < w.InitialBackoff {
		bad("webhooks.max_backoff", "must not be shorter than initial_backoff")
	}
	if w.SecretOverlap < 0 {
		bad("webhooks.secret_overlap", "must not be negative")
	}
	if w.PollInterval <= 0 {
		bad("webhooks.poll_interval", "must be a positive duration (got %s)", w.PollInterval.D())
	}
	if w.ClaimLease <= w.Timeout {
		bad("webhooks.claim_lease", "must be longer than webhooks.timeout (%s; got %s)", w.Timeout.D(), w.ClaimLease.D())
	}
}

func validHeaderLine(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] == ':' {
			return i > 0 && i+1 < len(h)
		}
		if h[i] <= ' ' || h[i] >= 0x7f {
			return false
		}
	}
	return false
}
