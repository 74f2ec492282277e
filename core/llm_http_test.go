package core_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// mockOpenAI is an OpenAI-compatible provider on loopback: every call
// spends 12 input and 3 output tokens and answers "mock summary".
type mockOpenAI struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
	auth  []string
	model []string
}

func newMockOpenAI(t *testing.T) *mockOpenAI {
	m := &mockOpenAI{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model string `json:"model"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		m.mu.Lock()
		m.calls++
		m.auth = append(m.auth, r.Header.Get("Authorization"))
		m.model = append(m.model, body.Model)
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"mock summary"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3}}`)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mockOpenAI) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// llmOutput reads the llm fixture's reply: the result code (4 bytes) and
// the result; the invoke API shows that non-JSON output as a string.
func llmOutput(t *testing.T, r response) string {
	t.Helper()
	out, ok := r.json(t)["output"].(string)
	if r.status != 200 || !ok || len(out) < 4 {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	return out[4:]
}

func TestLLMOverHTTP(t *testing.T) {
	t.Parallel()
	mock := newMockOpenAI(t)
	dir := filepath.Join(t.TempDir(), "asker")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"asker\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n"+
		"[[skills]]\nname = \"ask\"\ndescription = \"asks the LLM\"\n[capabilities]\noptional = [\"llm\"]\n"), 0o600)
	wasm, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", "llm.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "asker.wasm"), wasm, 0o600)
	// strict fails when the host refuses it a completion, as an SDK skill
	// returning the error does.
	strict := filepath.Join(t.TempDir(), "strict")
	os.MkdirAll(strict, 0o700)
	os.WriteFile(filepath.Join(strict, "plugin.toml"), []byte("name = \"strict\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n"+
		"[[skills]]\nname = \"ask_strict\"\ndescription = \"asks the LLM, fails when refused\"\n[capabilities]\noptional = [\"llm\"]\n"), 0o600)
	if wasm, err = os.ReadFile(filepath.Join("..", "testdata", "wasm", "llmstrict.wasm")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(strict, "strict.wasm"), wasm, 0o600)
	// The test gateway's environment holds PORTICO_ADMIN_KEY, so naming it
	// as the provider's api_key_env shows the key comes from there.
	g := start(t, small+"[llm]\nkey_quota_tokens = 40\nretry_backoff = \"1ms\"\n"+
		"[[llm.providers]]\nname = \"mock\"\nkind = \"openai\"\nbase_url = \""+mock.URL+"/v1\"\napi_key_env = \"PORTICO_ADMIN_KEY\"\nmodels = [\"m1\", \"m2\"]\n"+
		"[[plugins]]\nname = \"asker\"\npath = \""+dir+"\"\ngrants = [\"llm\"]\nllm_models = [\"m1\"]\n"+
		"[[plugins]]\nname = \"strict\"\npath = \""+strict+"\"\ngrants = [\"llm\"]\n"+
		"[[plugins]]\nname = \"summarize\"\ngrants = [\"llm\"]\ncall_timeout = \"30s\"\n")

	// Each key belongs to a user of its own: a user sees the usage of its
	// user's keys.
	newKey := func(role string) (id, secret string) {
		r := g.do(t, "POST", g.url+"/api/v1/users", `{"email":"`+role+`@example.com","name":"`+role+`","role":"`+role+`"}`)
		if r.status != 201 {
			t.Fatalf("create user: %d %s", r.status, r.body)
		}
		r = g.do(t, "POST", g.url+"/api/v1/users/"+r.json(t)["id"].(string)+"/keys", `{"name":"`+role+`","role":"`+role+`"}`)
		if r.status != 201 {
			t.Fatalf("create key: %d %s", r.status, r.body)
		}
		m := r.json(t)
		return get(m, "key.id").(string), m["secret"].(string)
	}
	userID, user := newKey("user")
	opID, op := newKey("operator")
	ask := func(key, input string) response {
		return do(t, "POST", g.url+"/api/v1/skills/ask/invoke", `{"input":`+input+`}`, "X-API-Key", key)
	}

	// The plugin reaches the provider; the gateway's key goes upstream, the
	// plugin never sees it.
	out := llmOutput(t, ask(user, `{"prompt":"hi"}`))
	var reply map[string]any
	if err := json.Unmarshal([]byte(out), &reply); err != nil || reply["text"] != "mock summary" || reply["model"] != "m1" || reply["provider"] != "mock" ||
		get(reply, "usage.input_tokens") != 12.0 || reply["finish_reason"] != "stop" {
		t.Fatalf("llm reply: %q", out)
	}
	mock.mu.Lock()
	if mock.auth[0] != "Bearer "+g.key || mock.model[0] != "m1" || strings.Contains(out, g.key) {
		t.Errorf("upstream auth %q, model %q", mock.auth[0], mock.model[0])
	}
	mock.mu.Unlock()
	// Outside the plugin's llm_models: refused, nothing sent upstream.
	if out := llmOutput(t, ask(user, `{"model":"m2","prompt":"hi"}`)); !strings.Contains(out, `plugin "asker" may use only m1`) {
		t.Errorf("model outside the allow-list: %q", out)
	}
	if out := llmOutput(t, ask(user, `{"model":"gpt-9","prompt":"hi"}`)); !strings.Contains(out, `unknown model "gpt-9"`) {
		t.Errorf("unknown model: %q", out)
	}
	// The embedded summarize plugin's request shape is accepted.
	r := do(t, "POST", g.url+"/api/v1/skills/summarize/invoke", `{"input":{"text":"A long text. With sentences."}}`, "X-API-Key", op)
	if r.status != 200 || get(r.json(t), "output.method") != "llm" || get(r.json(t), "output.summary") != "mock summary" {
		t.Errorf("summarize: %d %s", r.status, r.body)
	}

	// 15 tokens a call against a quota of 40: the third call starts at 30
	// and passes, the fourth is refused inside the call (the handler checks
	// nothing first): a skill that fails on the refusal answers the caller
	// 429 quota_exceeded...
	llmOutput(t, ask(user, `{"prompt":"2"}`))
	llmOutput(t, ask(user, `{"prompt":"3"}`))
	calls := mock.count()
	r = do(t, "POST", g.url+"/api/v1/skills/ask_strict/invoke", `{"input":{"prompt":"4"}}`, "X-API-Key", user)
	if r.status != 429 || r.errCode(t) != "quota_exceeded" || get(r.json(t), "error.details.kind") != "quota" || !strings.Contains(string(r.body), "spent 45 of its 40 tokens") {
		t.Errorf("over the quota, a skill that fails on the refusal: %d %s", r.status, r.body)
	}
	// ...and a skill that carries on gets -4 and decides its answer itself.
	r = ask(user, `{"prompt":"4"}`)
	if r.status != 200 || !strings.Contains(string(r.body), "spent 45 of its 40 tokens") {
		t.Errorf("over the quota, a skill that carries on: %d %s", r.status, r.body)
	}
	if mock.count() != calls {
		t.Error("a call over the quota reached the provider")
	}
	// Other keys, and skills that do not use the LLM, are not affected.
	if r := do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":1}`, "X-API-Key", user); r.status != 200 {
		t.Errorf("echo for a spent key: %d %s", r.status, r.body)
	}
	llmOutput(t, ask(op, `{"prompt":"op"}`))

	// Usage: a user sees its own key, operators see all or one key.
	usage := func(key, query string) response {
		return do(t, "GET", g.url+"/api/v1/usage"+query, "", "X-API-Key", key)
	}
	r = usage(user, "?period=7d")
	u := r.json(t)
	if r.status != 200 || u["period"] != "7d" || u["since"] == nil || get(u, "totals.input_tokens") != 36.0 || get(u, "totals.output_tokens") != 9.0 ||
		get(u, "totals.requests") != 3.0 || len(u["by_key"].([]any)) != 1 || len(u["by_model"].([]any)) != 1 {
		t.Errorf("user's usage: %d %s", r.status, r.body)
	}
	if k := u["by_key"].([]any)[0].(map[string]any); k["key_id"] != userID || k["input_tokens"] != 36.0 {
		t.Errorf("user's by_key: %v", k)
	}
	r = usage(op, "")
	if u := r.json(t); r.status != 200 || u["period"] != "30d" || get(u, "totals.requests") != 5.0 || len(u["by_key"].([]any)) != 2 {
		t.Errorf("operator's usage: %d %s", r.status, r.body)
	}
	if u := usage(g.key, "?period=24h&key_id="+opID).json(t); get(u, "totals.requests") != 2.0 {
		t.Errorf("admin's usage of one key: %v", u)
	}
	if r := usage(user, "?key_id="+opID); r.status != 403 || r.errCode(t) != "forbidden" {
		t.Errorf("user asking for another key: %d %s", r.status, r.body)
	}
	if r := usage(user, "?key_id="+userID); r.status != 200 || get(r.json(t), "totals.requests") != 3.0 {
		t.Errorf("user asking for its own key: %d %s", r.status, r.body)
	}
	for _, p := range []string{"0d", "week", "-1h", "99999d"} {
		if r := usage(op, "?period="+p); r.status != 400 || r.errCode(t) != "bad_request" {
			t.Errorf("period %q: %d %s", p, r.status, r.body)
		}
	}
	if r := do(t, "GET", g.url+"/api/v1/usage", ""); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}

	// The config is live: lifting the quota lets the key call again.
	if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"llm.key_quota_tokens":0}`); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	llmOutput(t, ask(user, `{"prompt":"5"}`))
}
