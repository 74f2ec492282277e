// Command summarize is a skill that summarizes text: through the gateway's
// LLM providers when it is granted llm and one is configured, otherwise with
// an extractive fallback (the first sentences, up to a length).
package main

import (
	"encoding/json"
	"strings"

	"github.com/porticohq/portico/sdk"
)

type input struct {
	Text     string `json:"text"`
	MaxChars int    `json:"max_chars"`
}

// extract keeps whole sentences from the start of text while they fit.
func extract(text string, max int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) <= max {
		return text
	}
	var b strings.Builder
	for _, s := range strings.SplitAfter(text, ". ") {
		if b.Len()+len(s) > max {
			break
		}
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return text[:max] + "…"
	}
	return strings.TrimSpace(b.String())
}

func init() {
	sdk.Skill("summarize", func(in sdk.Input) ([]byte, error) {
		var q input
		if err := json.Unmarshal(in.Payload, &q); err != nil || strings.TrimSpace(q.Text) == "" {
			return nil, sdk.BadInput("want {\"text\": \"...\", \"max_chars\": N}")
		}
		if q.MaxChars <= 0 {
			q.MaxChars = 280
		}
		req, _ := json.Marshal(map[string]any{"prompt": "Summarize in at most " + itoa(q.MaxChars) + " characters:\n\n" + q.Text})
		if out, err := sdk.LLM(req); err == nil {
			var r struct {
				Text string `json:"text"`
			}
			if json.Unmarshal(out, &r) == nil && r.Text != "" {
				return json.Marshal(map[string]string{"summary": r.Text, "method": "llm"})
			}
		}
		return json.Marshal(map[string]string{"summary": extract(q.Text, q.MaxChars), "method": "extractive"})
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func main() {}
