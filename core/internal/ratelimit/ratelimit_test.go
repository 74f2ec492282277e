package ratelimit

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t testing.TB, o Options) (*Limiter, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	if o.Now == nil {
		o.Now = clk.Now
	}
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, clk
}

func rates(def Rate, kv ...any) map[string]Rate {
	m := map[string]Rate{"default": def}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(Rate)
	}
	return m
}

// has reports whether l holds a bucket for (group, principal).
func (l *Limiter) has(group, principal string) bool {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		_, ok := s.m[key{group, principal}]
		s.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

func drain(t *testing.T, l *Limiter, group, principal string) int {
	t.Helper()
	for n := 0; n < 1_000_000; n++ {
		if !l.Allow(group, principal).Allowed {
			return n
		}
	}
	t.Fatalf("bucket %s/%s never ran dry", group, principal)
	return 0
}

func TestBurst(t *testing.T) {
	l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 10, Burst: 5})})
	tests := []struct {
		name string
		want Decision
	}{
		{"call 1", Decision{Allowed: true, Limit: 5, Remaining: 4, Reset: 100 * time.Millisecond}},
		{"call 2", Decision{Allowed: true, Limit: 5, Remaining: 3, Reset: 200 * time.Millisecond}},
		{"call 3", Decision{Allowed: true, Limit: 5, Remaining: 2, Reset: 300 * time.Millisecond}},
		{"call 4", Decision{Allowed: true, Limit: 5, Remaining: 1, Reset: 400 * time.Millisecond}},
		{"call 5", Decision{Allowed: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
		{"call 6 refused", Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond, RetryAfter: 100 * time.Millisecond}},
		{"call 7 refused", Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond, RetryAfter: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Allow("api", "alice"); got != tt.want {
				t.Errorf("Allow = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRefill(t *testing.T) {
	l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 10, Burst: 5})})
	if n := drain(t, l, "api", "alice"); n != 5 {
		t.Fatalf("drained %d, want 5", n)
	}
	ms := time.Millisecond
	steps := []struct {
		name    string
		advance time.Duration
		want    Decision
	}{
		{"100ms gives one token", 100 * ms, Decision{Allowed: true, Limit: 5, Remaining: 0, Reset: 500 * ms}},
		{"and only one", 0, Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: 500 * ms, RetryAfter: 100 * ms}},
		{"250ms gives 2.5 tokens: first", 250 * ms, Decision{Allowed: true, Limit: 5, Remaining: 1, Reset: 350 * ms}},
		{"second", 0, Decision{Allowed: true, Limit: 5, Remaining: 0, Reset: 450 * ms}},
		{"third refused, half a token kept", 0, Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: 450 * ms, RetryAfter: 50 * ms}},
		{"49ms is not enough", 49 * ms, Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: 401 * ms, RetryAfter: 1 * ms}},
		{"the kept half plus 50ms make one", 1 * ms, Decision{Allowed: true, Limit: 5, Remaining: 0, Reset: 500 * ms}},
		{"a long pause fills to Burst only", time.Hour, Decision{Allowed: true, Limit: 5, Remaining: 4, Reset: 100 * ms}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(st.advance)
			if got := l.Allow("api", "alice"); got != st.want {
				t.Errorf("after +%v: Allow = %+v, want %+v", st.advance, got, st.want)
			}
		})
	}
}

func TestGroupsAndPrincipalsAreIndependent(t *testing.T) {
	l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: 3}, "write", Rate{PerSecond: 1, Burst: 1})})
	// Drain two buckets: write/alice and the unknown group read/alice.
	if n := drain(t, l, "write", "alice"); n != 1 {
		t.Fatalf("write/alice drained after %d, want 1", n)
	}
	if n := drain(t, l, "read", "alice"); n != 3 {
		t.Fatalf("read/alice (unknown group, default rate) drained after %d, want 3", n)
	}
	tests := []struct {
		name             string
		group, principal string
		want             Decision
	}{
		{"same group other principal", "write", "bob", Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second}},
		{"drained bucket stays drained", "write", "alice", Decision{Allowed: false, Limit: 1, Remaining: 0, Reset: time.Second, RetryAfter: time.Second}},
		{"default group same principal", "default", "alice", Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: time.Second}},
		{"other unknown group has own bucket", "search", "alice", Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: time.Second}},
		{"drained unknown group stays drained", "read", "alice", Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 3 * time.Second, RetryAfter: time.Second}},
		{"unknown group other principal", "read", "bob", Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Allow(tt.group, tt.principal); got != tt.want {
				t.Errorf("Allow(%q, %q) = %+v, want %+v", tt.group, tt.principal, got, tt.want)
			}
		})
	}
	// write/alice, read/alice, write/bob, default/alice, search/alice, read/bob
	if got := l.Len(); got != 6 {
		t.Errorf("Len = %d, want 6", got)
	}
	if got, want := l.Rate("search"), (Rate{PerSecond: 1, Burst: 3}); got != want {
		t.Errorf("Rate(unknown) = %+v, want default %+v", got, want)
	}
}

