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

// record is {"seq":N,"type":"...","data":...} with the event's data as it
// came: the gateway hands a hook valid JSON (docs/abi.md), so it is not
// checked again here (in a guest, checking and compacting a few hundred
// bytes costs more than the rest of the hook). Empty data is null.
func record(seq int, ev sdk.Event) []byte {
	head := sdk.NewObject().Int("seq", seq).Str("type", ev.Type).Bytes()
	data := ev.Data
	if len(data) == 0 {
		data = []byte("null")
	}
	rec := make([]byte, 0, len(head)+len(data)+9)
	rec = append(rec, head[:len(head)-1]...) // without its closing brace
	rec = append(rec, `,"data":`...)
	rec = append(rec, data...)
	return append(rec, '}')
}

func init() {
	sdk.OnEvent(func(ev sdk.Event) error {
		seq, err := next()
		if err != nil {
			return err
		}
		if err := sdk.KVSet(eventKey(seq), record(seq, ev)); err != nil {
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
