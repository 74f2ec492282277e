package core_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"
	"github.com/google/jsonschema-go/jsonschema"
)

// a2aConfig names two more agents beside the gateway's own card.
const a2aConfig = sessionsConfig + "[ratelimit.unauthenticated]\nrate = 100000.0\nburst = 100000\n" +
	"[a2a]\nname = \"Portico test\"\npublic_url = \"https://agents.example.com\"\n" +
	"[[a2a.agents]]\nname = \"echoer\"\ndescription = \"Echoes.\"\nskills = [\"echo\"]\n" +
	"[[a2a.agents]]\nname = \"all\"\n"

// TestAgentCardSchema checks the cards against the JSON Schema of A2A
// protocol v0.3.0's AgentCard (testdata/a2a/agent-card-v0.3.0.schema.json,
// transcribed from the A2A specification), validated with
// github.com/google/jsonschema-go.
func TestAgentCardSchema(t *testing.T) {
	t.Parallel()
	g := start(t, a2aConfig)
	b, err := os.ReadFile("../testdata/a2a/agent-card-v0.3.0.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema jsonschema.Schema
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	resolved, err := schema.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	validate := func(t *testing.T, card any) {
		t.Helper()
		if err := resolved.Validate(card); err != nil {
			t.Errorf("card does not validate: %v", err)
		}
	}
	r := do(t, "GET", g.url+"/.well-known/agent-card.json", "")
	if r.status != 200 {
		t.Fatalf("card: %d %s", r.status, r.body)
	}
	var card map[string]any
	json.Unmarshal(r.body, &card)
	validate(t, card)
	if card["url"] != "https://agents.example.com/a2a" || card["name"] != "Portico test" || !strings.Contains(string(r.body), `"id":"echo"`) {
		t.Errorf("card: %s", r.body)
	}
	// The schema is not a rubber stamp: a card without skills fails it.
	delete(card, "skills")
	if resolved.Validate(card) == nil {
		t.Error("a card without skills validates")
	}

	r = do(t, "GET", g.url+"/.well-known/agent-cards", "")
	var list struct{ Agents []map[string]any }
	json.Unmarshal(r.body, &list)
	if r.status != 200 || len(list.Agents) != 3 {
		t.Fatalf("agent cards: %d %s", r.status, r.body)
	}
	for _, c := range list.Agents {
		validate(t, c)
	}
	r = do(t, "GET", g.url+"/.well-known/agent-cards/echoer", "")
	var echoer a2a.AgentCard
	json.Unmarshal(r.body, &echoer)
	if r.status != 200 || echoer.Name != "echoer" || len(echoer.Skills) != 1 || echoer.Skills[0].ID != "echo" {
		t.Errorf("echoer card: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", g.url+"/.well-known/agent-cards/nope", ""); r.status != 404 || r.errCode(t) != "not_found" {
		t.Errorf("unknown agent: %d %s", r.status, r.body)
	}
}

func a2aText(parts a2a.ContentParts) string {
	var b strings.Builder
	for _, p := range parts {
		if tp, ok := p.(a2a.TextPart); ok {
			b.WriteString(tp.Text)
		}
	}
	return b.String()
}

// TestA2ARoundTrip drives POST /a2a with a2a-go's client: message/send
// routed to echo by its trigger and by the default skill, tasks/get, and
// message/stream.
func TestA2ARoundTrip(t *testing.T) {
	t.Parallel()
	g := start(t, a2aConfig)
	alice := userKey(t, g, "alice@example.com", "user")
	bob := userKey(t, g, "bob@example.com", "user")
	ctx := context.Background()
	newClient := func(key string) *a2aclient.Client {
		c, err := a2aclient.NewFromEndpoints(ctx, []a2a.AgentInterface{{URL: g.url + "/a2a", Transport: a2a.TransportProtocolJSONRPC}},
			a2aclient.WithJSONRPCTransport(&http.Client{Transport: keyTransport{key}}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newClient(alice)

	res, err := c.SendMessage(ctx, &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "/echo hi"})})
	if err != nil {
		t.Fatalf("message/send: %v", err)
	}
	task, ok := res.(*a2a.Task)
	if !ok || task.Status.State != a2a.TaskStateCompleted || len(task.Artifacts) != 1 || a2aText(task.Artifacts[0].Parts) != "hi" {
		t.Fatalf("message/send result: %#v", res)
	}
	if task.Status.Message == nil || a2aText(task.Status.Message.Parts) != "hi" || task.Metadata["skill"] != "echo" {
		t.Errorf("status message: %+v %v", task.Status.Message, task.Metadata)
	}

	// The same context continues the session; no trigger: the default skill (echo).
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "plain words"})
	msg.ContextID = task.ContextID
	res, err = c.SendMessage(ctx, &a2a.MessageSendParams{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if t2 := res.(*a2a.Task); t2.ContextID != task.ContextID || a2aText(t2.Artifacts[0].Parts) != "plain words" {
		t.Errorf("second turn: %+v", t2)
	}
	r := do(t, "GET", g.url+"/api/v1/sessions/"+task.ContextID+"/messages", "", "X-API-Key", alice)
	if r.status != 200 || r.json(t)["total"].(float64) != 4 {
		t.Errorf("the context's session: %d %s", r.status, r.body)
	}

	// tasks/get finds the turn again, for its owner only.
	got, err := c.GetTask(ctx, &a2a.TaskQueryParams{ID: task.ID})
	if err != nil || got.Status.State != a2a.TaskStateCompleted || a2aText(got.Artifacts[0].Parts) != "hi" {
		t.Errorf("tasks/get: %v %+v", err, got)
	}
	if _, err := newClient(bob).GetTask(ctx, &a2a.TaskQueryParams{ID: task.ID}); err == nil {
		t.Error("bob read alice's task")
	}

	// message/stream: the task, the reply as it comes, the final status.
	var states []a2a.TaskState
	var streamed strings.Builder
	final := false
	for ev, err := range c.SendStreamingMessage(ctx, &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "/echo streamed"})}) {
		if err != nil {
			t.Fatalf("message/stream: %v", err)
		}
		switch e := ev.(type) {
		case *a2a.Task:
			states = append(states, e.Status.State)
		case *a2a.TaskArtifactUpdateEvent:
			streamed.WriteString(a2aText(e.Artifact.Parts))
		case *a2a.TaskStatusUpdateEvent:
			states = append(states, e.Status.State)
			final = e.Final
		}
	}
	if len(states) != 2 || states[0] != a2a.TaskStateWorking || states[1] != a2a.TaskStateCompleted || !final {
		t.Errorf("stream states %v final %v", states, final)
	}
	if !strings.Contains(streamed.String(), `"text":"streamed"`) {
		t.Errorf("streamed artifact %q", streamed.String())
	}
}

