// Command notes is a skill plugin that remembers short notes in its own
// key-value store: remember, recall, notes (list) and forget. It needs the
// kv capability.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o notes.wasm
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/porticohq/portico/sdk"
)

// maxNote bounds one note; the gateway's kv quota bounds them all.
const maxNote = 4096

type noteInput struct {
	Key  string `json:"key"`
	Text string `json:"text"`
}

func parse(in sdk.Input, needText bool) (noteInput, error) {
	var n noteInput
	if err := json.Unmarshal(in.Payload, &n); err != nil {
		return n, sdk.BadInput("want {\"key\":\"...\"%s}: %v", map[bool]string{true: ",\"text\":\"...\""}[needText], err)
	}
	if n.Key == "" || len(n.Key) > 128 || strings.ContainsAny(n.Key, "\x00/") {
		return n, sdk.BadInput("key must be 1 to 128 characters without / or NUL")
	}
	if needText && (n.Text == "" || len(n.Text) > maxNote) {
		return n, sdk.BadInput("text must be 1 to %d bytes", maxNote)
	}
	return n, nil
}

// kvError turns a refused kv call into a message the operator can act on.
func kvError(err error) error {
	if errors.Is(err, sdk.ErrDenied) {
		return errors.New("notes needs the kv capability: add grants = [\"kv\"] to its [[plugins]] table")
	}
	return err
}

func reply(v any) ([]byte, error) { return json.Marshal(v) }

func init() {
	sdk.Skill("remember", func(in sdk.Input) ([]byte, error) {
		n, err := parse(in, true)
		if err != nil {
			return nil, err
		}
		if err := sdk.KVSet("note/"+n.Key, []byte(n.Text)); err != nil {
			return nil, kvError(err)
		}
		keys, err := index()
		if err != nil {
			return nil, kvError(err)
		}
		if !contains(keys, n.Key) {
			if err := saveIndex(append(keys, n.Key)); err != nil {
				return nil, kvError(err)
			}
		}
		return reply(map[string]string{"remembered": n.Key})
	})
	sdk.Skill("recall", func(in sdk.Input) ([]byte, error) {
		n, err := parse(in, false)
		if err != nil {
			return nil, err
		}
		v, err := sdk.KVGet("note/" + n.Key)
		if errors.Is(err, sdk.ErrNotFound) {
			return nil, sdk.BadInput("no note %q", n.Key)
		}
		if err != nil {
			return nil, kvError(err)
		}
		return reply(map[string]string{"key": n.Key, "text": string(v)})
	})
	sdk.Skill("forget", func(in sdk.Input) ([]byte, error) {
		n, err := parse(in, false)
		if err != nil {
			return nil, err
		}
		if err := sdk.KVDelete("note/" + n.Key); err != nil {
			return nil, kvError(err)
		}
		if err := removeKey(n.Key); err != nil {
			return nil, kvError(err)
		}
		return reply(map[string]string{"forgot": n.Key})
	})
	sdk.Skill("notes", func(in sdk.Input) ([]byte, error) {
		keys, err := index()
		if err != nil {
			return nil, kvError(err)
		}
		return reply(map[string][]string{"keys": keys})
	})
}

// The index of keys lives under one key: the host's kv has no listing call
// in ABI v1.0.
func index() ([]string, error) {
	v, err := sdk.KVGet("index")
	if errors.Is(err, sdk.ErrNotFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal(v, &keys); err != nil {
		return nil, fmt.Errorf("notes index is damaged: %w", err)
	}
	return keys, nil
}

func saveIndex(keys []string) error {
	sort.Strings(keys)
	b, _ := json.Marshal(keys)
	return sdk.KVSet("index", b)
}

func removeKey(key string) error {
	keys, err := index()
	if err != nil {
		return err
	}
	out := keys[:0]
	for _, k := range keys {
		if k != key {
			out = append(out, k)
		}
	}
	return saveIndex(out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func main() {}
