package llm

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/ratelimit"
	"github.com/porticohq/portico/internal/testtool"
)

// TestQuotaSharedAcrossNodes: two nodes, each with its own store, share
// a key's quota window through Redis: what one spends counts on the
// other. With Redis cut, each checks its own window (degraded, per node).
func TestQuotaSharedAcrossNodes(t *testing.T) {
	u, err := url.Parse(testtool.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testtool.NewCutProxy(t, u.Host)
	u.Host = proxy.Addr()
	prefix := testtool.RedisKeyPrefix()
	ctx := context.Background()
	node := func() *Service {
		sh, err := ratelimit.NewShared(ctx, ratelimit.SharedOptions{URL: u.String(), Prefix: prefix, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sh.Close() })
		s, _ := newService(t, config.LLM{}, Options{Counters: sh})
		return s
	}
	a, b2 := node(), node()
	const quota, days = 1000, 30
	if err := a.ledger.check(ctx, "key_q", quota, days); err != nil {
		t.Fatalf("a fresh key: %v", err)
	}
	if err := a.ledger.record(ctx, "key_q", "m", Usage{InputTokens: 400, OutputTokens: 200}); err != nil {
		t.Fatal(err)
	}
	if err := b2.ledger.record(ctx, "key_q", "m", Usage{InputTokens: 500}); err != nil {
		t.Fatal(err)
	}
	// Node b's own ledger holds 500 tokens; the shared window 1100.
	if err := b2.ledger.check(ctx, "key_q", quota, days); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("node b over the shared quota: %v, want ErrQuotaExceeded", err)
	}
	if err := a.ledger.check(ctx, "key_q", quota, days); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("node a over the shared quota: %v, want ErrQuotaExceeded", err)
	}
	// A key whose count another node seeded first sums the same.
	if err := b2.ledger.check(ctx, "key_other", quota, days); err != nil {
		t.Fatalf("another key: %v", err)
	}

	proxy.Cut()
	if err := b2.ledger.check(ctx, "key_q", quota, days); err != nil {
		t.Fatalf("node b without Redis checks its own 500 tokens: %v", err)
	}
}
