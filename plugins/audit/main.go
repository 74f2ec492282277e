// Command audit is a hook plugin: it keeps every event it receives in its
// key-value store, and its skill audit_log returns the latest ones. It needs
// the kv capability.
package main

import (
	"errors"
	"strconv"

	"github.com/porticohq/portico/sdk"
)

// keep bounds the events stored; older ones are overwritten (a ring).
const keep = 1000

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

func eventKey(seq int) string { return "event/" + strconv.Itoa(seq%keep) }

func init() {
	sdk.OnEvent(func(ev sdk.Event) error {
		seq, err := next()
		if err != nil {
			return err
		}
		// A record: {"seq":N,"type":"...","data":...}, the data as it came
		// (compacted) when it is JSON, as the gateway always sends it
		// (docs/abi.md), else as a string.
		rec := sdk.NewObject().Int("seq", seq).Str("type", ev.Type).Raw("data", ev.Data)
		if rec.Err() != nil {
			rec = sdk.NewObject().Int("seq", seq).Str("type", ev.Type).Str("data", string(ev.Data))
		}
		if err := sdk.KVSet(eventKey(seq), rec.Bytes()); err != nil {
			return err
		}
		return sdk.KVSet("seq", []byte(strconv.Itoa(seq+1)))
	})
	sdk.Skill("audit_log", func(in sdk.Input) ([]byte, error) {
		q := sdk.JSON(in.Payload)
		var limit int
		if len(in.Payload) > 0 {
			limit = q.Int("limit")
			if err := q.Err(); err != nil {
				return nil, sdk.BadInput("want {\"limit\": N}: %v", err)
			}
		}
		if limit <= 0 || limit > 100 {
			limit = 20
		}
		seq, err := next()
		if err != nil {
			return nil, err
		}
		events := sdk.NewArray()
		for s := seq - 1; s >= 0 && s >= seq-keep && events.Len() < limit; s-- {
			v, err := sdk.KVGet(eventKey(s))
			if err != nil {
				return nil, err
			}
			events.Raw(v)
		}
		if err := events.Err(); err != nil {
			return nil, errors.New("the audit log is damaged: " + err.Error())
		}
		return sdk.NewObject().Array("events", events).Bytes(), nil
	})
}

func main() {}
