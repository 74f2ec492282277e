// Command summarize is a skill that summarizes text: through the gateway's
// LLM providers when it is granted llm and one is configured, otherwise with
// an extractive fallback (the first sentences, up to a length).
package main

import (
	"strconv"
	"strings"

	"github.com/porticohq/portico/sdk"
)

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
		q := sdk.JSON(in.Payload)
		text, maxChars := q.String("text"), q.Int("max_chars")
		if q.Err() != nil || strings.TrimSpace(text) == "" {
			return nil, sdk.BadInput("want {\"text\": \"...\", \"max_chars\": N}")
		}
		if maxChars <= 0 {
			maxChars = 280
		}
		req := sdk.NewObject().Str("prompt", "Summarize in at most "+strconv.Itoa(maxChars)+" characters:\n\n"+text)
		if out, err := sdk.LLM(req.Bytes()); err == nil {
			r := sdk.JSON(out)
			if summary := r.String("text"); r.Err() == nil && summary != "" {
				return reply("llm", summary), nil
			}
		}
		return reply("extractive", extract(text, maxChars)), nil
	})
}

func reply(method, summary string) []byte {
	return sdk.NewObject().Str("method", method).Str("summary", summary).Bytes()
}

func main() {}
