// Command assistant is a chat skill that answers with the gateway's LLM:
// it hands the provider the session's history and the new message, asks
// it to stream, and replies with the completion. Set it as
// sessions.default_skill to make every message without a trigger an LLM
// conversation; "/ask ..." reaches it from any session.
//
// Config: system (the system prompt), model (empty: the gateway's
// default), max_tokens. Grants: llm.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/porticohq/portico/sdk"
)

const defaultSystem = "You are a helpful assistant. Answer briefly."

func ask(in sdk.Input) ([]byte, error) {
	q := sdk.JSON(in.Payload)
	text := q.String("text")
	msgs := sdk.NewArray()
	for _, h := range q.Get("history").Items() {
		role := h.String("role")
		if role != "user" && role != "assistant" {
			continue
		}
		msgs.Object(sdk.NewObject().Str("role", role).Str("content", h.String("text")))
	}
	if err := q.Err(); err != nil || strings.TrimSpace(text) == "" {
		return nil, sdk.BadInput("want a chat message: {\"text\": \"...\", \"history\": [...]}")
	}
	msgs.Object(sdk.NewObject().Str("role", "user").Str("content", text))
	system, ok := sdk.Config("system")
	if !ok || system == "" {
		system = defaultSystem
	}
	req := sdk.NewObject().Str("system", system).Array("messages", msgs).Bool("stream", true)
	if m, ok := sdk.Config("model"); ok && m != "" {
		req.Str("model", m)
	}
	if s, ok := sdk.Config("max_tokens"); ok {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			req.Int("max_tokens", n)
		}
	}
	out, err := sdk.LLM(req.Bytes())
	if errors.Is(err, sdk.ErrDenied) {
		return nil, errors.New("assistant needs the llm capability: add grants = [\"llm\"] to its [[plugins]] table")
	}
	if err != nil {
		return nil, err
	}
	r := sdk.JSON(out)
	reply := r.String("text")
	if r.Err() != nil {
		return nil, errors.New("the LLM answer is not what the gateway documents: " + r.Err().Error())
	}
	return sdk.NewObject().Str("text", reply).Str("model", r.String("model")).Bytes(), nil
}

func init() { sdk.Skill("ask", ask) }

func main() {}
