package llm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func readAll(t testing.TB, in string, max int) ([]sseEvent, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(in), max)
	var out []sseEvent
	for range len(in) + 1 { // every event consumes at least one byte
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	t.Fatalf("the reader did not end on %q", in)
	return nil, nil
}

func TestSSE(t *testing.T) {
	tests := []struct {
		name, in string
		want     []sseEvent
		err      bool
	}{
		{"one", "data: a\n\n", []sseEvent{{"", []byte("a")}}, false},
		{"typed", "event: ping\ndata: {}\n\n", []sseEvent{{"ping", []byte("{}")}}, false},
		{"crlf", "event: x\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", []sseEvent{{"x", []byte("1")}, {"", []byte("2")}}, false},
		{"lone cr", "data: 1\r\rdata: 2\r\r", []sseEvent{{"", []byte("1")}, {"", []byte("2")}}, false},
		{"multi-line data", "data: a\ndata:b\ndata:  c\n\n", []sseEvent{{"", []byte("a\nb\n c")}}, false},
		{"comments and other fields", ": keep-alive\nid: 7\nretry: 100\ndata: x\n\n", []sseEvent{{"", []byte("x")}}, false},
		{"event without data is dropped", "event: ping\n\ndata: y\n\n", []sseEvent{{"", []byte("y")}}, false},
		{"cut off at the end", "data: z", []sseEvent{{"", []byte("z")}}, false},
		{"empty data", "data\n\n", []sseEvent{{"", nil}}, false},
		{"nothing", "", nil, false},
		{"only blank lines", "\n\n\n", nil, false},
		{"line over the limit", "data: " + strings.Repeat("x", 40) + "\n\n", nil, true},
		{"data over the limit", strings.Repeat("data: 0123456789\n", 4) + "\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.in, 32)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if tt.err {
				if !errors.Is(err, errEventTooLarge) {
					t.Errorf("err = %v, want errEventTooLarge", err)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %q, want %q", len(got), got, tt.want)
			}
			for i := range got {
				if got[i].Event != tt.want[i].Event || !bytes.Equal(got[i].Data, tt.want[i].Data) {
					t.Errorf("event %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzSSE feeds the stream parser arbitrary provider output: it must end,
// never panic and never return an event over its bound; and events written
// from the input's lines must read back unchanged.
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
		"data: a\r\ndata: b\r\n\r\n", ": ping\n\n", "data\ndata\n\n", "\r\r\r", "event: x\n", strings.Repeat("data: x\n", 50),
	} {
		f.Add([]byte(s))
	}
	const max = 256
	f.Fuzz(func(t *testing.T, in []byte) {
		evs, err := readAll(t, string(in), max)
		if err != nil && !errors.Is(err, errEventTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, ev := range evs {
			if len(ev.Data) > max {
				t.Fatalf("event of %d bytes passed the bound %d", len(ev.Data), max)
			}
		}
		// Round trip: each line of the input (without line ends) is one
		// event's data.
		var payloads []string
		for _, l := range strings.FieldsFunc(string(in), func(r rune) bool { return r == '\n' || r == '\r' }) {
			if len(l) <= max-2 {
				payloads = append(payloads, l)
			}
		}
		var b strings.Builder
		for _, p := range payloads {
			b.WriteString("event: e\ndata: " + p + "\n\n")
		}
		got, err := readAll(t, b.String(), max)
		if err != nil || len(got) != len(payloads) {
			t.Fatalf("round trip of %q: %d events, %v", payloads, len(got), err)
		}
		for i, p := range payloads {
			if got[i].Event != "e" || string(got[i].Data) != p {
				t.Fatalf("round trip: event %d = %q, want %q", i, got[i].Data, p)
			}
		}
	})
}
