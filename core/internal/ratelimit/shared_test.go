package ratelimit

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/internal/testtool"
)

// testRetry is the tests' cluster.redis_retry_interval.
const testRetry = 100 * time.Millisecond

// sharedNodes returns n limiters of rate r that share buckets through
// their own Shared each (as n nodes do), on the Redis at redisURL.
func sharedNodes(t testing.TB, redisURL, prefix string, n int, r Rate) ([]*Limiter, []*Shared) {
	t.Helper()
	var ls []*Limiter
	var ss []*Shared
	for range n {
		s, err := NewShared(context.Background(), SharedOptions{URL: redisURL, Prefix: prefix, Timeout: 200 * time.Millisecond, RetryInterval: testRetry})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		l, err := New(Options{Rates: map[string]Rate{"default": r}})
		if err != nil {
			t.Fatal(err)
		}
		l.Share(s, "api")
		ls, ss = append(ls, l), append(ss, s)
	}
	return ls, ss
}

// TestSharedAcrossThreeNodes hammers one bucket through three nodes
// round-robin for 5 s: together they accept what one bucket allows (its
// burst plus its rate over the time, and an in-flight check per node),
// not three times it.
func TestSharedAcrossThreeNodes(t *testing.T) {
	const n, burst = 200.0, 50
	nodes, shared := sharedNodes(t, testtool.Redis(t), testtool.RedisKeyPrefix(), 3, Rate{PerSecond: n, Burst: burst})
	// The buckets run on Redis's clock, so the time they had to refill is
	// measured on it too (TIME before and after).
	redisNow := func() time.Time {
		tm, err := shared[0].client.Time(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	var accepted, checks atomic.Int64
	var wg sync.WaitGroup
	began := redisNow()
	start := time.Now()
	stop := start.Add(5 * time.Second)
	for w := range 6 {
		wg.Go(func() {
			for i := w; time.Now().Before(stop); i++ {
				checks.Add(1)
				if nodes[i%3].Allow("default", "key_hammered").Allowed {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := redisNow().Sub(began).Seconds()
	for i, s := range shared {
		if s.Mode() != "shared" {
			t.Fatalf("node %d fell back to local limits during the run", i)
		}
	}
	got := float64(accepted.Load())
	hi, lo := burst+n*elapsed+3, 0.5*n*elapsed
	t.Logf("%d checks, %.0f accepted in %.2fs (bounds %.0f..%.0f)", checks.Load(), got, elapsed, lo, hi)
	if got > hi || got < lo {
		t.Fatalf("accepted %.0f in %.2fs, want between %.0f and %.0f (one bucket of %v/s, burst %d, for three nodes)", got, elapsed, lo, hi, n, burst)
	}
}

// TestSharedDecision: the shared bucket answers like a local one: the
// burst, then refusals with a Retry-After of one token's refill, and the
// headers' numbers.
func TestSharedDecision(t *testing.T) {
	nodes, _ := sharedNodes(t, testtool.Redis(t), testtool.RedisKeyPrefix(), 2, Rate{PerSecond: 1, Burst: 3})
	for i := range 3 {
		d := nodes[i%2].Allow("default", "p")
		if !d.Allowed || d.Limit != 3 || d.Remaining != 2-i {
			t.Fatalf("check %d: %+v", i, d)
		}
	}
	d := nodes[1].Allow("default", "p")
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second || d.Reset <= 2*time.Second || d.Reset > 3*time.Second {
		t.Fatalf("over the burst: %+v", d)
	}
	if d := nodes[0].Allow("default", "other"); !d.Allowed {
		t.Fatalf("another principal: %+v", d)
	}
	if d := nodes[0].Allow("admin", "p"); !d.Allowed {
		t.Fatalf("another group: %+v", d)
	}
}

// TestSharedFallsBackAndResumes: with Redis gone, every node keeps
// limiting with its own buckets and says "local"; once Redis is back,
// "shared" resumes within a few retry intervals.
func TestSharedFallsBackAndResumes(t *testing.T) {
	u, err := url.Parse(testtool.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testtool.NewCutProxy(t, u.Host)
	u.Host = proxy.Addr()
	nodes, shared := sharedNodes(t, u.String(), testtool.RedisKeyPrefix(), 3, Rate{PerSecond: 0.001, Burst: 2})
	for i := range 2 {
		if !nodes[i].Allow("default", "p").Allowed {
			t.Fatalf("check %d refused", i)
		}
	}
	if nodes[2].Allow("default", "p").Allowed {
		t.Fatal("the shared bucket allowed a third check")
	}

	proxy.Cut()
	for i, l := range nodes {
		// Each node now limits alone: its own burst of 2, then refusals.
		a, b, c := l.Allow("default", "p"), l.Allow("default", "p"), l.Allow("default", "p")
		if !a.Allowed || !b.Allowed || c.Allowed {
			t.Fatalf("node %d without Redis: %v %v %v, want allowed, allowed, refused", i, a.Allowed, b.Allowed, c.Allowed)
		}
		if shared[i].Mode() != "local" {
			t.Fatalf("node %d says %s without Redis", i, shared[i].Mode())
		}
	}

	proxy.Restore()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range shared {
		go s.Run(ctx)
	}
	deadline := time.Now().Add(10 * testRetry) // the bound: ten retry intervals
	for _, s := range shared {
		for s.Mode() != "shared" {
			if time.Now().After(deadline) {
				t.Fatal("shared limits did not resume once Redis was back")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if s.Changes() != 2 {
			t.Errorf("%d mode changes, want 2 (down once, up once)", s.Changes())
		}
	}
	if nodes[0].Allow("default", "p").Allowed {
		t.Fatal("the shared bucket, still empty, allowed a check after the outage")
	}
}

// BenchmarkAllowShared is one check through Redis (a round trip to the
// Redis of PORTICO_TEST_REDIS_URL), beside BenchmarkAllow's local check.
func BenchmarkAllowShared(b *testing.B) {
	nodes, shared := sharedNodes(b, testtool.Redis(b), testtool.RedisKeyPrefix(), 1, Rate{PerSecond: 1e9, Burst: 1 << 30})
	l := nodes[0]
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("default", "key_bench")
	}
	if shared[0].Mode() != "shared" {
		b.Fatal("fell back to local limits")
	}
}

// TestSharedRateChange: a rate changed live (a config reload) applies to
// the shared buckets at the next check, keeping the tokens they hold.
func TestSharedRateChange(t *testing.T) {
	nodes, _ := sharedNodes(t, testtool.Redis(t), testtool.RedisKeyPrefix(), 2, Rate{PerSecond: 0.001, Burst: 1})
	if !nodes[0].Allow("default", "p").Allowed || nodes[1].Allow("default", "p").Allowed {
		t.Fatal("a burst of 1 did not hold across the nodes")
	}
	for _, l := range nodes {
		if err := l.SetRates(map[string]Rate{"default": {PerSecond: 1000, Burst: 5}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // refills well past the new burst
	d := nodes[1].Allow("default", "p")
	if !d.Allowed || d.Limit != 5 || d.Remaining != 4 {
		t.Fatalf("after the rate change: %+v, want allowed with 4 of 5 left", d)
	}
}
