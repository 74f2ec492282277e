package webhook

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
)

// BenchmarkEnqueue measures the intake's write path on an on-disk store:
// one synced transaction for a batch of events, each matching one hook.
// The intake batches whatever has arrived (up to 256 events), so batch=1 is
// a lone event and batch=256 a burst; ns/event is the cost per event.
func BenchmarkEnqueue(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			st, err := store.Open(b.TempDir(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			f := newFixture(b, st, nil) // not started: only the write path runs
			f.create(b, "http://127.0.0.1:9/", "message.*")
			evs := make([]events.Event, batch)
			for i := range evs {
				evs[i] = events.Event{Type: "message.sent", Time: time.Now(), Data: map[string]any{"session_id": "s_1234", "text": "hello there"}}
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := f.s.enqueue(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
	}
}
