package llm

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkRecordAndCheck is the ledger's hot path around every
// completion: the quota check before it and the usage record after it,
// spread over 100 keys with a quota set.
func BenchmarkRecordAndCheck(b *testing.B) {
	c := llmConfig()
	c.KeyQuotaTokens = 1 << 60
	s, _ := newService(b, c, Options{})
	ctx := context.Background()
	accounts := make([]string, 100)
	for i := range accounts {
		accounts[i] = "key_" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := accounts[i%len(accounts)]
		if err := s.CheckQuota(ctx, a); err != nil {
			b.Fatal(err)
		}
		if err := s.ledger.record(ctx, a, "gpt-test", Usage{InputTokens: 120, OutputTokens: 40}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckQuota is the check alone, as the skills API makes it
// before every invoke of an llm-granted skill.
func BenchmarkCheckQuota(b *testing.B) {
	c := llmConfig()
	c.KeyQuotaTokens = 1 << 60
	s, _ := newService(b, c, Options{})
	ctx := context.Background()
	s.CheckQuota(ctx, "key_a")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.CheckQuota(ctx, "key_a"); err != nil {
			b.Fatal(err)
		}
	}
}
