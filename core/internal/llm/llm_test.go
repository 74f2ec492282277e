package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
)

// mock is a provider server on loopback that records what it receives.
type mock struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

type seen struct {
	path   string
	header http.Header
	body   map[string]any
}

// newMock starts a provider whose handler gets the number of the request
// (0 for the first).
func newMock(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *mock {
	t.Helper()
	m := &mock{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		m.mu.Lock()
		n := len(m.reqs)
		m.reqs = append(m.reqs, seen{r.URL.Path, r.Header.Clone(), body})
		m.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mock) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.reqs)
}

func (m *mock) req(i int) seen {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reqs[i]
}

// sse writes events, flushing each; an event is "data" or "event\ndata".
func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range events {
		if typ, data, ok := strings.Cut(e, "\n"); ok {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
		} else {
			fmt.Fprintf(w, "data: %s\n\n", e)
		}
		w.(http.Flusher).Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, v string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, v)
}

func llmConfig(providers ...config.LLMProvider) config.LLM {
	c := config.Default().LLM
	c.RetryBackoff = config.Duration(time.Millisecond)
	c.Providers = providers
	return c
}

func newService(t testing.TB, c config.LLM, opts Options) (*Service, store.Store) {
	t.Helper()
	st := storetest.Open(t)
	return New(st, c, opts), st
}

const openAIReplyJSON = `{"id":"x","model":"gpt-test-2026","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`

