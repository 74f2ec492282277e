// Package llm is the gateway's access to large language models: the
// providers (any OpenAI-compatible chat completions server, such as OpenAI,
// llama.cpp, vLLM or Ollama, and Anthropic's messages API) live here, in the
// host, never in plugins. Skills reach them through the host API's
// llm_complete function (Service.PluginComplete), which routes a request to
// the provider that lists its model, retries what is worth retrying,
// streams where the provider streams, and records the tokens spent in a
// usage ledger in the store, per API key and per model, with an optional
// per-key token quota.
//
// The rest of the gateway talks to a completion through its context:
// WithAccount names the API key that pays for it, and WithObserver receives
// streamed text (OnDelta) and the token usage of every completion (OnUsage).
package llm

import (
	"context"
	"errors"
	"fmt"
)

// Errors callers decide on with errors.Is.
var (
	// ErrNoProvider: no provider is configured.
	ErrNoProvider = errors.New("no LLM provider is configured in the gateway; add [[llm.providers]] (see docs/llm.md)")
	// ErrUnknownModel: no provider lists the requested model.
	ErrUnknownModel = errors.New("unknown model")
	// ErrModelNotAllowed: the model is outside the calling plugin's llm_models.
	ErrModelNotAllowed = errors.New("model not allowed")
	// ErrBadRequest: the request is not a valid completion request.
	ErrBadRequest = errors.New("bad LLM request")
	// ErrQuotaExceeded: the API key has spent its token quota for the
	// period. (The plugin host turns it into the ABI's -4 for a guest.)
	ErrQuotaExceeded = errors.New("token quota exceeded")
	// ErrUpstream: the provider failed or answered with an error; see
	// *ProviderError for its status.
	ErrUpstream = errors.New("LLM provider error")
)

// ProviderError is a provider's error answer (or a broken reply).
type ProviderError struct {
	Provider string
	Status   int    // HTTP status; 0 for a network error or a broken stream
	Message  string // the provider's message, shortened
}

func (e *ProviderError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("provider %q: %s", e.Provider, e.Message)
	}
	return fmt.Sprintf("provider %q answered %d: %s", e.Provider, e.Status, e.Message)
}

// Unwrap makes every ProviderError an ErrUpstream.
func (e *ProviderError) Unwrap() error { return ErrUpstream }

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"` // system, user or assistant
	Content string `json:"content"`
}

// Request is a completion request: the JSON that llm_complete takes.
type Request struct {
	// Model names a model one provider lists; empty means the default
	// provider's first model.
	Model string `json:"model,omitempty"`
	// System is the system prompt.
	System   string    `json:"system,omitempty"`
	Messages []Message `json:"messages,omitempty"`
	// Prompt is a shorthand for one user message after Messages.
	Prompt      string   `json:"prompt,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	// Stream asks for the reply as it is produced: each piece of text goes
	// to the context's Observer.OnDelta. The Reply is the same either way.
	Stream bool `json:"stream,omitempty"`
}

// Usage is the tokens one completion (or a total) spent.
type Usage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// Total is input plus output tokens.
func (u Usage) Total() int64 { return u.InputTokens + u.OutputTokens }

// Reply is a completion: the JSON that llm_complete answers.
type Reply struct {
	Text     string `json:"text"`
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Usage    Usage  `json:"usage"`
	// FinishReason is why the model stopped: "stop", "length" (max_tokens
	// reached), or the provider's own word for anything else.
	FinishReason string `json:"finish_reason"`
}

// Observer receives what a completion produces as it happens. Both
// callbacks are optional and are called on the goroutine making the
// completion, so they must return quickly (hand the data to a queue).
type Observer struct {
	// OnDelta receives each piece of text of a streamed completion (one
	// whose request set stream), in order.
	OnDelta func(text string)
	// OnUsage receives the token usage of every completion made under the
	// context, streamed or not, once it is known.
	OnUsage func(Usage)
}

type accountKey struct{}
type observerKey struct{}

// WithAccount names the account (the API key id) that completions made
// under ctx are counted against, for the usage ledger and the key quota.
func WithAccount(ctx context.Context, account string) context.Context {
	return context.WithValue(ctx, accountKey{}, account)
}

// AccountFrom returns the account WithAccount set, or "".
func AccountFrom(ctx context.Context) string {
	a, _ := ctx.Value(accountKey{}).(string)
	return a
}

// WithObserver makes o receive the deltas and usage of completions made
// under ctx. An observer set on a context replaces one set on its parent.
func WithObserver(ctx context.Context, o Observer) context.Context {
	return context.WithValue(ctx, observerKey{}, o)
}

func observerFrom(ctx context.Context) Observer {
	o, _ := ctx.Value(observerKey{}).(Observer)
	return o
}