// TestA2ABadInput: malformed JSON-RPC, an unknown method, bad and
// oversized params get JSON-RPC errors; nothing is stored.
func TestA2ABadInput(t *testing.T) {
	t.Parallel()
	g := start(t, sessionsConfig+"[a2a]\nmax_request_bytes = 2048\n")
	alice := userKey(t, g, "alice@example.com", "user")
	big := `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"kind":"message","messageId":"m","role":"user","parts":[{"kind":"text","text":"` + strings.Repeat("x", 4000) + `"}]}}}`
	tests := []struct {
		name   string
		body   string
		status int
		code   int64
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,`, 200, -32700},
		{"not JSON-RPC 2.0", `{"jsonrpc":"1.0","id":1,"method":"message/send"}`, 200, -32600},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"tasks/frobnicate","params":{}}`, 200, -32601},
		{"params of the wrong type", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":[1]}`, 200, -32700},
		{"no message", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{}}`, 200, -32602},
		{"empty text", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"kind":"message","messageId":"m","role":"user","parts":[]}}}`, 200, -32602},
		{"unknown task", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"ses_x~y"}}`, 200, -32001},
		{"oversized params", big, 413, -32600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", g.url+"/a2a", tt.body, "X-API-Key", alice, "Content-Type", "application/json")
			if r.status != tt.status || rpcCode(t, r.body) != tt.code {
				t.Errorf("%d %s; want %d and JSON-RPC error %d", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	r := do(t, "GET", g.url+"/api/v1/sessions", "", "X-API-Key", alice)
	if r.json(t)["total"].(float64) != 0 {
		t.Errorf("bad input stored sessions: %s", r.body)
	}
}
