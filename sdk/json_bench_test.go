package sdk_test

import (
	"encoding/json"
	"testing"

	"github.com/porticohq/portico/sdk"
)

// BenchmarkCodec compares the SDK's codec with encoding/json on a typical
// small skill input and reply (the notes plugin's recall): decode two
// string fields, encode an object of two strings. On the host; inside a
// WebAssembly guest the gap is wider (see docs/benchmarks.md).
func BenchmarkCodec(b *testing.B) {
	input := []byte(`{"key":"shop","text":"milk, eggs and \"good\" bread"}`)
	b.Run("decode/sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			q := sdk.JSON(input)
			key, text := q.String("key"), q.String("text")
			if q.Err() != nil || key == "" || text == "" {
				b.Fatal(q.Err())
			}
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var q struct {
				Key  string `json:"key"`
				Text string `json:"text"`
			}
			if err := json.Unmarshal(input, &q); err != nil || q.Key == "" || q.Text == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if out := sdk.NewObject().Str("key", "shop").Str("text", "milk, eggs and \"good\" bread").Bytes(); len(out) == 0 {
				b.Fatal("empty")
			}
		}
	})
	b.Run("encode/encoding-json-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if out, err := json.Marshal(map[string]string{"key": "shop", "text": "milk, eggs and \"good\" bread"}); err != nil || len(out) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/encoding-json-struct", func(b *testing.B) {
		b.ReportAllocs()
		type reply struct {
			Key  string `json:"key"`
			Text string `json:"text"`
		}
		for b.Loop() {
			if out, err := json.Marshal(reply{"shop", "milk, eggs and \"good\" bread"}); err != nil || len(out) == 0 {
				b.Fatal(err)
			}
		}
	})
}