func TestSetRates(t *testing.T) {
	base := Rate{PerSecond: 10, Burst: 5}
	ms := time.Millisecond

	t.Run("lower burst caps the tokens on the next check", func(t *testing.T) {
		l, _ := newLimiter(t, Options{Rates: rates(base)})
		l.Allow("api", "a") // 4 tokens left
		if err := l.SetRates(rates(Rate{PerSecond: 10, Burst: 2})); err != nil {
			t.Fatal(err)
		}
		want := []Decision{
			{Allowed: true, Limit: 2, Remaining: 1, Reset: 100 * ms},
			{Allowed: true, Limit: 2, Remaining: 0, Reset: 200 * ms},
			{Allowed: false, Limit: 2, Remaining: 0, Reset: 200 * ms, RetryAfter: 100 * ms},
		}
		for i, w := range want {
			if got := l.Allow("api", "a"); got != w {
				t.Errorf("check %d: %+v, want %+v", i+1, got, w)
			}
		}
	})

	t.Run("lower rate applies on the next check", func(t *testing.T) {
		l, clk := newLimiter(t, Options{Rates: rates(base)})
		drain(t, l, "api", "a")
		if err := l.SetRates(rates(Rate{PerSecond: 1, Burst: 5})); err != nil {
			t.Fatal(err)
		}
		want := Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: 5 * time.Second, RetryAfter: time.Second}
		if got := l.Allow("api", "a"); got != want {
			t.Errorf("%+v, want %+v", got, want)
		}
		clk.Advance(100 * ms) // a token at the old rate, a tenth at the new
		if got := l.Allow("api", "a"); got.Allowed || got.RetryAfter != 900*ms {
			t.Errorf("after 100ms: %+v, want refused with RetryAfter 900ms", got)
		}
	})

	t.Run("raising burst does not refill", func(t *testing.T) {
		l, clk := newLimiter(t, Options{Rates: rates(base)})
		drain(t, l, "api", "a")
		if err := l.SetRates(rates(Rate{PerSecond: 10, Burst: 10})); err != nil {
			t.Fatal(err)
		}
		want := Decision{Allowed: false, Limit: 10, Remaining: 0, Reset: time.Second, RetryAfter: 100 * ms}
		if got := l.Allow("api", "a"); got != want {
			t.Errorf("%+v, want %+v", got, want)
		}
		clk.Advance(time.Second)
		if n := drain(t, l, "api", "a"); n != 10 {
			t.Errorf("after refill allowed %d, want the new burst 10", n)
		}
	})

	t.Run("raising rate refills faster", func(t *testing.T) {
		l, clk := newLimiter(t, Options{Rates: rates(base)})
		drain(t, l, "api", "a")
		if err := l.SetRates(rates(Rate{PerSecond: 100, Burst: 5})); err != nil {
			t.Fatal(err)
		}
		if got := l.Allow("api", "a"); got.Allowed || got.RetryAfter != 10*ms {
			t.Errorf("%+v, want refused with RetryAfter 10ms", got)
		}
		clk.Advance(10 * ms)
		if got := l.Allow("api", "a"); !got.Allowed {
			t.Errorf("after 10ms at 100/s: %+v, want allowed", got)
		}
	})

	t.Run("same rates again change nothing", func(t *testing.T) {
		l, _ := newLimiter(t, Options{Rates: rates(base)})
		drain(t, l, "api", "a")
		if err := l.SetRates(rates(base)); err != nil {
			t.Fatal(err)
		}
		if got := l.Allow("api", "a"); got.Allowed {
			t.Errorf("%+v: bucket was refilled by SetRates", got)
		}
	})

	t.Run("removed group falls back to default", func(t *testing.T) {
		l, clk := newLimiter(t, Options{Rates: rates(base, "write", Rate{PerSecond: 1, Burst: 1})})
		drain(t, l, "write", "a")
		if err := l.SetRates(rates(base)); err != nil {
			t.Fatal(err)
		}
		if got := l.Rate("write"); got != base {
			t.Errorf("Rate(write) = %+v, want default %+v", got, base)
		}
		if got := l.Allow("write", "a"); got.Allowed || got.Limit != 5 || got.RetryAfter != 100*ms {
			t.Errorf("%+v, want refused at the default rate (Limit 5, RetryAfter 100ms), tokens kept", got)
		}
		clk.Advance(100 * ms)
		if got := l.Allow("write", "a"); !got.Allowed {
			t.Errorf("%+v, want allowed after 100ms at the default rate", got)
		}
		if got := l.Allow("default", "a"); got.Remaining != 4 {
			t.Errorf("default/a: %+v, want its own full bucket", got)
		}
	})

	invalid := []struct {
		name    string
		rates   map[string]Rate
		wantErr []string
	}{
		{"no default", map[string]Rate{"write": base}, []string{`"default"`}},
		{"zero rate", rates(base, "write", Rate{PerSecond: 0, Burst: 1}), []string{`"write"`, "PerSecond"}},
		{"negative rate", rates(base, "write", Rate{PerSecond: -1, Burst: 1}), []string{`"write"`, "PerSecond"}},
		{"NaN rate", rates(base, "write", Rate{PerSecond: math.NaN(), Burst: 1}), []string{`"write"`, "PerSecond"}},
		{"zero burst", rates(base, "write", Rate{PerSecond: 1, Burst: 0}), []string{`"write"`, "Burst"}},
		{"bad default", rates(Rate{PerSecond: 1, Burst: -3}), []string{`"default"`, "Burst"}},
	}
	for _, tt := range invalid {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			l, _ := newLimiter(t, Options{Rates: rates(base, "write", Rate{PerSecond: 1, Burst: 2})})
			l.Allow("write", "a")
			err := l.SetRates(tt.rates)
			if err == nil {
				t.Fatal("SetRates accepted invalid rates")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if got := l.Rate("write"); got != (Rate{PerSecond: 1, Burst: 2}) {
				t.Errorf("Rate(write) = %+v after a rejected SetRates", got)
			}
			if got := l.Rate("default"); got != base {
				t.Errorf("Rate(default) = %+v after a rejected SetRates", got)
			}
			want := Decision{Allowed: true, Limit: 2, Remaining: 0, Reset: 2 * time.Second}
			if got := l.Allow("write", "a"); got != want {
				t.Errorf("Allow = %+v, want %+v (old rate still in force)", got, want)
			}
		})
	}

	t.Run("caller's map is copied", func(t *testing.T) {
		m := rates(base)
		l, _ := newLimiter(t, Options{Rates: m})
		m["default"] = Rate{PerSecond: 1, Burst: 1}
		if got := l.Rate("x"); got != base {
			t.Errorf("Rate = %+v after the caller changed its map", got)
		}
	})
}

