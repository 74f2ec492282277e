// Package ratelimit implements token-bucket rate limiting per principal per
// endpoint group, for the gateway's HTTP API.
//
// Every (group, principal) pair has its own bucket, a golang.org/x/time/rate
// Limiter driven by an injectable clock. Groups name a Rate; a group without
// one uses the "default" rate but still gets buckets of its own. Rates can be
// changed live with SetRates: a bucket picks the new numbers up on its next
// check and keeps the tokens it has.
//
// Buckets are kept in a sharded map. Checking an existing bucket takes one
// shard lock and allocates nothing. Memory is bounded: Sweep (or Run) drops
// buckets idle for IdleTTL, and the number of buckets never exceeds
// MaxEntries; when the table is full, idle buckets are dropped first and
// then the least recently used ones.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	// defaultGroup is the group whose rate applies to groups that have none.
	defaultGroup = "default"

	defaultIdleTTL    = 10 * time.Minute
	defaultMaxEntries = 100_000

	// shardCount is a power of two so that a mask selects the shard.
	shardCount = 64
	// evictFraction: when the table is full, room is made for
	// MaxEntries/evictFraction new buckets at once, so the scan that picks
	// the victims is paid once per that many insertions.
	evictFraction = 16
)

// Rate is a bucket: PerSecond tokens refill per second, Burst is the bucket size.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Options configures a Limiter. Zero values of IdleTTL, MaxEntries and Now
// select the defaults.
type Options struct {
	// Rates maps a group name to its rate; it must contain "default".
	Rates map[string]Rate
	// IdleTTL is how long a bucket may go unused before Sweep evicts it
	// (default 10m). A bucket that has not refilled to full is kept until
	// it has, so eviction never hands out tokens early.
	IdleTTL time.Duration
	// MaxEntries is a hard cap on the buckets kept (default 100_000). When
	// the table is full, idle buckets are swept and, if it is still full,
	// the least recently used buckets are evicted, so memory stays bounded.
	MaxEntries int
	// Now is the clock, injectable for tests (default time.Now).
	Now func() time.Time
}

// Decision is what one check decided, with what the rate-limit headers need.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the bucket size (X-RateLimit-Limit).
	Limit int
	// Remaining is the whole tokens left after this request
	// (X-RateLimit-Remaining); never negative.
	Remaining int
	// Reset is the time until the bucket is full again (X-RateLimit-Reset,
	// in seconds rounded up by the caller).
	Reset time.Duration
	// RetryAfter is, when the request is refused, the time until one token
	// is available; 0 when allowed.
	RetryAfter time.Duration
}

// Limiter holds the token buckets. It is safe for concurrent use.
type Limiter struct {
	now     func() time.Time
	idleTTL int64 // nanoseconds
	max     int64
	batch   int64 // buckets freed at once when the table is full
	seed    maphash.Seed

	rates atomic.Pointer[rateSet]
	setMu sync.Mutex // serializes SetRates

	shared atomic.Pointer[sharing] // Share: buckets in Redis first

	count atomic.Int64 // buckets held plus slots reserved for ones being inserted

	evictMu sync.Mutex // serializes makeRoom; guards scratch and cursor
	scratch []int64
	cursor  int

	shards [shardCount]shard
}

// rateSet is an immutable snapshot of the rates; gen changes with every
// SetRates so that a bucket can tell cheaply whether its rate is current.
type rateSet struct {
	gen   uint64
	rates map[string]Rate
	def   Rate
}

func (s *rateSet) rate(group string) Rate {
	if r, ok := s.rates[group]; ok {
		return r
	}
	return s.def
}

type key struct {
	group, principal string
}

type shard struct {
	mu sync.Mutex
	m  map[key]*bucket
	_  [48]byte // keep shards on separate cache lines
}

type bucket struct {
	lim     *rate.Limiter
	rate    Rate   // the rate lim is set to
	gen     uint64 // the rateSet generation rate came from
	lastUse int64  // unix nanoseconds of the last check
	fullAt  int64  // unix nanoseconds at which the bucket is full, as of the last check
}

