package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// anthropicVersion is the API version Portico speaks.
const anthropicVersion = "2023-06-01"

// anthropic is Anthropic's messages API (POST {base_url}/messages).
type anthropic struct{}

type anthropicRequest struct {
	Model       string    `json:"model"`
	System      string    `json:"system,omitempty"`
	Messages    []Message `json:"messages"`
	MaxTokens   int       `json:"max_tokens"`
	Temperature *float64  `json:"temperature,omitempty"`
	Stream      bool      `json:"stream,omitempty"`
}

type anthropicUsage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

type anthropicMessage struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      *anthropicUsage `json:"usage"`
}

func (anthropic) body(req Request, model string, st *settings) ([]byte, error) {
	// The API takes the system prompt apart from the turns.
	system := []string{}
	if req.System != "" {
		system = append(system, req.System)
	}
	msgs := make([]Message, 0, len(req.Messages))
	for _, m := range req.Messages {
		if m.Role == "system" {
			system = append(system, m.Content)
			continue
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: the messages API needs at least one user or assistant message", ErrBadRequest)
	}
	r := anthropicRequest{Model: model, System: strings.Join(system, "\n\n"), Messages: msgs, MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, Stream: req.Stream}
	if r.MaxTokens == 0 {
		r.MaxTokens = st.maxTokens // required by this API
	}
	return json.Marshal(r)
}

func (anthropic) auth(h http.Header, key string) {
	if key != "" {
		h.Set("x-api-key", key)
	}
	if h.Get("anthropic-version") == "" {
		h.Set("anthropic-version", anthropicVersion)
	}
}

// finishReason maps Anthropic's stop reasons to the OpenAI words the reply
// uses: end_turn and stop_sequence are "stop", max_tokens is "length".
func finishReason(s string) string {
	switch s {
	case "end_turn", "stop_sequence":
		return "stop"
	case "max_tokens":
		return "length"
	}
	return s
}

func (anthropic) decode(b []byte, r *Reply) error {
	var m anthropicMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var text strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			text.WriteString(c.Text)
		}
	}
	r.Text, r.FinishReason = text.String(), finishReason(m.StopReason)
	if m.Usage != nil {
		r.Usage = Usage{InputTokens: m.Usage.InputTokens, OutputTokens: m.Usage.OutputTokens}
	}
	return nil
}

type anthropicEvent struct {
	Type    string            `json:"type"`
	Message *anthropicMessage `json:"message"` // message_start
	Delta   struct {
		Type       string `json:"type"`
		Text       string `json:"text"`        // content_block_delta, text_delta
		StopReason string `json:"stop_reason"` // message_delta
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"` // message_delta: cumulative
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// event reads one event of the stream: message_start (input tokens),
// content_block_delta (text), message_delta (stop reason, output tokens),
// message_stop, ping and error.
func (anthropic) event(ev sseEvent, r *Reply, delta func(string)) (bool, error) {
	var e anthropicEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return false, errors.New("unreadable stream event: " + err.Error())
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil && e.Message.Usage != nil {
			r.Usage = Usage{InputTokens: e.Message.Usage.InputTokens, OutputTokens: e.Message.Usage.OutputTokens}
		}
	case "content_block_delta":
		if e.Delta.Type == "text_delta" {
			delta(e.Delta.Text)
		}
	case "message_delta":
		if e.Delta.StopReason != "" {
			r.FinishReason = finishReason(e.Delta.StopReason)
		}
		if u := e.Usage; u != nil {
			if u.InputTokens > 0 {
				r.Usage.InputTokens = u.InputTokens
			}
			r.Usage.OutputTokens = u.OutputTokens
		}
	case "message_stop":
		return true, nil
	case "error":
		msg := "stream error"
		if e.Error != nil {
			msg = e.Error.Type + ": " + e.Error.Message
		}
		return false, errors.New(shorten(msg))
	}
	return false, nil
}
