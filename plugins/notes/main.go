// Command notes is a skill plugin that remembers short notes in its own
// key-value store: remember, recall, notes (list) and forget. It needs the
// kv capability.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o notes.wasm
package main

import (
	"errors"
	"sort"
	"strings"

	"github.com/porticohq/portico/sdk"
)

// maxNote bounds one note; the gateway's kv quota bounds them all.
const maxNote = 4096

type noteInput struct {
	Key  string
	Text string
}

func parse(in sdk.Input, needText bool) (noteInput, error) {
	q := sdk.JSON(in.Payload)
	n := noteInput{Key: q.String("key"), Text: q.String("text")}
	if err := q.Err(); err != nil {
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
		return sdk.NewObject().Str("remembered", n.Key).Bytes(), nil
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
		return sdk.NewObject().Str("key", n.Key).Str("text", string(v)).Bytes(), nil
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
		return sdk.NewObject().Str("forgot", n.Key).Bytes(), nil
	})
	sdk.Skill("notes", func(in sdk.Input) ([]byte, error) {
		keys, err := index()
		if err != nil {
			return nil, kvError(err)
		}
		return sdk.NewObject().Strings("keys", keys).Bytes(), nil
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
	list := sdk.JSON(v)
	keys := []string{}
	for _, k := range list.Items() {
		keys = append(keys, k.AsString())
	}
	if err := list.Err(); err != nil {
		return nil, sdk.Errorf("notes index is damaged: %w", err)
	}
	return keys, nil
}

func saveIndex(keys []string) error {
	sort.Strings(keys)
	a := sdk.NewArray()
	for _, k := range keys {
		a.Str(k)
	}
	return sdk.KVSet("index", a.Bytes())
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