// New returns a Limiter. It fails when Rates lacks "default" or holds an
// invalid rate (PerSecond not positive and finite, or Burst < 1), naming the
// group, or when IdleTTL or MaxEntries is negative.
func New(o Options) (*Limiter, error) {
	set, err := newRateSet(o.Rates, 1)
	if err != nil {
		return nil, err
	}
	if o.IdleTTL < 0 {
		return nil, fmt.Errorf("ratelimit: IdleTTL must not be negative (got %v)", o.IdleTTL)
	}
	if o.MaxEntries < 0 {
		return nil, fmt.Errorf("ratelimit: MaxEntries must not be negative (got %d)", o.MaxEntries)
	}
	l := &Limiter{
		now:     o.Now,
		idleTTL: int64(o.IdleTTL),
		max:     int64(o.MaxEntries),
		seed:    maphash.MakeSeed(),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.idleTTL == 0 {
		l.idleTTL = int64(defaultIdleTTL)
	}
	if l.max == 0 {
		l.max = defaultMaxEntries
	}
	l.batch = max(1, l.max/evictFraction)
	for i := range l.shards {
		l.shards[i].m = make(map[key]*bucket)
	}
	l.rates.Store(set)
	return l, nil
}

func newRateSet(rates map[string]Rate, gen uint64) (*rateSet, error) {
	def, ok := rates[defaultGroup]
	if !ok {
		return nil, errors.New(`ratelimit: rates must contain the "default" group`)
	}
	groups := make([]string, 0, len(rates))
	for g := range rates {
		groups = append(groups, g)
	}
	slices.Sort(groups) // report the first invalid group deterministically
	for _, g := range groups {
		if err := validate(rates[g]); err != nil {
			return nil, fmt.Errorf("ratelimit: group %q: %w", g, err)
		}
	}
	m := make(map[string]Rate, len(rates))
	for g, r := range rates {
		m[strings.Clone(g)] = r
	}
	return &rateSet{gen: gen, rates: m, def: def}, nil
}

func validate(r Rate) error {
	if !(r.PerSecond > 0) || math.IsInf(r.PerSecond, 1) {
		return fmt.Errorf("PerSecond must be a positive finite number (got %v)", r.PerSecond)
	}
	if r.Burst < 1 {
		return fmt.Errorf("Burst must be at least 1 (got %d)", r.Burst)
	}
	return nil
}

// Allow takes one token from the bucket of principal in group and reports
// the decision. An unknown group uses the "default" rate but its own buckets
// (buckets are keyed by group too). With Share, the bucket in Redis
// decides while Redis answers, and the local one otherwise.
func (l *Limiter) Allow(group, principal string) Decision {
	if sh := l.shared.Load(); sh != nil && sh.s.up.Load() {
		if d, ok := sh.s.take(sh.ns, group, principal, l.rates.Load().rate(group)); ok {
			return d
		}
	}
	k := key{group, principal}
	s := &l.shards[maphash.String(l.seed, principal)&(shardCount-1)]

	s.mu.Lock()
	if b := s.m[k]; b != nil {
		// The clock and the rates are read under the lock, so that each
		// bucket sees time and rate generations only move forward.
		d := b.check(l.now(), l.rates.Load(), group)
		s.mu.Unlock()
		return d
	}
	s.mu.Unlock()
	return l.allowNew(s, k)
}

// allowNew is Allow's slow path for a bucket that does not exist yet.
func (l *Limiter) allowNew(s *shard, k key) Decision {
	l.reserve()
	s.mu.Lock()
	now, set := l.now(), l.rates.Load()
	b := s.m[k]
	if b != nil {
		// Someone else inserted it meanwhile; give the slot back.
		l.count.Add(-1)
	} else {
		r := set.rate(k.group)
		b = &bucket{
			lim:  rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst),
			rate: r,
			gen:  set.gen,
		}
		// Clone so that a key never pins a larger buffer it was cut from.
		s.m[key{strings.Clone(k.group), strings.Clone(k.principal)}] = b
	}
	d := b.check(now, set, k.group)
	s.mu.Unlock()
	return d
}

// reserve takes a slot for a new bucket, making room when the table is full.
func (l *Limiter) reserve() {
	for {
		c := l.count.Load()
		if c < l.max {
			if l.count.CompareAndSwap(c, c+1) {
				return
			}
			continue
		}
		if l.makeRoom() == 0 {
			// Every slot is reserved by insertions still in flight.
			runtime.Gosched()
		}
	}
}

// check takes one token; the caller holds the shard lock.
func (b *bucket) check(now time.Time, set *rateSet, group string) Decision {
	if b.gen != set.gen {
		if r := set.rate(group); r != b.rate {
			// Tokens are kept: time up to now accrues at the old rate,
			// and a lower burst caps the tokens on the check below.
			if r.PerSecond != b.rate.PerSecond {
				b.lim.SetLimitAt(now, rate.Limit(r.PerSecond))
			}
			if r.Burst != b.rate.Burst {
				b.lim.SetBurstAt(now, r.Burst)
			}
			b.rate = r
		}
		b.gen = set.gen
	}

	ok := b.lim.AllowN(now, 1)
	tokens := max(b.lim.TokensAt(now), 0)
	d := Decision{
		Allowed:   ok,
		Limit:     b.rate.Burst,
		Remaining: int(tokens), // tokens >= 0, so this is the floor
		Reset:     durationFor(float64(b.rate.Burst)-tokens, b.rate.PerSecond),
	}
	if !ok {
		d.RetryAfter = max(durationFor(1-tokens, b.rate.PerSecond), 1)
	}
	nowNs := now.UnixNano()
	b.lastUse = nowNs
	b.fullAt = nowNs + int64(d.Reset)
	if b.fullAt < nowNs { // overflow
		b.fullAt = math.MaxInt64
	}
	return d
}