func TestOpenAI(t *testing.T) {
	t.Parallel()
	m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, openAIReplyJSON) })
	c := llmConfig(config.LLMProvider{Name: "oai", Kind: "openai", BaseURL: m.URL + "/v1/", APIKeyEnv: "OAI_KEY", Models: []string{"gpt-test"},
		Headers: []string{"OpenAI-Organization: org-1"}})
	s, _ := newService(t, c, Options{Getenv: func(n string) string { return map[string]string{"OAI_KEY": "sk-env"}[n] }})
	var usage []Usage
	ctx := WithObserver(WithAccount(context.Background(), "key_a"), Observer{
		OnUsage: func(u Usage) { usage = append(usage, u) },
		OnDelta: func(string) { t.Error("a request without stream must not send deltas") },
	})
	temp := 0.5
	reply, err := s.Complete(ctx, Request{System: "Be brief.", Messages: []Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}},
		Prompt: "Greet me.", MaxTokens: 50, Temperature: &temp})
	if err != nil {
		t.Fatal(err)
	}
	want := Reply{Text: "Hello there.", Model: "gpt-test", Provider: "oai", Usage: Usage{12, 3}, FinishReason: "stop"}
	if reply != want {
		t.Errorf("reply = %+v, want %+v", reply, want)
	}
	got := m.req(0)
	if got.path != "/v1/chat/completions" || got.header.Get("Authorization") != "Bearer sk-env" || got.header.Get("OpenAI-Organization") != "org-1" {
		t.Errorf("request: %s %v", got.path, got.header)
	}
	b, _ := json.Marshal(got.body)
	wantBody := `{"max_tokens":50,"messages":[{"content":"Be brief.","role":"system"},{"content":"Hi","role":"user"},{"content":"Hello","role":"assistant"},{"content":"Greet me.","role":"user"}],"model":"gpt-test","temperature":0.5}`
	if string(b) != wantBody {
		t.Errorf("body:\n%s\nwant\n%s", b, wantBody)
	}
	if !slices.Equal(usage, []Usage{{12, 3}}) {
		t.Errorf("OnUsage got %v", usage)
	}
	rep, err := s.Usage(context.Background(), Query{Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals != (Totals{12, 3, 1}) || len(rep.ByKey) != 1 || rep.ByKey[0].KeyID != "key_a" || rep.ByModel[0].Model != "gpt-test" {
		t.Errorf("usage: %+v", rep)
	}
}

func TestOpenAIStream(t *testing.T) {
	t.Parallel()
	chunks := []string{"Hel", "lo", " world"}
	got := make(chan string, len(chunks)) // buffered: a caller that gets the deltas late must not block
	m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		sse(w, `{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`)
		for _, c := range chunks {
			sse(w, `{"choices":[{"index":0,"delta":{"content":`+strconvQuote(c)+`},"finish_reason":null}],"usage":null}`)
			// The next chunk goes only once the caller saw this one: the
			// deltas reach it while the stream is still open.
			select {
			case d := <-got:
				if d != c {
					t.Errorf("caller got %q, the mock sent %q", d, c)
				}
			case <-r.Context().Done():
				t.Error("the caller gave up without seeing the delta")
				return
			case <-time.After(10 * time.Second): // a hang guard, not a speed check
				t.Error("the delta did not reach the caller while the stream was open")
				return
			}
		}
		sse(w, `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
			`{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}`, `[DONE]`)
	})
	s, _ := newService(t, llmConfig(config.LLMProvider{Name: "local", Kind: "openai", BaseURL: m.URL + "/v1", Models: []string{"llama"}}), Options{})
	var deltas []string
	var usage Usage
	ctx := WithObserver(context.Background(), Observer{OnDelta: func(d string) { deltas = append(deltas, d); got <- d }, OnUsage: func(u Usage) { usage = u }})
	reply, err := s.Complete(ctx, Request{Prompt: "hi", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deltas, chunks) || reply.Text != "Hello world" || reply.FinishReason != "stop" || reply.Usage != (Usage{7, 3}) || usage != (Usage{7, 3}) {
		t.Errorf("deltas %q, reply %+v, usage %v", deltas, reply, usage)
	}
	body := m.req(0).body
	if body["stream"] != true || body["stream_options"].(map[string]any)["include_usage"] != true || m.req(0).header.Get("Authorization") != "" {
		t.Errorf("stream request: %v %v", body, m.req(0).header)
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestAnthropic(t *testing.T) {
	t.Parallel()
	m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Header.Get("Accept") == "text/event-stream" {
			sse(w, "message_start\n"+`{"type":"message_start","message":{"id":"m","model":"claude-test","content":[],"usage":{"input_tokens":25,"output_tokens":1}}}`,
				"content_block_start\n"+`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
				"ping\n"+`{"type":"ping"}`,
				"content_block_delta\n"+`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bon"}}`,
				"content_block_delta\n"+`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"jour"}}`,
				"content_block_stop\n"+`{"type":"content_block_stop","index":0}`,
				"message_delta\n"+`{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":9}}`,
				"message_stop\n"+`{"type":"message_stop"}`)
			return
		}
		writeJSON(w, 200, `{"id":"m","type":"message","role":"assistant","model":"claude-test","content":[{"type":"text","text":"Bonjour."}],"stop_reason":"end_turn","usage":{"input_tokens":20,"output_tokens":4}}`)
	})
	c := llmConfig(config.LLMProvider{Name: "claude", Kind: "anthropic", BaseURL: m.URL + "/v1", APIKey: "sk-ant", Models: []string{"claude-test"}})
	c.DefaultMaxTokens = 77
	s, _ := newService(t, c, Options{})
	ctx := WithAccount(context.Background(), "key_b")

	reply, err := s.Complete(ctx, Request{Messages: []Message{{Role: "system", Content: "Speak French."}, {Role: "user", Content: "Hello"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Reply{Text: "Bonjour.", Model: "claude-test", Provider: "claude", Usage: Usage{20, 4}, FinishReason: "stop"}); reply != want {
		t.Errorf("reply = %+v", reply)
	}
	r := m.req(0)
	if r.path != "/v1/messages" || r.header.Get("x-api-key") != "sk-ant" || r.header.Get("anthropic-version") != anthropicVersion || r.header.Get("Authorization") != "" {
		t.Errorf("request: %s %v", r.path, r.header)
	}
	b, _ := json.Marshal(r.body)
	if want := `{"max_tokens":77,"messages":[{"content":"Hello","role":"user"}],"model":"claude-test","system":"Speak French."}`; string(b) != want {
		t.Errorf("body %s, want %s", b, want)
	}

	var deltas []string
	ctx = WithObserver(ctx, Observer{OnDelta: func(d string) { deltas = append(deltas, d) }})
	reply, err = s.Complete(ctx, Request{Prompt: "Hello", Stream: true, MaxTokens: 9})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Reply{Text: "Bonjour", Model: "claude-test", Provider: "claude", Usage: Usage{25, 9}, FinishReason: "length"}); reply != want || !slices.Equal(deltas, []string{"Bon", "jour"}) {
		t.Errorf("streamed reply = %+v, deltas %q", reply, deltas)
	}
	if m.req(1).body["max_tokens"] != 9.0 || m.req(1).body["stream"] != true {
		t.Errorf("stream body: %v", m.req(1).body)
	}
	rep, _ := s.Usage(context.Background(), Query{Days: 30, Accounts: []string{"key_b"}})
	if rep.Totals != (Totals{45, 13, 2}) {
		t.Errorf("usage: %+v", rep.Totals)
	}
}

func TestStreamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, kind string
		events     []string
		want       string
	}{
		{"openai error chunk", "openai", []string{`{"choices":[{"delta":{"content":"a"}}]}`, `{"error":{"message":"model overloaded"}}`}, "model overloaded"},
		{"openai cut off", "openai", []string{`{"choices":[{"delta":{"content":"a"}}]}`}, "ended before"},
		{"openai garbage", "openai", []string{`{not json`}, "unreadable stream chunk"},
		{"anthropic error event", "anthropic", []string{"error\n" + `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}, "overloaded_error: Overloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) { sse(w, tt.events...) })
			c := llmConfig(config.LLMProvider{Name: "p", Kind: tt.kind, BaseURL: m.URL, Models: []string{"m"}})
			s, _ := newService(t, c, Options{})
			_, err := s.Complete(context.Background(), Request{Prompt: "x", Stream: true})
			var pe *ProviderError
			if !errors.As(err, &pe) || !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a provider error with %q", err, tt.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter) { writeJSON(w, 200, openAIReplyJSON) }
	hangUp := func(w http.ResponseWriter) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}
	tests := []struct {
		name     string
		retries  int64
		timeout  time.Duration
		answers  []func(w http.ResponseWriter) // per request; the last repeats
		calls    int
		wantErr  string
		wantCode int
	}{
		{name: "500 then success", retries: 2, answers: []func(http.ResponseWriter){func(w http.ResponseWriter) { writeJSON(w, 500, `{"error":{"message":"boom"}}`) }, ok}, calls: 2},
		{name: "429 twice then success", retries: 2, answers: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { writeJSON(w, 429, `{"error":{"message":"slow down"}}`) },
			func(w http.ResponseWriter) { writeJSON(w, 503, `upstream busy`) }, ok}, calls: 3},
		{name: "network error then success", retries: 1, answers: []func(http.ResponseWriter){hangUp, ok}, calls: 2},
		{name: "500 past max_retries", retries: 2, answers: []func(http.ResponseWriter){func(w http.ResponseWriter) { writeJSON(w, 502, `bad gateway`) }},
			calls: 3, wantErr: "after 2 retries", wantCode: 502},
		{name: "no retries configured", retries: 0, answers: []func(http.ResponseWriter){func(w http.ResponseWriter) { writeJSON(w, 500, `{}`) }}, calls: 1, wantCode: 500},
		{name: "400 is not retried", retries: 3, answers: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			writeJSON(w, 400, `{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}`)
		}}, calls: 1, wantErr: "max_tokens is too large", wantCode: 400},
		{name: "401 is not retried", retries: 3, answers: []func(http.ResponseWriter){func(w http.ResponseWriter) { writeJSON(w, 401, `{"error":{"message":"bad key"}}`) }},
			calls: 1, wantErr: "bad key", wantCode: 401},
		{name: "Retry-After past the deadline fails at once", retries: 3, timeout: 5 * time.Second, answers: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3600")
			writeJSON(w, 429, `{"error":{"message":"quota"}}`)
		}}, calls: 1, wantErr: "would pass the deadline", wantCode: 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMock(t, func(w http.ResponseWriter, r *http.Request, n int) { tt.answers[min(n, len(tt.answers)-1)](w) })
			c := llmConfig(config.LLMProvider{Name: "p", Kind: "openai", BaseURL: m.URL, Models: []string{"m"}})
			c.MaxRetries = tt.retries
			if tt.timeout > 0 {
				c.Timeout = config.Duration(tt.timeout)
			}
			s, _ := newService(t, c, Options{})
			reply, err := s.Complete(context.Background(), Request{Prompt: "x"})
			if m.count() != tt.calls {
				t.Errorf("%d calls, want %d", m.count(), tt.calls)
			}
			if tt.wantCode == 0 {
				if err != nil || reply.Text != "Hello there." {
					t.Errorf("reply %+v, err %v", reply, err)
				}
				return
			}
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.Status != tt.wantCode || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want status %d and %q", err, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, " 10 ": 10 * time.Second, "-1": 0, "soon": 0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0} {
		if got := retryAfter(in); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
	if got := retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); got < 58*time.Minute || got > time.Hour {
		t.Errorf("an HTTP date an hour ahead gives %s", got)
	}
}

// blocker is a provider that never answers and reports when the caller's
// side of the request ends.
func blocker(t *testing.T, stream bool) (*mock, <-chan struct{}, <-chan struct{}) {
	arrived, gone := make(chan struct{}, 1), make(chan struct{}, 1)
	m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if stream {
			sse(w, `{"choices":[{"delta":{"content":"first"}}]}`)
		}
		arrived <- struct{}{}
		<-r.Context().Done()
		gone <- struct{}{}
	})
	return m, arrived, gone
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	m, _, gone := blocker(t, false)
	c := llmConfig(config.LLMProvider{Name: "slow", Kind: "openai", BaseURL: m.URL, Models: []string{"m"}, Timeout: config.Duration(50 * time.Millisecond)})
	s, _ := newService(t, c, Options{})
	_, err := s.Complete(context.Background(), Request{Prompt: "x"})
	if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "within 50ms") {
		t.Errorf("err = %v", err)
	}
	<-gone // the upstream request was cut off
	if m.count() != 1 {
		t.Errorf("a timed-out call was retried: %d calls", m.count())
	}
}

func TestCancellationReachesUpstream(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			t.Parallel()
			m, arrived, gone := blocker(t, stream)
			s, _ := newService(t, llmConfig(config.LLMProvider{Name: "p", Kind: "openai", BaseURL: m.URL, Models: []string{"m"}}), Options{})
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-arrived; cancel() }() // the client goes away mid-call
			_, err := s.Complete(ctx, Request{Prompt: "x", Stream: stream})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			<-gone
		})
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	answer := func(name string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			writeJSON(w, 200, `{"choices":[{"message":{"content":"`+name+`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
		}
	}
	a, b := newMock(t, answer("a")), newMock(t, answer("b"))
	c := llmConfig(config.LLMProvider{Name: "a", Kind: "openai", BaseURL: a.URL, Models: []string{"a1", "a2"}},
		config.LLMProvider{Name: "b", Kind: "openai", BaseURL: b.URL, Models: []string{"b1", "vendor/b2"}})
	s, _ := newService(t, c, Options{})
	ctx := context.Background()
	tests := []struct {
		name, model string
		allowed     []string
		defaultProv string
		provider    string // "" means an error
		wantModel   string
		err         error
	}{
		{name: "model of the first", model: "a2", provider: "a", wantModel: "a2"},
		{name: "model of the second", model: "vendor/b2", provider: "b", wantModel: "vendor/b2"},
		{name: "no model: first provider's first", provider: "a", wantModel: "a1"},
		{name: "no model: default provider's first", defaultProv: "b", provider: "b", wantModel: "b1"},
		{name: "unknown model", model: "gpt-9", err: ErrUnknownModel},
		{name: "allowed", model: "b1", allowed: []string{"b1"}, provider: "b", wantModel: "b1"},
		{name: "outside the allow-list", model: "a1", allowed: []string{"b1"}, err: ErrModelNotAllowed},
		{name: "no model: the allow-list's first", allowed: []string{"vendor/b2", "a1"}, provider: "b", wantModel: "vendor/b2"},
		{name: "allow-list names an unknown model", allowed: []string{"ghost"}, err: ErrUnknownModel},
	}
	for _, tt := range tests {
		cc := c
		cc.DefaultProvider = tt.defaultProv
		s.applyLLM(cc)
		req, _ := json.Marshal(Request{Model: tt.model, Prompt: "hi"})
		out, err := s.PluginComplete(ctx, "asker", tt.allowed, req)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
			}
			continue
		}
		var r Reply
		if err != nil || json.Unmarshal(out, &r) != nil || r.Provider != tt.provider || r.Text != tt.provider || r.Model != tt.wantModel {
			t.Errorf("%s: %s %v", tt.name, out, err)
		}
	}
	_, err := s.PluginComplete(ctx, "asker", []string{"b1"}, []byte(`{"model":"a1","prompt":"x"}`))
	if err == nil || !strings.Contains(err.Error(), `plugin "asker" may use only b1`) {
		t.Errorf("allow-list message: %v", err)
	}
	if _, err := s.Complete(ctx, Request{Model: "nope", Prompt: "x"}); err == nil || !strings.Contains(err.Error(), "a1, a2, b1, vendor/b2") {
		t.Errorf("unknown model message: %v", err)
	}
	s.applyLLM(llmConfig())
	if _, err := s.Complete(ctx, Request{Prompt: "x"}); !errors.Is(err, ErrNoProvider) {
		t.Errorf("no providers: %v", err)
	}
}

func TestPluginRequests(t *testing.T) {
	t.Parallel()
	m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, openAIReplyJSON) })
	s, _ := newService(t, llmConfig(config.LLMProvider{Name: "p", Kind: "openai", BaseURL: m.URL, Models: []string{"m"}}), Options{})
	tests := []struct {
		name, req string
		err       string // "" for success
	}{
		{"summarize's prompt", `{"prompt":"Summarize in at most 280 characters:\n\nText."}`, ""},
		{"full", `{"model":"m","system":"s","messages":[{"role":"user","content":"a"}],"max_tokens":5,"temperature":0,"stream":false}`, ""},
		{"unknown field", `{"prompt":"x","top_k":3}`, "unknown field"},
		{"not JSON", `prompt`, "bad LLM request"},
		{"nothing to say", `{"model":"m"}`, "give \"messages\" or a \"prompt\""},
		{"bad role", `{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].role"},
		{"negative max_tokens", `{"prompt":"x","max_tokens":-1}`, "max_tokens"},
		{"hot temperature", `{"prompt":"x","temperature":3}`, "temperature"},
	}
	for _, tt := range tests {
		out, err := s.PluginComplete(context.Background(), "summarize", nil, []byte(tt.req))
		if tt.err == "" {
			var r Reply
			if err != nil || json.Unmarshal(out, &r) != nil || r.Text != "Hello there." || r.Usage.OutputTokens != 3 {
				t.Errorf("%s: %s %v", tt.name, out, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
		}
	}
	if m.count() != 2 {
		t.Errorf("bad requests reached the provider: %d calls", m.count())
	}
	// The reply's JSON shape is the ABI's.
	out, _ := s.PluginComplete(context.Background(), "summarize", nil, []byte(`{"prompt":"x"}`))
	var shape map[string]any
	json.Unmarshal(out, &shape)
	if u, ok := shape["usage"].(map[string]any); len(shape) != 5 || shape["text"] == nil || shape["finish_reason"] != "stop" || !ok || u["input_tokens"] != 12.0 {
		t.Errorf("reply JSON: %s", out)
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestQuota(t *testing.T) {
	t.Parallel()
	m := newMock(t, func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, openAIReplyJSON) }) // 15 tokens each
	c := llmConfig(config.LLMProvider{Name: "p", Kind: "openai", BaseURL: m.URL, Models: []string{"m"}})
	c.KeyQuotaTokens = 40
	c.QuotaPeriod = config.Duration(2 * 24 * time.Hour)
	clk := &clock{t: time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)}
	s, st := newService(t, c, Options{Now: clk.now})
	alice, bob := WithAccount(context.Background(), "key_alice"), WithAccount(context.Background(), "key_bob")
	complete := func(ctx context.Context) error {
		_, err := s.Complete(ctx, Request{Prompt: "x"})
		return err
	}
	for i := range 3 { // 0, 15, 30 spent before each: all under 40
		if err := complete(alice); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	calls := m.count()
	err := complete(alice)
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "spent 45 of its 40 tokens") {
		t.Errorf("over quota: %v", err)
	}
	if m.count() != calls {
		t.Error("a call over the quota reached the provider")
	}
	if err := s.CheckQuota(context.Background(), "key_alice"); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("CheckQuota: %v", err)
	}
	if err := complete(bob); err != nil {
		t.Errorf("another key: %v", err)
	}
	if err := complete(context.Background()); err != nil {
		t.Errorf("no account, no quota: %v", err)
	}

	// A restarted gateway loads the spent tokens from the store.
	s2 := New(st, c, Options{Now: clk.now})
	if err := s2.CheckQuota(context.Background(), "key_alice"); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("after a restart: %v", err)
	}
	// The next day the spending is still inside the 2-day window; the day
	// after, it has left it.
	clk.add(24 * time.Hour)
	if err := s2.CheckQuota(context.Background(), "key_alice"); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("a day later: %v", err)
	}
	clk.add(24 * time.Hour)
	if err := s2.CheckQuota(context.Background(), "key_alice"); err != nil {
		t.Errorf("two days later: %v", err)
	}
	// Raising the quota applies at once; 0 turns it off.
	c.KeyQuotaTokens = 0
	s.applyLLM(c)
	if err := complete(alice); err != nil {
		t.Errorf("quota off: %v", err)
	}
}

func TestUsageReport(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	s, _ := newService(t, llmConfig(), Options{Now: clk.now})
	ctx := context.Background()
	rec := func(account, model string, in, out int64) {
		if err := s.ledger.record(ctx, account, model, Usage{in, out}); err != nil {
			t.Fatal(err)
		}
	}
	rec("key_a", "gpt", 100, 10) // 2026-03-10 minus 40 days below
	clk.add(-40 * 24 * time.Hour)
	rec("key_a", "gpt", 1000, 1000)
	clk.add(40 * 24 * time.Hour)
	clk.add(-6 * 24 * time.Hour)
	rec("key_b", "vendor/claude", 5, 5)
	clk.add(6 * 24 * time.Hour)
	rec("key_a", "vendor/claude", 1, 1)
	rec("", "gpt", 2, 2)

	tests := []struct {
		name     string
		q        Query
		totals   Totals
		keys     []string
		models   []string
		sinceDay string
	}{
		{"today", Query{Days: 1}, Totals{103, 13, 3}, []string{"key_a", ""}, []string{"gpt", "vendor/claude"}, "2026-03-10"},
		{"7 days", Query{Days: 7}, Totals{108, 18, 4}, []string{"key_a", "key_b", ""}, []string{"gpt", "vendor/claude"}, "2026-03-04"},
		{"60 days", Query{Days: 60}, Totals{1108, 1018, 5}, []string{"key_a", "key_b", ""}, []string{"gpt", "vendor/claude"}, "2026-01-10"},
		{"one key", Query{Days: 7, Accounts: []string{"key_b"}}, Totals{5, 5, 1}, []string{"key_b"}, []string{"vendor/claude"}, "2026-03-04"},
		{"two keys, one twice", Query{Days: 7, Accounts: []string{"key_b", "key_a", "key_b"}}, Totals{106, 16, 3}, []string{"key_a", "key_b"}, []string{"gpt", "vendor/claude"}, "2026-03-04"},
		{"no keys", Query{Days: 7, Accounts: []string{}}, Totals{}, []string{}, []string{}, "2026-03-04"},
	}
	for _, tt := range tests {
		rep, err := s.Usage(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var keys, models []string
		for _, k := range rep.ByKey {
			keys = append(keys, k.KeyID)
		}
		for _, m := range rep.ByModel {
			models = append(models, m.Model)
		}
		if rep.Totals != tt.totals || !slices.Equal(keys, tt.keys) && len(keys)+len(tt.keys) > 0 || !slices.Equal(models, tt.models) && len(models)+len(tt.models) > 0 ||
			rep.Since.Format(dayFormat) != tt.sinceDay {
			t.Errorf("%s: %+v", tt.name, rep)
		}
	}
	if _, err := s.Usage(ctx, Query{Days: 0}); err == nil {
		t.Error("a zero period was accepted")
	}
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		days int
		err  bool
	}{
		{"30d", 30, false}, {"7d", 7, false}, {"24h", 1, false}, {"25h", 2, false}, {"90m", 1, false}, {"1", 1, false}, {" 14 ", 14, false},
		{"3660d", 3660, false},
		{"", 0, true}, {"0d", 0, true}, {"-3d", 0, true}, {"0", 0, true}, {"-1h", 0, true}, {"1.5d", 0, true}, {"week", 0, true}, {"3661d", 0, true}, {"d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePeriod(tt.in)
		if (err != nil) != tt.err || got != tt.days {
			t.Errorf("ParsePeriod(%q) = %d, %v", tt.in, got, err)
		}
	}
}

// TestLedgerConcurrentRecords: completions recorded at once for one key
// and model all count, on every backend.
func TestLedgerConcurrentRecords(t *testing.T) {
	s, _ := newService(t, config.LLM{}, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if err := s.ledger.record(ctx, "key_a", "m", Usage{InputTokens: 2, OutputTokens: 3}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rep, err := s.Usage(ctx, Query{Days: 1})
	if err != nil || rep.Totals != (Totals{InputTokens: 400, OutputTokens: 600, Requests: 200}) || len(rep.ByKey) != 1 || len(rep.ByModel) != 1 {
		t.Fatalf("usage after 200 concurrent records: %+v, %v", rep, err)
	}
}
