package hostapi

import (
	"context"
	"errors"
	"testing"
)

func TestStreamDeliversChunks(t *testing.T) {
	r := newRuntime(t)
	p, err := load(t, r, "hugeoutput.wasm", Options{MaxOutputBytes: 20 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var chunks, total int
	err = p.Stream(context.Background(), envelope("x", nil), func(b []byte) error {
		chunks++
		total += len(b)
		return nil
	})
	if err != nil || chunks != 200 || total != 200*65536 {
		t.Fatalf("stream: %d chunks, %d bytes, %v", chunks, total, err)
	}
	// A sink that stops (a client that went away) ends the call with its error.
	stop := errors.New("client gone")
	n := 0
	err = p.Stream(context.Background(), envelope("x", nil), func([]byte) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("stopped stream: %v after %d chunks", err, n)
	}
	// The output limit applies to streams too.
	p2, _ := load(t, r, "hugeoutput.wasm", Options{Name: "small", MaxOutputBytes: 100_000})
	err = p2.Stream(context.Background(), envelope("x", nil), func([]byte) error { return nil })
	if !errors.Is(err, ErrOutputLimit) {
		t.Errorf("limit: %v", err)
	}
}
