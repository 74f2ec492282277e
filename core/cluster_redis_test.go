package core_test

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/internal/testtool"
)

// startRedisNodes starts n gateways (each with its own Badger) that share
// the Redis at redisURL under one key prefix of their own.
func startRedisNodes(t *testing.T, redisURL, config string, n int) []*gw {
	t.Helper()
	prefix := testtool.RedisKeyPrefix()
	key := auth.NewSecret()
	var nodes []*gw
	for range n {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "portico.toml"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := startWith(t, dir, io.Discard, key, "PORTICO_CLUSTER__REDIS_URL="+redisURL, "PORTICO_CLUSTER__REDIS_KEY_PREFIX="+prefix,
			"PORTICO_CLUSTER__REDIS_RETRY_INTERVAL=50ms")
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, g)
	}
	return nodes
}

func rateLimitMode(t *testing.T, g *gw) any {
	t.Helper()
	return get(g.do(t, "GET", g.url+"/api/v1/status", "").json(t), "ratelimit.mode")
}

// TestLockoutAcrossNodes: failed credentials spread over three nodes
// sharing one Redis lock the address out after auth.failures_per_minute
// in all, not three times that; with Redis cut, each node locks out on
// its own count and says "local"; with Redis back, "shared" resumes.
func TestLockoutAcrossNodes(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testtool.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testtool.NewCutProxy(t, u.Host)
	u.Host = proxy.Addr()
	const allowed = 4
	nodes := startRedisNodes(t, u.String(), small+fmt.Sprintf("[auth]\nfailures_per_minute = %d\n", allowed), 3)
	for i, g := range nodes {
		if m := rateLimitMode(t, g); m != "shared" {
			t.Fatalf("node %d: ratelimit.mode = %v, want shared", i+1, m)
		}
	}
	bad := func(g *gw) int {
		return do(t, "GET", g.url+"/api/v1/skills", "", "X-API-Key", auth.NewSecret()).status
	}
	for i := range allowed {
		if s := bad(nodes[i%3]); s != 401 {
			t.Fatalf("failed attempt %d: %d, want 401", i+1, s)
		}
	}
	for i, g := range nodes {
		if s := bad(g); s != 429 {
			t.Fatalf("node %d after %d failures spread over the nodes: %d, want 429", i+1, allowed, s)
		}
	}
	// The shared API buckets answer the same headers as one node's.
	r := nodes[0].do(t, "GET", nodes[0].url+"/api/v1/skills", "")
	if r.status != 200 || r.header.Get("X-RateLimit-Limit") == "" || r.header.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("a good key through shared buckets: %d %v", r.status, r.header)
	}

	proxy.Cut()
	// A check fails over to the node's own buckets at once: each node
	// allows its own count of failures again (its local bucket is full).
	for i, g := range nodes {
		if s := bad(g); s != 401 {
			t.Fatalf("node %d without Redis, failure 1: %d, want 401", i+1, s)
		}
		// Asked before this node's own count runs out (the lockout
		// refuses every request of the address, the status's too).
		if m := rateLimitMode(t, g); m != "local" {
			t.Fatalf("node %d without Redis: mode %v, want local", i+1, m)
		}
		if r := g.do(t, "GET", g.url+"/metrics", ""); !slices.Contains(strings.Split(string(r.body), "\n"), "portico_ratelimit_shared 0") {
			t.Fatalf("node %d without Redis: /metrics lacks portico_ratelimit_shared 0", i+1)
		}
		for j := 1; j < allowed; j++ {
			if s := bad(g); s != 401 {
				t.Fatalf("node %d without Redis, failure %d: %d, want 401", i+1, j+1, s)
			}
		}
		if s := bad(g); s != 429 {
			t.Fatalf("node %d without Redis past its own count: %d, want 429", i+1, s)
		}
	}

	proxy.Restore()
	// cluster.redis_retry_interval is 50 ms; eventually's deadline is
	// far beyond ten of them.
	// The address is locked out on every node now (its status requests
	// too), so the mode is read from the gateway itself.
	for i, g := range nodes {
		eventually(t, fmt.Sprintf("node %d sharing again", i+1), func() bool { return g.RateLimitMode() == "shared" })
	}
	if s := bad(nodes[1]); s != 429 {
		t.Fatalf("after the outage the shared lockout still holds: %d, want 429", s)
	}
}
