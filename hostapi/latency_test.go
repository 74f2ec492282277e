package hostapi

import (
	"testing"
	"time"
)

func TestLatencyQuantiles(t *testing.T) {
	var l latency
	if l.quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
	for range 98 {
		l.record(3 * time.Microsecond) // bucket [2,4) µs
	}
	l.record(700 * time.Microsecond) // [512,1024)
	l.record(5 * time.Second)
	if p50 := l.quantile(0.5); p50 != 4*time.Microsecond {
		t.Errorf("p50 = %s, want 4µs (the bucket bound above 3µs)", p50)
	}
	if p99 := l.quantile(0.99); p99 != 1024*time.Microsecond {
		t.Errorf("p99 = %s, want 1.024ms", p99)
	}
	if max := l.quantile(1); max < 5*time.Second {
		t.Errorf("max = %s", max)
	}
}
