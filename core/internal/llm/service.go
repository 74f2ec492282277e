package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/store"
)

// Options are what a Service needs besides its config.
type Options struct {
	Logger *slog.Logger
	// Getenv looks up the environment variables that api_key_env names;
	// nil means none is set.
	Getenv func(string) string
	// Client makes the provider calls; nil means a client of its own that
	// honours HTTPS_PROXY and follows no redirects.
	Client *http.Client
	// Now is the ledger's clock; nil means time.Now.
	Now func() time.Time
	// Counters, when set, keep the quota windows that several nodes
	// share (cluster.redis_url); the node's own window is the fallback.
	Counters Counters
}

// Counters are token counts per account and UTC day that several nodes
// share. Either method fails while they cannot be reached; the ledger then
// checks the node's own window.
type Counters interface {
	// AddTokens adds n to account's count of day, if that count exists
	// (SumTokens creates it, from the ledger).
	AddTokens(account, day string, n int64) error
	// SumTokens sums account's counts of days, first creating each
	// missing one from seed(day): the ledger's sum of that day.
	SumTokens(account string, days []string, seed func(day string) (int64, error)) (int64, error)
}

// Service routes completions to the configured providers and keeps the
// usage ledger. It is safe for concurrent use; ApplyConfig swaps its
// settings while calls are in flight (a call keeps the settings it began
// with).
type Service struct {
	client *http.Client
	log    *slog.Logger
	getenv func(string) string
	set    atomic.Pointer[settings]
	ledger *ledger
}

// settings is one immutable snapshot of the llm config.
type settings struct {
	providers  []*provider
	byModel    map[string]*provider
	def        *provider
	timeout    time.Duration
	retries    int
	backoff    time.Duration
	maxBody    int64
	maxTokens  int
	quota      int64
	periodDays int
}

// provider is one configured provider, ready to call.
type provider struct {
	name    string
	dialect dialect
	url     string // the endpoint: base_url + /chat/completions or /messages
	key     string
	headers http.Header
	models  []string
	timeout time.Duration // 0: llm.timeout
}

// New returns a Service for the config c that keeps its ledger in kv
// (under "usage/").
func New(kv store.KV, c config.LLM, opts Options) *Service {
	s := &Service{client: opts.Client, log: opts.Logger, getenv: opts.Getenv}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.getenv == nil {
		s.getenv = func(string) string { return "" }
	}
	if s.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		s.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s.ledger = newLedger(kv, now)
	s.ledger.shared = opts.Counters
	s.applyLLM(c)
	return s
}

// Apply makes the llm.* keys of c live (applyLLM).
func (s *Service) Apply(_ context.Context, c *config.Config) error {
	s.applyLLM(c.LLM)
	return nil
}

// applyLLM makes c the live config: later calls use its providers,
// limits and quota. c is expected to be valid (config.Validate); a
// provider whose api_key_env is not set is kept, with a warning, and
// called without a key.
func (s *Service) applyLLM(c config.LLM) {
	st := &settings{
		byModel: map[string]*provider{}, timeout: c.Timeout.D(), retries: int(c.MaxRetries), backoff: c.RetryBackoff.D(),
		maxBody: c.MaxResponseBytes, maxTokens: int(c.DefaultMaxTokens), quota: c.KeyQuotaTokens,
		periodDays: max(1, int(c.QuotaPeriod.D()/(24*time.Hour))),
	}
	for _, pc := range c.Providers {
		p := &provider{name: pc.Name, key: pc.APIKey, headers: http.Header{}, models: slices.Clone(pc.Models), timeout: pc.Timeout.D()}
		base := strings.TrimRight(pc.BaseURL, "/")
		switch pc.Kind {
		case "anthropic":
			p.dialect, p.url = anthropic{}, base+"/messages"
		default:
			p.dialect, p.url = openAI{}, base+"/chat/completions"
		}
		if pc.APIKeyEnv != "" {
			if p.key = s.getenv(pc.APIKeyEnv); p.key == "" {
				s.log.Warn("LLM provider key not found: its environment variable is empty or unset; calls go without a key", "provider", pc.Name, "api_key_env", pc.APIKeyEnv)
			}
		}
		for _, h := range pc.Headers {
			k, v, _ := strings.Cut(h, ":")
			p.headers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		st.providers = append(st.providers, p)
		for _, m := range p.models {
			if _, dup := st.byModel[m]; !dup {
				st.byModel[m] = p
			}
		}
		if pc.Name == c.DefaultProvider {
			st.def = p
		}
	}
	if st.def == nil && len(st.providers) > 0 {
		st.def = st.providers[0]
	}
	s.set.Store(st)
}

// Models lists the configured models, by provider order.
func (s *Service) Models() []string {
	var out []string
	for _, p := range s.set.Load().providers {
		out = append(out, p.models...)
	}
	return out
}

// Complete runs one completion for host code (not a plugin): no model
// allow-list applies. The account (WithAccount) pays for it, and must not
// have spent its quota.
func (s *Service) Complete(ctx context.Context, req Request) (Reply, error) {
	return s.complete(ctx, req, "", nil)
}

// PluginComplete serves a plugin's llm_complete: request is the JSON of a
// Request, the answer the JSON of a Reply. models is the plugin's
// llm_models allow-list; empty allows every configured model, and a
// request without a model gets the list's first model.
func (s *Service) PluginComplete(ctx context.Context, plugin string, models []string, request []byte) ([]byte, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(request))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v; see docs/abi.md for the llm_complete request", ErrBadRequest, err)
	}
	reply, err := s.complete(ctx, req, plugin, models)
	if err != nil {
		return nil, err
	}
	return json.Marshal(reply)
}

