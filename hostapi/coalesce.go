package hostapi

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// coalesceGap is the largest run of zeros between two data segments that
// coalesceData fills to join them: about what one more segment costs the
// runtime in memory (its decoded form and two small allocations).
const coalesceGap = 64

// coalesceMin is the number of data segments below which a module is
// left as it is.
const coalesceMin = 64

// coalesceData joins a module's active data segments that are no more
// than coalesceGap bytes apart into one, filling the gap with zeros, and
// returns the new module (or wasm itself where it does not apply). The Go
// linker writes one segment per run of non-zero data, some 30 000 for a
// small guest, and wazero keeps each decoded, with its own allocations,
// for as long as the module is compiled: ~2 MB for 1 MB of data. Joined,
// the same bytes land in the same places of a fresh (zeroed) memory, so
// the module means the same.
//
// It applies only where segment indexes cannot matter and the layout is
// plain: no data count section (which memory.init and data.drop need),
// every segment active in memory 0 at an i32.const offset, no two
// overlapping (so the order they are written in does not matter; the Go
// linker's are in increasing order within each of its sections). Anything else, including a malformed module, is
// returned untouched for the compiler to judge.
func coalesceData(wasm []byte) []byte {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return wasm
	}
	var dataHdr, dataStart, dataEnd int // the data section: its id, its contents
	for i := 8; i < len(wasm); {
		id := wasm[i]
		size, n := uleb(wasm[i+1:])
		if n <= 0 || size > uint64(len(wasm)) {
			return wasm
		}
		body := i + 1 + n
		end := body + int(size)
		if end > len(wasm) {
			return wasm
		}
		switch id {
		case 12: // data count
			return wasm
		case 11:
			dataHdr, dataStart, dataEnd = i, body, end
		}
		i = end
	}
	if dataEnd == 0 {
		return wasm
	}
	segs, ok := parseData(wasm[dataStart:dataEnd])
	if !ok || len(segs) < coalesceMin {
		return wasm
	}
	// Runs of segments at most coalesceGap apart, each written into one
	// buffer of its own.
	var merged []dataSegment
	for i := 0; i < len(segs); {
		j, end := i+1, segs[i].off+uint64(len(segs[i].data))
		for j < len(segs) && segs[j].off-end <= coalesceGap {
			end = segs[j].off + uint64(len(segs[j].data))
			j++
		}
		buf := make([]byte, end-segs[i].off)
		for _, s := range segs[i:j] {
			copy(buf[s.off-segs[i].off:], s.data)
		}
		merged = append(merged, dataSegment{off: segs[i].off, data: buf})
		i = j
	}
	var sec []byte
	sec = binary.AppendUvarint(sec, uint64(len(merged)))
	for _, s := range merged {
		sec = append(sec, 0, 0x41) // active, memory 0; i32.const
		sec = appendSleb(sec, int64(int32(uint32(s.off))))
		sec = append(sec, 0x0b)
		sec = binary.AppendUvarint(sec, uint64(len(s.data)))
		sec = append(sec, s.data...)
	}
	out := make([]byte, 0, len(wasm)-(dataEnd-dataStart)+len(sec))
	out = append(out, wasm[:dataHdr]...)
	out = append(out, 11)
	out = binary.AppendUvarint(out, uint64(len(sec)))
	out = append(out, sec...)
	return append(out, wasm[dataEnd:]...)
}

type dataSegment struct {
	off  uint64
	data []byte
}

// parseData reads a data section of plain active segments (see
// coalesceData), sorted by offset; ok is false for anything else.
func parseData(b []byte) (segs []dataSegment, ok bool) {
	count, n := uleb(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, false
	}
	b = b[n:]
	segs = make([]dataSegment, 0, count)
	for range count {
		// flag 0 (active, memory 0), then i32.const OFFSET end.
		if len(b) < 2 || b[0] != 0 || b[1] != 0x41 {
			return nil, false
		}
		v, n := sleb(b[2:])
		if n <= 0 || 2+n >= len(b) || b[2+n] != 0x0b {
			return nil, false
		}
		b = b[3+n:]
		off := uint64(uint32(int32(v)))
		size, m := uleb(b)
		if m <= 0 || size > uint64(len(b)-m) || off+size > 1<<32 {
			return nil, false
		}
		segs = append(segs, dataSegment{off: off, data: b[m : m+int(size)]})
		b = b[m+int(size):]
	}
	if len(b) != 0 {
		return nil, false
	}
	// Segments that do not overlap write the same memory in any order.
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.off, b.off) })
	for i := 1; i < len(segs); i++ {
		if segs[i].off < segs[i-1].off+uint64(len(segs[i-1].data)) {
			return nil, false
		}
	}
	return segs, true
}

// uleb reads an unsigned LEB128 number of at most 32 bits, as wasm
// encodes sizes and counts; n <= 0 if there is none.
func uleb(b []byte) (v uint64, n int) {
	v, n = binary.Uvarint(b)
	if n > 5 || v > 1<<32-1 {
		return 0, -1
	}
	return v, n
}

// sleb reads a signed LEB128 number of at most 32 bits (an i32.const).
func sleb(b []byte) (int64, int) {
	var v int64
	var shift uint
	for i, c := range b {
		if i >= 5 {
			return 0, -1
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1
		}
	}
	return 0, -1
}

func appendSleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
