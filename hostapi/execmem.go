package hostapi

// region is one mapping, [start, end).
type region struct{ start, end uint64 }

// mappedSince is how many bytes of executable mappings after has that
// before had not: the code one compile mapped. Mappings unmapped
// meanwhile (wazero unmaps a closed module's code from a finalizer, on
// any goroutine) do not count against it, and a new mapping the kernel
// merged with an old neighbour counts only its new part.
func mappedSince(before, after []region) int64 {
	old := make(map[region]bool, len(before))
	for _, r := range before {
		old[r] = true
	}
	var n int64
	for _, a := range after {
		if old[a] {
			continue
		}
		size := int64(a.end - a.start)
		for _, b := range before {
			if b.start >= a.start && b.end <= a.end {
				size -= int64(b.end - b.start)
			}
		}
		n += max(size, 0)
	}
	return n
}
