package hostapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/porticohq/portico/plugins"
)

// dataModule is a module with one memory of pages and the given active
// data segments (offset, bytes), and a data count section if count.
func dataModule(pages uint32, segs []dataSegment, count bool) []byte {
	section := func(id byte, body []byte) []byte {
		return append(binary.AppendUvarint([]byte{id}, uint64(len(body))), body...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(5, append([]byte{1, 0}, binary.AppendUvarint(nil, uint64(pages))...))...)
	if count {
		m = append(m, section(12, binary.AppendUvarint(nil, uint64(len(segs))))...)
	}
	var d []byte
	d = binary.AppendUvarint(d, uint64(len(segs)))
	for _, s := range segs {
		d = append(d, 0, 0x41)
		d = appendSleb(d, int64(int32(uint32(s.off))))
		d = append(d, 0x0b)
		d = binary.AppendUvarint(d, uint64(len(s.data)))
		d = append(d, s.data...)
	}
	m = append(m, section(11, d)...)
	return append(m, section(0, []byte("\x04name"))...) // a custom section after it stays
}

// image is the memory a module's data segments make: the bytes each
// segment writes, laid out in a zeroed buffer of size bytes.
func image(t testing.TB, wasm []byte, size int) []byte {
	t.Helper()
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(context.Background())
	mod, err := rt.InstantiateWithConfig(context.Background(), wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	mem, _ := mod.Memory().Read(0, uint32(min(size, int(mod.Memory().Size()))))
	return bytes.Clone(mem)
}

func segments(n int, gap func(i int) uint64) []dataSegment {
	var segs []dataSegment
	off := uint64(16)
	for i := range n {
		segs = append(segs, dataSegment{off: off, data: []byte{byte(i + 1), byte(i >> 8), 0xee}})
		off += 3 + gap(i)
	}
	return segs
}

func TestCoalesceData(t *testing.T) {
	for _, c := range []struct {
		name         string
		module       []byte
		changed      bool
		wantSegments int
	}{
		{"small gaps join into one", dataModule(1, segments(200, func(int) uint64 { return 5 }), false), true, 1},
		{"a large gap splits", dataModule(2, segments(200, func(i int) uint64 {
			if i == 99 {
				return coalesceGap + 1
			}
			return 0
		}), false), true, 2},
		{"few segments stay", dataModule(1, segments(coalesceMin-1, func(int) uint64 { return 1 }), false), false, coalesceMin - 1},
		{"a data count section stays", dataModule(1, segments(200, func(int) uint64 { return 1 }), true), false, 200},
		{"out of order joins", dataModule(1, append(segments(100, func(int) uint64 { return 1 }), dataSegment{off: 0, data: []byte{1}}), false), true, 1},
		{"overlapping stays", dataModule(1, append(segments(100, func(int) uint64 { return 1 }), dataSegment{off: 17, data: []byte{1}}), false), false, 101},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := coalesceData(c.module)
			if changed := !bytes.Equal(out, c.module); changed != c.changed {
				t.Fatalf("changed = %v, want %v", changed, c.changed)
			}
			if got := countSegments(t, out); got != c.wantSegments {
				t.Errorf("%d segments, want %d", got, c.wantSegments)
			}
			if !bytes.Equal(image(t, out, 2<<16), image(t, c.module, 2<<16)) {
				t.Error("the coalesced module's memory differs from the original's")
			}
		})
	}
}

func countSegments(t *testing.T, wasm []byte) int {
	t.Helper()
	for i := 8; i < len(wasm); {
		size, n := uleb(wasm[i+1:])
		if wasm[i] == 11 {
			c, _ := uleb(wasm[i+1+n:])
			return int(c)
		}
		i += 1 + n + int(size)
	}
	t.Fatal("no data section")
	return 0
}

// layout is the memory a module's data section describes (up to its last
// non-zero byte), from parseData: for modules image cannot instantiate.
func layout(t *testing.T, m []byte) []byte {
	t.Helper()
	var img []byte
	for i := 8; i < len(m); {
		size, n := uleb(m[i+1:])
		if m[i] == 11 {
			segs, ok := parseData(m[i+1+n : i+1+n+int(size)])
			if !ok {
				t.Fatal("the data section does not parse")
			}
			for _, s := range segs {
				if s.off+uint64(len(s.data)) > 64<<20 {
					t.Skip("data beyond 64 MiB: too large to lay out here")
				}
				if end := int(s.off) + len(s.data); end > len(img) {
					img = append(img, make([]byte, end-len(img))...)
				}
				copy(img[s.off:], s.data)
			}
		}
		i += 1 + n + int(size)
	}
	return bytes.TrimRight(img, "\x00")
}

// TestCoalesceGoGuests checks the embedded Go guests, whose data sections
// are what coalescing is for: far fewer segments, the same memory.
func TestCoalesceGoGuests(t *testing.T) {
	for _, name := range []string{"echo", "guard"} {
		wasm, err := plugins.FS.ReadFile(name + "/" + name + ".wasm")
		if err != nil {
			t.Fatal(err)
		}
		out := coalesceData(wasm)
		before, after := countSegments(t, wasm), countSegments(t, out)
		t.Logf("%s: %d segments -> %d, %d bytes -> %d", name, before, after, len(wasm), len(out))
		if after*100 > before {
			t.Errorf("%s: %d segments left of %d", name, after, before)
		}
		if !bytes.Equal(layout(t, out), layout(t, wasm)) {
			t.Errorf("%s: the coalesced module's memory differs from the original's", name)
		}
	}
}

// FuzzCoalesceData feeds it any bytes: it must not panic, and whatever it
// changes must lay out the same data.
func FuzzCoalesceData(f *testing.F) {
	f.Add(dataModule(1, segments(70, func(int) uint64 { return 2 }), false))
	f.Add(dataModule(1, segments(70, func(i int) uint64 { return uint64(i % 90) }), false))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out := coalesceData(wasm)
		if bytes.Equal(out, wasm) {
			return
		}
		if !bytes.Equal(layout(t, out), layout(t, wasm)) {
			t.Fatal("coalescing moved data")
		}
		if !bytes.Equal(coalesceData(out), out) {
			t.Fatal("coalescing twice changed more")
		}
	})
}