func TestNewValidation(t *testing.T) {
	ok := Rate{PerSecond: 1, Burst: 1}
	tests := []struct {
		name    string
		opts    Options
		wantErr []string // empty: no error
	}{
		{"valid", Options{Rates: rates(ok)}, nil},
		{"valid with options", Options{Rates: rates(ok, "w", ok), IdleTTL: time.Second, MaxEntries: 10}, nil},
		{"nil rates", Options{}, []string{`"default"`}},
		{"no default", Options{Rates: map[string]Rate{"write": ok}}, []string{`"default"`}},
		{"default zero rate", Options{Rates: rates(Rate{Burst: 1})}, []string{`"default"`, "PerSecond"}},
		{"default infinite rate", Options{Rates: rates(Rate{PerSecond: math.Inf(1), Burst: 1})}, []string{`"default"`, "PerSecond"}},
		{"group negative rate", Options{Rates: rates(ok, "write", Rate{PerSecond: -2, Burst: 1})}, []string{`"write"`, "PerSecond"}},
		{"group NaN rate", Options{Rates: rates(ok, "write", Rate{PerSecond: math.NaN(), Burst: 1})}, []string{`"write"`, "PerSecond"}},
		{"group zero burst", Options{Rates: rates(ok, "read", Rate{PerSecond: 1})}, []string{`"read"`, "Burst"}},
		{"group negative burst", Options{Rates: rates(ok, "read", Rate{PerSecond: 1, Burst: -1})}, []string{`"read"`, "Burst"}},
		{"negative IdleTTL", Options{Rates: rates(ok), IdleTTL: -time.Second}, []string{"IdleTTL"}},
		{"negative MaxEntries", Options{Rates: rates(ok), MaxEntries: -1}, []string{"MaxEntries"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.opts)
			if len(tt.wantErr) == 0 {
				if err != nil || l == nil {
					t.Fatalf("New = %v, %v; want a limiter", l, err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted invalid options")
			}
			if l != nil {
				t.Error("New returned a limiter with an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		l, err := New(Options{Rates: rates(ok)})
		if err != nil {
			t.Fatal(err)
		}
		if l.idleTTL != int64(10*time.Minute) || l.max != 100_000 || l.now == nil {
			t.Errorf("idleTTL %v, max %d, now set %v; want 10m, 100000, true", time.Duration(l.idleTTL), l.max, l.now != nil)
		}
	})
}

func TestSweep(t *testing.T) {
	t.Run("idle buckets go, recent ones stay", func(t *testing.T) {
		l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 10, Burst: 5}), IdleTTL: time.Minute})
		for _, p := range []string{"a", "b", "c"} {
			l.Allow("api", p)
		}
		clk.Advance(30 * time.Second)
		l.Allow("api", "c")
		if n := l.Sweep(); n != 0 {
			t.Errorf("Sweep before IdleTTL evicted %d", n)
		}
		clk.Advance(30 * time.Second)
		if n := l.Sweep(); n != 2 {
			t.Errorf("Sweep at IdleTTL evicted %d, want 2", n)
		}
		if l.Len() != 1 || !l.has("api", "c") || l.has("api", "a") || l.has("api", "b") {
			t.Errorf("Len %d, c kept %v, a kept %v, b kept %v; want only c", l.Len(), l.has("api", "c"), l.has("api", "a"), l.has("api", "b"))
		}
		clk.Advance(30 * time.Second)
		if n := l.Sweep(); n != 1 || l.Len() != 0 {
			t.Errorf("Sweep evicted %d, Len %d; want 1, 0", n, l.Len())
		}
		if got := l.Allow("api", "a"); got.Remaining != 4 {
			t.Errorf("evicted principal came back with %+v, want a fresh bucket", got)
		}
	})

	t.Run("a bucket still refilling is kept until full", func(t *testing.T) {
		// One token per 1000s: past IdleTTL the bucket is still empty, and
		// dropping it would hand out a token early.
		l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 0.001, Burst: 1}), IdleTTL: time.Minute})
		drain(t, l, "login", "ip")
		clk.Advance(2 * time.Minute)
		if n := l.Sweep(); n != 0 {
			t.Errorf("Sweep evicted %d refilling buckets", n)
		}
		if got := l.Allow("login", "ip"); got.Allowed {
			t.Errorf("%+v, want still refused", got)
		}
		clk.Advance(1000 * time.Second)
		if n := l.Sweep(); n != 1 {
			t.Errorf("Sweep evicted %d, want the now full bucket", n)
		}
	})
}

