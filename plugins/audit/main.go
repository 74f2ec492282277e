// Command audit is a hook plugin: it keeps every event it receives in its
// key-value store, and its skill audit_log returns the latest ones. It needs
// the kv capability.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/porticohq/portico/sdk"
)

// keep bounds the events stored; older ones are overwritten (a ring).
const keep = 1000

type record struct {
	Seq  int             `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func next() (int, error) {
	v, err := sdk.KVGet("seq")
	if errors.Is(err, sdk.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

func init() {
	sdk.OnEvent(func(ev sdk.Event) error {
		seq, err := next()
		if err != nil {
			return err
		}
		data := json.RawMessage(ev.Data)
		if !json.Valid(data) {
			data, _ = json.Marshal(string(ev.Data))
		}
		b, _ := json.Marshal(record{Seq: seq, Type: ev.Type, Data: data})
		if err := sdk.KVSet(fmt.Sprintf("event/%d", seq%keep), b); err != nil {
			return err
		}
		return sdk.KVSet("seq", []byte(strconv.Itoa(seq+1)))
	})
	sdk.Skill("audit_log", func(in sdk.Input) ([]byte, error) {
		var q struct {
			Limit int `json:"limit"`
		}
		if len(in.Payload) > 0 && string(in.Payload) != "null" {
			if err := json.Unmarshal(in.Payload, &q); err != nil {
				return nil, sdk.BadInput("want {\"limit\": N}: %v", err)
			}
		}
		if q.Limit <= 0 || q.Limit > 100 {
			q.Limit = 20
		}
		seq, err := next()
		if err != nil {
			return nil, err
		}
		out := []json.RawMessage{}
		for s := seq - 1; s >= 0 && s >= seq-keep && len(out) < q.Limit; s-- {
			v, err := sdk.KVGet(fmt.Sprintf("event/%d", s%keep))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return json.Marshal(map[string]any{"events": out})
	})
}

func main() {}
