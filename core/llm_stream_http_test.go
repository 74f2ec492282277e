package core_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLLMStreamsToWebSocket: the assistant skill asks a mock
// OpenAI-compatible provider to stream; a WebSocket client receives the
// deltas chunk by chunk, the reply is their concatenation, and the
// session's token_usage is what the mock reported.
func TestLLMStreamsToWebSocket(t *testing.T) {
	t.Parallel()
	deltas := []string{"Oslo", " is", " the", " capital", "."}
	gate := make(chan struct{}) // the mock waits for the client's first chunk before the rest
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"stream":true`) || !strings.Contains(string(body), "Capital of Norway?") {
			http.Error(w, "unexpected request: "+string(body), 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		flush := w.(http.Flusher).Flush
		for i, d := range deltas {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", d)
			flush()
			if i == 0 {
				select {
				case <-gate:
				case <-time.After(10 * time.Second):
				}
			}
		}
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":5}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
		flush()
	}))
	defer provider.Close()
	g := start(t, sessionsConfig+`
[[llm.providers]]
name = "mock"
kind = "openai"
base_url = "`+provider.URL+`/v1"
models = ["mock-1"]

[[plugins]]
name = "assistant"
grants = ["llm"]
`)
	ws := wsDial(t, g, g.key)
	wsSend(t, ws, `{"type":"chat","id":"c1","text":"/ask Capital of Norway?"}`)
	var chunks []string
	var reply frame
	for reply.Type == "" {
		switch f := wsRead(t, ws); f.Type {
		case "chunk":
			if len(chunks) == 0 {
				close(gate) // the first delta arrived before the provider sent the rest
			}
			chunks = append(chunks, f.Text)
		case "reply":
			reply = f
		default:
			t.Fatalf("frame %+v", f)
		}
	}
	if strings.Join(chunks, "|") != strings.Join(deltas, "|") {
		t.Errorf("chunks %q, want the deltas %q", chunks, deltas)
	}
	if !strings.Contains(string(reply.Turn), `"text":"Oslo is the capital."`) {
		t.Errorf("reply: %s", reply.Turn)
	}
	r := g.do(t, "GET", g.url+"/api/v1/sessions/"+reply.SessionID, "")
	if get(r.json(t), "token_usage.input") != 21.0 || get(r.json(t), "token_usage.output") != 5.0 {
		t.Errorf("token usage: %s", r.body)
	}
	r = g.do(t, "GET", g.url+"/api/v1/usage?period=1d", "")
	if get(r.json(t), "totals.input_tokens") != 21.0 {
		t.Errorf("usage: %s", r.body)
	}
}
