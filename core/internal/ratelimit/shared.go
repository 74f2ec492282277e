package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared keeps token buckets in Redis, so that gateway nodes sharing one
// Redis share every bucket: a Limiter given one with Share checks it first.
// One check is one round trip: a Lua script, loaded once and run with
// EVALSHA, refills and takes from the bucket atomically on Redis's own
// clock, so the nodes' clocks need not agree.
//
// When Redis fails or is slower than the timeout, Shared turns itself
// off (Mode "local", logged once) and the Limiters fall back to their
// local buckets, each node enforcing the configured rates as if alone:
// degraded, never unlimited. Run probes Redis every retry interval while
// it is off, and turns it on again (logged once) when it answers.
type Shared struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	retry   time.Duration
	log     *slog.Logger
	up      atomic.Bool
	changes atomic.Int64 // times the mode changed, for tests and metrics
}

// SharedOptions configure Shared (cluster.redis_*).
type SharedOptions struct {
	URL      string // redis://[user:password@]host:port/db, or rediss:// for TLS
	PoolSize int    // 0: go-redis's default (10 per CPU)
	// Timeout bounds one check, dial included; past it the check is made
	// locally and Shared turns off until Redis answers a probe.
	Timeout time.Duration
	// RetryInterval is how often Run probes Redis while Shared is off.
	RetryInterval time.Duration
	// Prefix starts every key Shared writes (buckets expire by
	// themselves once full).
	Prefix string
	Logger *slog.Logger
}

// bucketScript is the token bucket: tokens and the time of the last
// check (Redis TIME, in microseconds) in a hash; it refills at rate per
// second up to burst, takes one token when it has one, and expires once
// it would be full again. It answers allowed, the whole tokens left, the
// microseconds until full, and those until a token when refused. Numbers
// are stored exactly: tostring's 14 digits would round the time by up to
// 50 µs, a refill the bucket never earned on every check.
var bucketScript = redis.NewScript(`
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(s[1]), tonumber(s[2])
if tokens == nil or at == nil then
  tokens, at = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local full = math.ceil((burst - tokens) * 1000000 / rate)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(full / 1000) + 1000)
local retry = 0
if allowed == 0 then
  retry = math.ceil((1 - tokens) * 1000000 / rate)
end
return {allowed, math.floor(tokens), full, retry}
`)

// NewShared connects to Redis. It does not fail when Redis cannot be
// reached: Shared starts off and Run turns it on once Redis answers.
func NewShared(ctx context.Context, o SharedOptions) (*Shared, error) {
	if strings.TrimSpace(o.URL) == "" {
		return nil, errors.New("cluster.redis_url is empty")
	}
	opts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis_url: %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	opts.MaxRetries = -1 // a failed check falls back at once; Run retries
	opts.ContextTimeoutEnabled = true
	if o.PoolSize > 0 {
		opts.PoolSize = o.PoolSize
	}
	s := &Shared{client: redis.NewClient(opts), prefix: o.Prefix, timeout: o.Timeout, retry: o.RetryInterval, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.probe(ctx); err != nil {
		s.log.Warn("Redis is unreachable: rate limits are local to this node until it answers", "error", err, "retry_interval", s.retry)
	} else {
		s.up.Store(true)
	}
	return s, nil
}

// probe pings Redis and loads the script.
func (s *Shared) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return err
	}
	return bucketScript.Load(ctx, s.client).Err()
}

// Mode is "shared" while buckets are in Redis, "local" while Redis is
// failing and each node limits alone.
func (s *Shared) Mode() string {
	if s.up.Load() {
		return "shared"
	}
	return "local"
}

// Changes counts the times the mode changed.
func (s *Shared) Changes() int64 { return s.changes.Load() }

// Run probes Redis every retry interval while Shared is off, until ctx
// ends.
func (s *Shared) Run(ctx context.Context) {
	t := time.NewTicker(s.retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.up.Load() {
			continue
		}
		if err := s.probe(ctx); err == nil && !s.up.Swap(true) {
			s.changes.Add(1)
			s.log.Info("Redis answers again: rate limits are shared", "mode", "shared")
		}
	}
}

