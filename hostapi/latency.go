package hostapi

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latency is a lock-free histogram of call times in power-of-two
// microsecond buckets (1 µs to ~36 min), enough for p50/p99 to within a
// factor of two at a cost of one atomic add per call.
type latency struct {
	buckets [32]atomic.Uint64
	sum     atomic.Int64 // nanoseconds, for a mean
}

func (l *latency) record(d time.Duration) {
	l.sum.Add(int64(d))
	us := uint64(d / time.Microsecond)
	i := bits.Len64(us) // 0 for <1µs, 1 for 1µs, 2 for 2-3µs, ...
	if i >= len(l.buckets) {
		i = len(l.buckets) - 1
	}
	l.buckets[i].Add(1)
}

// quantile returns the upper bound of the bucket holding quantile q.
func (l *latency) quantile(q float64) time.Duration {
	var counts [32]uint64
	var total uint64
	for i := range l.buckets {
		counts[i] = l.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return time.Duration(uint64(1)<<i) * time.Microsecond
		}
	}
	return 0
}

// Histogram is a snapshot of a plugin's call times: Counts[i] calls took
// less than Bound(i) (and at least Bound(i-1)); Sum is their total.
type Histogram struct {
	Counts [32]uint64
	Sum    time.Duration
}

// Bound is the exclusive upper bound of bucket i: 1 µs << i.
func (Histogram) Bound(i int) time.Duration { return time.Duration(uint64(1)<<i) * time.Microsecond }

func (l *latency) snapshot() Histogram {
	var h Histogram
	for i := range l.buckets {
		h.Counts[i] = l.buckets[i].Load()
	}
	h.Sum = time.Duration(l.sum.Load())
	return h
}
