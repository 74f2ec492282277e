package session

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/store"
)

var (
	bigOnce sync.Once
	big     *fixture
)

// bigFixture holds 100,000 sessions of 1,000 end users on 3 channels,
// made once for all the listing benchmarks.
func bigFixture(b *testing.B) *fixture {
	bigOnce.Do(func() {
		// Not newFixture: its store would close when the first benchmark
		// using it ends.
		kv, err := store.OpenMemory()
		if err != nil {
			b.Fatal(err)
		}
		big = &fixture{kv: kv, cfg: config.Default(), skills: &fakeSkills{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		big.svc = big.open(b)
		ctx := context.Background()
		for i := range 100_000 {
			big.now = big.now.Add(time.Millisecond)
			if _, err := big.svc.Create(ctx, CreateInput{Channel: []string{"api", "ws", "telegram"}[i%3], UserID: fmt.Sprintf("user-%d", i%1000), Owner: "ops"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	return big
}

// BenchmarkList100k lists pages of 50 out of 100,000 sessions, each with an
// exact total: go test -run '^$' -bench List100k -benchmem ./core/session
func BenchmarkList100k(b *testing.B) {
	f := bigFixture(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		f     Filter
		total int
	}{
		{"first-page", Filter{AnyOwner: true, Limit: 50}, 100_000},
		{"near-the-end", Filter{AnyOwner: true, Limit: 50, Offset: 99_900}, 100_000},
		{"by-user", Filter{AnyOwner: true, UserID: "user-500", Limit: 50}, 100},
		{"by-owner-and-channel", Filter{Owner: "ops", Channel: "ws", Limit: 50, Offset: 20_000}, 33_333},
		{"by-status", Filter{AnyOwner: true, Status: Active, Limit: 50}, 100_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				list, total, err := f.svc.List(ctx, bc.f)
				if err != nil || total != bc.total || len(list) != 50 {
					b.Fatalf("total %d, %d listed, %v", total, len(list), err)
				}
			}
		})
	}
}

// BenchmarkOpen100k measures loading the index of 100,000 sessions at start.
func BenchmarkOpen100k(b *testing.B) {
	f := bigFixture(b)
	for b.Loop() {
		svc := f.open(b)
		if n, _ := svc.Count(context.Background()); n != 100_000 {
			b.Fatal(n)
		}
	}
}
