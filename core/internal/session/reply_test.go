package session

import (
	"bytes"
	"encoding/json"
	"testing"
)

// decodedReplyText is replyText by decoding the whole output: the
// reference the fast one must agree with.
func decodedReplyText(out []byte) string {
	out = bytes.TrimSpace(out)
	if len(out) > 0 && (out[0] == '{' || out[0] == '"') {
		var v struct {
			Text *string `json:"text"`
		}
		if out[0] == '"' {
			var str string
			if json.Unmarshal(out, &str) == nil {
				return str
			}
		} else if json.Unmarshal(out, &v) == nil && v.Text != nil {
			return *v.Text
		}
	}
	return string(out)
}

var replyCases = []string{
	`{"text":"hi","x":1}`, `"quoted"`, `plain text`, `{"other":1}`, ` [1,2] `, `{"text":`,
	`{"TEXT":"upper"}`, `{"Text":"a","text":"b"}`, `{"text":"a","Text":null}`, `{"text":1}`,
	`{"text":"a"} trailing`, `{"te\u0078t":"escaped key"}`, `{"x":{"text":"nested"},"text":"top"}`,
	`{"x":["}",{"text":"in array"}]}`, `{"text":"quote \" and \\ and \u00e9"}`, ` { "text" : "spaced" , "y" : [ 1 , 2 ] } `,
	`{}`, `{"text":""}`, `{"text":"a\ud800b"}`, `{"a":-1.5e3,"b":true,"c":null,"text":"after scalars"}`,
	`{"text":"x","text":{"y":1}}`, `"unterminated`, `{"s":"\"}\"","text":"t"}`,
}

func TestReplyText(t *testing.T) {
	for _, in := range replyCases {
		if got, want := replyText([]byte(in)), decodedReplyText([]byte(in)); got != want {
			t.Errorf("replyText(%s) = %q, want %q", in, got, want)
		}
	}
}

func FuzzReplyText(f *testing.F) {
	for _, c := range replyCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		if got, want := replyText(out), decodedReplyText(out); got != want {
			t.Errorf("replyText(%q) = %q, want %q", out, got, want)
		}
	})
}

func BenchmarkReplyText(b *testing.B) {
	in, _ := json.Marshal(SkillInput{Text: "hello there", SessionID: "ses_1", History: make([]HistoryItem, 20)})
	for i := range 20 {
		in, _ = json.Marshal(SkillInput{Text: "hello there", SessionID: "ses_1", History: append(make([]HistoryItem, i), HistoryItem{Role: "user", Text: "a message of some length, like people write"})})
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			replyText(in)
		}
	})
	b.Run("decoded", func(b *testing.B) {
		for b.Loop() {
			decodedReplyText(in)
		}
	})
}
