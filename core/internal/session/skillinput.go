package session

import (
	"slices"

	"github.com/porticohq/portico/sdk"
)

// The skill input is encoded by hand, byte for byte as encoding/json
// encodes SkillInput (a test holds the two together), because a turn's
// history is the bulk of it and its items are the same turn after turn:
// each item is encoded once, when it enters the history cache, and a turn
// appends the bytes. The strings are escaped by the guest SDK's
// AppendString, which escapes exactly as encoding/json does.

// encoded returns the item's JSON, encoding it once.
func (h *HistoryItem) encoded() []byte {
	if h.enc == nil {
		b := append(make([]byte, 0, len(h.Role)+len(h.Text)+20), `{"role":`...)
		b = sdk.AppendString(b, h.Role)
		b = append(b, `,"text":`...)
		b = sdk.AppendString(b, h.Text)
		h.enc = append(b, '}')
	}
	return h.enc
}

// encodeSkillInput returns in as JSON.
func encodeSkillInput(in *SkillInput) []byte {
	n := 128 + 2*(len(in.Text)+len(in.Command)+len(in.SessionID)+len(in.MessageID)+len(in.Channel)+len(in.UserID))
	for k, v := range in.Metadata {
		n += 2*(len(k)+len(v)) + 6
	}
	for i := range in.History {
		n += len(in.History[i].encoded()) + 1
	}
	return appendSkillInput(make([]byte, 0, n), in)
}

// appendSkillInput appends in as JSON.
func appendSkillInput(b []byte, in *SkillInput) []byte {
	b = append(b, `{"text":`...)
	b = sdk.AppendString(b, in.Text)
	if in.Command != "" {
		b = append(b, `,"command":`...)
		b = sdk.AppendString(b, in.Command)
	}
	for _, f := range [...]struct{ name, v string }{{`,"session_id":`, in.SessionID}, {`,"message_id":`, in.MessageID}, {`,"channel":`, in.Channel}, {`,"user_id":`, in.UserID}} {
		b = sdk.AppendString(append(b, f.name...), f.v)
	}
	b = append(b, `,"metadata":`...)
	if in.Metadata == nil {
		b = append(b, "null"...)
	} else {
		keys := make([]string, 0, len(in.Metadata))
		for k := range in.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = sdk.AppendString(b, k)
			b = sdk.AppendString(append(b, ':'), in.Metadata[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"history":`...)
	if in.History == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range in.History {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, in.History[i].encoded()...)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