// route picks the provider of req's model (or the default one) and checks
// the allow-list; it returns the model name to ask for.
func (st *settings) route(model, plugin string, allowed []string) (*provider, string, error) {
	if len(st.providers) == 0 {
		return nil, "", ErrNoProvider
	}
	if model == "" {
		if len(allowed) > 0 {
			model = allowed[0]
		} else {
			return st.def, st.def.models[0], nil
		}
	}
	p, ok := st.byModel[model]
	if !ok {
		return nil, "", fmt.Errorf("%w %q: the configured models are %s", ErrUnknownModel, model, strings.Join(st.models(), ", "))
	}
	if len(allowed) > 0 && !slices.Contains(allowed, model) {
		return nil, "", fmt.Errorf("%w: plugin %q may use only %s (llm_models in its [[plugins]] table), not %q",
			ErrModelNotAllowed, plugin, strings.Join(allowed, ", "), model)
	}
	return p, model, nil
}

func (st *settings) models() []string {
	var out []string
	for _, p := range st.providers {
		out = append(out, p.models...)
	}
	return out
}

// check validates a request and folds its prompt into its messages.
func (req *Request) check() error {
	if req.Prompt != "" {
		req.Messages = append(slices.Clip(req.Messages), Message{Role: "user", Content: req.Prompt})
		req.Prompt = ""
	}
	if len(req.Messages) == 0 {
		return fmt.Errorf("%w: give \"messages\" or a \"prompt\"", ErrBadRequest)
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return fmt.Errorf("%w: messages[%d].role is %q; want system, user or assistant", ErrBadRequest, i, m.Role)
		}
	}
	if req.MaxTokens < 0 {
		return fmt.Errorf("%w: max_tokens must not be negative", ErrBadRequest)
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return fmt.Errorf("%w: temperature must be between 0 and 2", ErrBadRequest)
	}
	return nil
}

func (s *Service) complete(ctx context.Context, req Request, plugin string, allowed []string) (Reply, error) {
	st := s.set.Load()
	p, model, err := st.route(req.Model, plugin, allowed)
	if err != nil {
		return Reply{}, err
	}
	if err := req.check(); err != nil {
		return Reply{}, err
	}
	account := AccountFrom(ctx)
	if err := s.ledger.check(ctx, account, st.quota, st.periodDays); err != nil {
		return Reply{}, err
	}
	obs := observerFrom(ctx)
	reply, err := s.call(ctx, st, p, model, req, obs)
	if u := reply.Usage; u.Total() > 0 {
		// Tokens a failed or abandoned call spent count too.
		if rerr := s.ledger.record(context.WithoutCancel(ctx), account, model, u); rerr != nil {
			s.log.Error("LLM usage not recorded", "account", account, "model", model, "error", rerr)
		}
		if obs.OnUsage != nil {
			obs.OnUsage(u)
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "LLM completion failed", "provider", p.name, "model", model, "plugin", plugin, "error", err)
		return Reply{}, err
	}
	return reply, nil
}

// CheckQuota returns an ErrQuotaExceeded error when account has spent its
// token quota for the period (nil when no quota is set or account is "").
// Completions check it themselves; callers check it up front to refuse a
// request before any work (the skills API answers 429 quota_exceeded).
func (s *Service) CheckQuota(ctx context.Context, account string) error {
	st := s.set.Load()
	return s.ledger.check(ctx, account, st.quota, st.periodDays)
}

// errTimeout marks our own deadline (llm.timeout or the provider's).
var errTimeout = errors.New("LLM provider timeout")
