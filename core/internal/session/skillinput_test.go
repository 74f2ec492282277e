package session

import (
	"encoding/json"
	"testing"
)

func skillInputCases() []SkillInput {
	return []SkillInput{
		{},
		{Text: "hi", SessionID: "ses_1", MessageID: "msg_1", Channel: "api", UserID: "u", History: []HistoryItem{}},
		{Text: `quote " back \ <b>&amp;</b> ` + "\n\t\x01 \u2028 é \xff", Command: "/echo", Metadata: map[string]string{"b": "2", "a": "<1>", "": ""},
			History: []HistoryItem{{Role: "user", Text: "one"}, {Role: "assistant", Text: "two \"2\""}}},
		{Metadata: map[string]string{}},
	}
}

// TestSkillInputMatchesEncodingJSON: the hand encoding is encoding/json's,
// byte for byte, with items encoded before or not.
func TestSkillInputMatchesEncodingJSON(t *testing.T) {
	for _, in := range skillInputCases() {
		want, _ := json.Marshal(in)
		for range 2 { // the second time from the items' cached encodings
			if got := encodeSkillInput(&in); string(got) != string(want) {
				t.Errorf("encodeSkillInput:\n got %s\nwant %s", got, want)
			}
		}
	}
}

func FuzzSkillInput(f *testing.F) {
	f.Add("hi", "/c", "k", "v", "user", "text")
	f.Add("\xff\x00<>&\u2028", "", "\"", "\\", "", "\u2029")
	f.Fuzz(func(t *testing.T, text, cmd, k, v, role, htext string) {
		in := SkillInput{Text: text, Command: cmd, SessionID: k, MessageID: v, Channel: role, UserID: htext,
			Metadata: map[string]string{k: v, v: k}, History: []HistoryItem{{Role: role, Text: htext}}}
		want, _ := json.Marshal(in)
		if got := appendSkillInput(nil, &in); string(got) != string(want) {
			t.Errorf("appendSkillInput:\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkSkillInput: a turn's input with 20 messages of history whose
// items were encoded on earlier turns, by hand and by encoding/json.
func BenchmarkSkillInput(b *testing.B) {
	in := SkillInput{Text: "hello there", SessionID: "ses_0123456789abcdef01234567", MessageID: "msg_0123456789abcdef01234567", Channel: "api", UserID: "usr_0123456789abcdef0123"}
	for i := range 20 {
		in.History = append(in.History, HistoryItem{Role: []string{"user", "assistant"}[i%2], Text: "a message of some length, like people write to an agent"})
	}
	b.Run("by-hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeSkillInput(&in)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(in)
		}
	})
}