func TestMaxEntries(t *testing.T) {
	const maxEntries, principals = 1000, 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: 10}), MaxEntries: maxEntries, IdleTTL: time.Hour})
	for i := range principals {
		clk.Advance(time.Millisecond)
		l.Allow("api", "p"+strconv.Itoa(i))
		if i%100 == 0 {
			l.Allow("api", "vip") // a recently used bucket survives the pressure
		}
		if n := l.Len(); n > maxEntries {
			t.Fatalf("after %d principals Len = %d > %d", i+1, n, maxEntries)
		}
	}
	if n := l.Len(); n < maxEntries-maxEntries/evictFraction-1 {
		t.Errorf("Len = %d, evicted far more than needed", n)
	}
	if !l.has("api", "vip") {
		t.Error("the recently used bucket was evicted")
	}
	if !l.has("api", "p"+strconv.Itoa(principals-1)) || l.has("api", "p0") {
		t.Error("eviction did not prefer the least recently used buckets")
	}
	held := 0
	for i := range l.shards {
		held += len(l.shards[i].m)
	}
	if held != l.Len() {
		t.Errorf("maps hold %d buckets, Len says %d", held, l.Len())
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(l)
	// Unbounded, 100k buckets take well over 20 MiB; 1000 take well under 1.
	const bound = 8 << 20
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KiB holding %d buckets", grew>>10, l.Len())
	if grew > bound {
		t.Errorf("heap grew by %d MiB for %d buckets, want < %d MiB", grew>>20, l.Len(), bound>>20)
	}
}