// durationFor is the time perSecond takes to refill tokens, to the nearest
// nanosecond: rounding (not ceiling) keeps float noise such as 2.0000000001s
// from turning into a whole extra second once the caller rounds up.
func durationFor(tokens, perSecond float64) time.Duration {
	if tokens <= 0 {
		return 0
	}
	ns := math.Round(tokens * float64(time.Second) / perSecond)
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// idle reports whether b may be dropped at nowNs without changing any
// future decision: unused for ttl, and refilled to full.
func (b *bucket) idle(nowNs, ttl int64) bool {
	return nowNs-b.lastUse >= ttl && nowNs >= b.fullAt
}

// SetRates replaces the rates live, for a config reload. It validates like
// New and, on error, changes nothing. Existing buckets take the new rate and
// burst on their next check, keeping their tokens (a lower burst caps them);
// groups no longer listed fall back to the "default" rate.
func (l *Limiter) SetRates(rates map[string]Rate) error {
	l.setMu.Lock()
	defer l.setMu.Unlock()
	set, err := newRateSet(rates, l.rates.Load().gen+1)
	if err != nil {
		return err
	}
	l.rates.Store(set)
	return nil
}

// Rate returns the rate in force for a group: its own, or "default"'s.
func (l *Limiter) Rate(group string) Rate {
	return l.rates.Load().rate(group)
}

// Len returns the number of buckets held (counting, for a moment, those
// being inserted).
func (l *Limiter) Len() int {
	return int(l.count.Load())
}

// Sweep evicts the buckets idle for IdleTTL and returns how many it evicted.
// A bucket that has not yet refilled to full is kept until it has, so that
// eviction never grants a fresh burst early.
func (l *Limiter) Sweep() int {
	return l.dropIdle(nil)
}

// dropIdle deletes every idle bucket and returns how many; keep, when set,
// is told the last use of each bucket that stays.
func (l *Limiter) dropIdle(keep func(lastUse int64)) int {
	nowNs, ttl := l.now().UnixNano(), l.idleTTL
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, b := range s.m {
			if b.idle(nowNs, ttl) {
				delete(s.m, k)
				l.count.Add(-1)
				n++
			} else if keep != nil {
				keep(b.lastUse)
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Run calls Sweep every interval until ctx is done. It blocks; callers run
// it in a goroutine. An interval <= 0 means IdleTTL/2.
func (l *Limiter) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = max(time.Duration(l.idleTTL)/2, time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Sweep()
		}
	}
}

// makeRoom is called when the table is full. It drops idle buckets and, if
// that frees too little, the least recently used ones, leaving room for
// l.batch insertions. It returns how many buckets it dropped.
func (l *Limiter) makeRoom() int {
	l.evictMu.Lock()
	defer l.evictMu.Unlock()
	if l.count.Load() < l.max {
		return 1 // someone else made room
	}
	// Pass 1: drop idle buckets; note when the others were last used.
	used := l.scratch[:0]
	freed := l.dropIdle(func(lastUse int64) { used = append(used, lastUse) })
	l.scratch = used

	// Pass 2: drop the least recently used buckets, down to max-batch.
	need := int(l.count.Load() - (l.max - l.batch))
	if need > 0 && len(used) > 0 {
		need = min(need, len(used))
		cutoff := nthSmallest(used, need-1)
		ties := need // how many of those last used at cutoff go
		for _, u := range used {
			if u < cutoff {
				ties--
			}
		}
		// Rotate the starting shard so ties are not always broken
		// against the same shards.
		l.cursor = (l.cursor + 1) % shardCount
		for j := 0; j < shardCount && need > 0; j++ {
			s := &l.shards[(l.cursor+j)%shardCount]
			s.mu.Lock()
			for k, b := range s.m {
				if need == 0 {
					break
				}
				// A bucket used since pass 1 has a later lastUse and stays.
				if b.lastUse < cutoff || (b.lastUse == cutoff && ties > 0) {
					if b.lastUse == cutoff {
						ties--
					}
					delete(s.m, k)
					l.count.Add(-1)
					freed++
					need--
				}
			}
			s.mu.Unlock()
		}
	}

	// Pass 3, should every candidate have been used meanwhile: drop
	// arbitrary buckets until there is a free slot.
	for j := 0; j < shardCount && l.count.Load() >= l.max; j++ {
		s := &l.shards[(l.cursor+j)%shardCount]
		s.mu.Lock()
		for k := range s.m {
			if l.count.Load() < l.max {
				break
			}
			delete(s.m, k)
			l.count.Add(-1)
			freed++
		}
		s.mu.Unlock()
	}
	return freed
}

// nthSmallest returns the k-th smallest value of a (0-based), reordering a.
// It is a quickselect with three-way partitioning, so runs of equal values,
// common for last-use times, cost no more than distinct ones.
func nthSmallest(a []int64, k int) int64 {
	lo, hi := 0, len(a)
	for hi-lo > 1 {
		p := a[lo+(hi-lo)/2]
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch {
			case a[i] < p:
				a[lt], a[i] = a[i], a[lt]
				lt++
				i++
			case a[i] > p:
				gt--
				a[i], a[gt] = a[gt], a[i]
			default:
				i++
			}
		}
		// a[lo:lt] < p, a[lt:gt] == p, a[gt:hi] > p
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return p
		}
	}
	return a[lo]
}