// down turns Shared off after a failed check, logging the change once.
func (s *Shared) down(err error) {
	if s.up.Swap(false) {
		s.changes.Add(1)
		s.log.Warn("Redis failed: rate limits are local to this node until it answers again", "mode", "local", "error", err, "retry_interval", s.retry)
	}
}

// take takes a token from the shared bucket ns/group/principal of rate r.
// ok is false when Redis failed: the caller decides locally.
func (s *Shared) take(ns, group, principal string, r Rate) (Decision, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	key := s.prefix + ns + ":" + group + ":" + principal
	res, err := bucketScript.Run(ctx, s.client, []string{key}, r.PerSecond, r.Burst).Int64Slice()
	if err == nil && len(res) != 4 {
		err = fmt.Errorf("the bucket script answered %d values", len(res))
	}
	if err != nil {
		s.down(err)
		return Decision{}, false
	}
	d := Decision{Allowed: res[0] == 1, Limit: r.Burst, Remaining: int(max(0, res[1])), Reset: time.Duration(res[2]) * time.Microsecond}
	if !d.Allowed {
		d.RetryAfter = time.Duration(res[3]) * time.Microsecond
	}
	return d, true
}

// errLocal is a shared call while Redis is failing.
var errLocal = errors.New("ratelimit: Redis is failing; limits are local")

// addScript adds to a day's token count only if the count exists:
// SumTokens creates it from the ledger, so usage recorded before the
// count existed is never lost to an INCRBY that started it at zero.
var addScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return -1
`)

func (s *Shared) quotaKey(account, day string) string {
	return s.prefix + "quota:" + account + ":" + day
}

// AddTokens adds n to account's token count of day (YYYY-MM-DD), if the
// count exists; it implements llm.Counters.
func (s *Shared) AddTokens(account, day string, n int64) error {
	if !s.up.Load() {
		return errLocal
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := addScript.Run(ctx, s.client, []string{s.quotaKey(account, day)}, n).Err(); err != nil {
		s.down(err)
		return err
	}
	return nil
}

// SumTokens sums account's token counts of days, creating each missing
// one from seed(day) (the ledger's sum of that day) with SET NX, kept
// for as many days as it can count in; it implements llm.Counters.
func (s *Shared) SumTokens(account string, days []string, seed func(day string) (int64, error)) (int64, error) {
	if !s.up.Load() {
		return 0, errLocal
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	keys := make([]string, len(days))
	for i, d := range days {
		keys[i] = s.quotaKey(account, d)
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		s.down(err)
		return 0, err
	}
	var total int64
	for i, v := range vals {
		if v != nil {
			n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("ratelimit: quota count %s: %w", keys[i], err)
			}
			total += n
			continue
		}
		n, err := seed(days[i])
		if err != nil {
			return 0, err
		}
		ttl := time.Duration(len(days)+1) * 24 * time.Hour
		if err := s.client.SetNX(ctx, keys[i], n, ttl).Err(); err != nil {
			s.down(err)
			return 0, err
		}
		if n, err = s.client.Get(ctx, keys[i]).Int64(); err != nil { // another node may have seeded it first
			s.down(err)
			return 0, err
		}
		total += n
	}
	return total, nil
}

// Close closes the connections.
func (s *Shared) Close() error { return s.client.Close() }

// sharing is a Limiter's shared store and the namespace of its buckets.
type sharing struct {
	s  *Shared
	ns string
}

// Mode is "shared" while l's buckets are in Redis and "local" otherwise
// (no Share, or Redis failing).
func (l *Limiter) Mode() string {
	if sh := l.shared.Load(); sh != nil {
		return sh.s.Mode()
	}
	return "local"
}

// Share makes l check the buckets in s first, under namespace ns (one per
// limiter: "api", "auth_failures"), and its own only while s is off.
// Nil stops sharing.
func (l *Limiter) Share(s *Shared, ns string) {
	if s == nil {
		l.shared.Store(nil)
		return
	}
	l.shared.Store(&sharing{s: s, ns: ns})
}