func TestMaxEntriesEdgeCases(t *testing.T) {
	t.Run("one entry", func(t *testing.T) {
		l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: 2}), MaxEntries: 1})
		for i := range 10 {
			if got := l.Allow("api", strconv.Itoa(i)); !got.Allowed || got.Remaining != 1 {
				t.Errorf("principal %d: %+v", i, got)
			}
			if l.Len() != 1 {
				t.Fatalf("Len = %d, want 1", l.Len())
			}
		}
	})
	t.Run("frozen clock, all ties", func(t *testing.T) {
		l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: 2}), MaxEntries: 128})
		for i := range 10_000 {
			l.Allow("api", strconv.Itoa(i))
			if l.Len() > 128 {
				t.Fatalf("Len = %d > 128", l.Len())
			}
		}
		if l.Len() < 126 {
			t.Errorf("Len = %d: ties evicted too many", l.Len())
		}
	})
}

func TestConcurrentHammer(t *testing.T) {
	const burst, goroutines, calls = 50, 64, 200
	for _, pre := range []bool{true, false} {
		name := "existing bucket"
		if !pre {
			name = "bucket created under the race"
		}
		t.Run(name, func(t *testing.T) {
			l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: burst})})
			if pre {
				l.Allow("other", "shared") // same shard, other bucket
			}
			var allowed atomic.Int64
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					<-start
					for range calls {
						d := l.Allow("api", "shared")
						if d.Allowed {
							allowed.Add(1)
						}
						if d.Remaining < 0 || d.Remaining >= burst || d.Limit != burst {
							t.Errorf("bad decision %+v", d)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if got := allowed.Load(); got != burst {
				t.Errorf("allowed %d, want exactly %d", got, burst)
			}
		})
	}

	t.Run("many principals with eviction, sweeps and reloads", func(t *testing.T) {
		const maxEntries = 64
		l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 5, Burst: 3}), MaxEntries: maxEntries, IdleTTL: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		var bg sync.WaitGroup
		bg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if n := l.Len(); n > maxEntries {
					t.Errorf("Len = %d > %d", n, maxEntries)
				}
				clk.Advance(time.Millisecond)
				if i%50 == 0 {
					l.Sweep()
					if err := l.SetRates(rates(Rate{PerSecond: float64(1 + i%7), Burst: 1 + i%5})); err != nil {
						t.Error(err)
					}
				}
				runtime.Gosched()
			}
		})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 3000 {
					l.Allow("g"+strconv.Itoa(i%3), strconv.Itoa((g*7919+i)%500))
				}
			})
		}
		wg.Wait()
		cancel()
		bg.Wait()
		held := 0
		for i := range l.shards {
			held += len(l.shards[i].m)
		}
		if held != l.Len() || held > maxEntries {
			t.Errorf("maps hold %d buckets, Len says %d, cap %d", held, l.Len(), maxEntries)
		}
	})
}

func TestRun(t *testing.T) {
	t.Run("stops when ctx is cancelled", func(t *testing.T) {
		l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: 1})})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			l.Run(ctx, time.Hour)
			close(done)
		}()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})

	t.Run("sweeps", func(t *testing.T) {
		l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 1, Burst: 1}), IdleTTL: time.Minute})
		l.Allow("api", "a")
		clk.Advance(time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			l.Run(ctx, time.Millisecond)
			close(done)
		}()
		defer func() {
			cancel()
			<-done
		}()
		for deadline := time.Now().Add(10 * time.Second); l.Len() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("Run never swept the idle bucket")
			}
		}
	})
}

func TestAllowDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	const group, principal = "api", "alice"
	tests := []struct {
		name  string
		setup func(*Limiter, *fakeClock)
		f     func(*Limiter, *fakeClock)
	}{
		{"existing bucket", nil, func(l *Limiter, _ *fakeClock) { l.Allow(group, principal) }},
		{"existing bucket, unknown group", nil, func(l *Limiter, _ *fakeClock) { l.Allow("unknown-group", principal) }},
		{"existing bucket, clock moving", nil, func(l *Limiter, clk *fakeClock) {
			clk.Advance(time.Microsecond)
			l.Allow(group, principal)
		}},
		{"existing bucket, refused", func(l *Limiter, _ *fakeClock) { drain(t, l, group, principal) }, func(l *Limiter, _ *fakeClock) {
			if l.Allow(group, principal).Allowed {
				t.Fatal("allowed")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clk := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 10, Burst: 100})})
			l.Allow(group, principal)
			l.Allow("unknown-group", principal)
			if tt.setup != nil {
				tt.setup(l, clk)
			}
			if got := testing.AllocsPerRun(1000, func() { tt.f(l, clk) }); got != 0 {
				t.Errorf("%v allocs per Allow, want 0", got)
			}
		})
	}

	t.Run("picking up new rates", func(t *testing.T) {
		l, _ := newLimiter(t, Options{Rates: rates(Rate{PerSecond: 10, Burst: 100})})
		l.Allow(group, principal)
		// As testing.AllocsPerRun does: one P, so fewer other goroutines
		// allocate between the two readings.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		var before, after runtime.MemStats
		for i := range 100 {
			// SetRates allocates; only the Allow that applies it is
			// measured. The readings count the whole process's mallocs
			// (a timer, the runtime), so an Allow is refused only if it
			// allocated in each of three tries: one that allocates
			// itself does every time.
			var n uint64
			for try := 0; try < 3; try++ {
				if err := l.SetRates(rates(Rate{PerSecond: float64(1 + (i+try)%3), Burst: 1 + (i+try)%4})); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&before)
				l.Allow(group, principal)
				runtime.ReadMemStats(&after)
				if n = after.Mallocs - before.Mallocs; n == 0 {
					break
				}
			}
			if n != 0 {
				t.Fatalf("Allow applying new rates made %d allocs, want 0", n)
			}
		}
	})
}

func TestNthSmallest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]int64, 1000)
	for i := range random {
		random[i] = r.Int64N(100)
	}
	tests := []struct {
		name string
		a    []int64
	}{
		{"one", []int64{7}},
		{"sorted", []int64{1, 2, 3, 4, 5, 6}},
		{"reversed", []int64{6, 5, 4, 3, 2, 1}},
		{"all equal", slices.Repeat([]int64{42}, 500)},
		{"two values", []int64{2, 1, 2, 1, 2, 1, 1, 2}},
		{"random with repeats", random},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sorted := slices.Sorted(slices.Values(tt.a))
			for k := range tt.a {
				if got := nthSmallest(slices.Clone(tt.a), k); got != sorted[k] {
					t.Fatalf("k=%d: got %d, want %d", k, got, sorted[k])
				}
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	l, err := New(Options{Rates: rates(Rate{PerSecond: 1e9, Burst: 1_000_000})})
	if err != nil {
		b.Fatal(err)
	}
	l.Allow("api", "alice")
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("api", "alice")
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l, err := New(Options{Rates: rates(Rate{PerSecond: 1e9, Burst: 1_000_000})})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, 10_000)
	for i := range names {
		names[i] = "principal-" + strconv.Itoa(i)
		l.Allow("api", names[i])
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			if i >= len(names) {
				i = 0
			}
			l.Allow("api", names[i])
		}
	})
}

func BenchmarkAllowNewPrincipals(b *testing.B) {
	l, err := New(Options{Rates: rates(Rate{PerSecond: 10, Burst: 20})})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, b.N)
	for i := range names {
		names[i] = "principal-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Allow("api", names[i])
	}
}
