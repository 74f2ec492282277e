package llm

import (
	"encoding/json"
	"errors"
	"net/http"
)

// openAI is the chat completions API (POST {base_url}/chat/completions)
// that OpenAI defines and llama.cpp, vLLM and Ollama serve too.
type openAI struct{}

type openAIRequest struct {
	Model         string         `json:"model"`
	Messages      []Message      `json:"messages"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type openAIUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

type openAIReply struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *openAIUsage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func (openAI) body(req Request, model string, _ *settings) ([]byte, error) {
	msgs := req.Messages
	if req.System != "" {
		msgs = append([]Message{{Role: "system", Content: req.System}}, msgs...)
	}
	r := openAIRequest{Model: model, Messages: msgs, MaxTokens: req.MaxTokens, Temperature: req.Temperature, Stream: req.Stream}
	if req.Stream {
		r.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return json.Marshal(r)
}

func (openAI) auth(h http.Header, key string) {
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
}

func (openAI) decode(b []byte, r *Reply) error {
	var o openAIReply
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	if o.Error != nil {
		return errors.New(shorten(o.Error.Message))
	}
	if len(o.Choices) == 0 {
		return errors.New("no choices in the reply")
	}
	c := o.Choices[0]
	r.Text = c.Message.Content
	if c.FinishReason != nil {
		r.FinishReason = *c.FinishReason
	}
	if o.Usage != nil {
		r.Usage = Usage{InputTokens: o.Usage.PromptTokens, OutputTokens: o.Usage.CompletionTokens}
	}
	return nil
}

// event reads one chunk: `data: {"choices":[{"delta":{"content":"..."}}]}`,
// a last chunk with usage (stream_options.include_usage) and `data: [DONE]`.
func (openAI) event(ev sseEvent, r *Reply, delta func(string)) (bool, error) {
	if string(ev.Data) == "[DONE]" {
		return true, nil
	}
	var o openAIReply
	if err := json.Unmarshal(ev.Data, &o); err != nil {
		return false, errors.New("unreadable stream chunk: " + err.Error())
	}
	if o.Error != nil {
		return false, errors.New(shorten(o.Error.Message))
	}
	if len(o.Choices) > 0 {
		c := o.Choices[0]
		delta(c.Delta.Content)
		if c.FinishReason != nil && *c.FinishReason != "" {
			r.FinishReason = *c.FinishReason
		}
	}
	if o.Usage != nil {
		r.Usage = Usage{InputTokens: o.Usage.PromptTokens, OutputTokens: o.Usage.CompletionTokens}
	}
	return false, nil
}
