package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/internal/testtool"
)

// TestTwoNodesOneTranscript runs two services, each with its own
// connection pool, on one PostgreSQL database, as two gateway nodes do.
// Both post 50 messages to one session at once: every message is stored
// once, in one total order that both list identically, and the history
// each turn was handed is exactly the transcript before its message.
func TestTwoNodesOneTranscript(t *testing.T) {
	url := testtool.Postgres(t)
	open := func() *fixture {
		pg, err := store.OpenPostgres(context.Background(), store.PostgresOptions{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		return fixtureOn(t, pg, pg)
	}
	a, b := open(), open()
	ctx := context.Background()
	se, err := a.svc.Create(ctx, CreateInput{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	const perNode, workers = 50, 5
	var wg sync.WaitGroup
	for n, f := range []*fixture{a, b} {
		for w := range workers {
			wg.Go(func() {
				for i := range perNode / workers {
					text := fmt.Sprintf("node%d worker%d message%d", n, w, i)
					turn, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: text, Owner: "alice"})
					if err != nil {
						t.Error(err)
						return
					}
					if turn.Reply.Text != text || turn.Reply.Seq != turn.Message.Seq+1 {
						t.Errorf("turn of %q: %+v", text, turn)
					}
				}
			})
		}
	}
	wg.Wait()
	const want = 2 * 2 * perNode
	fromA, totalA, errA := a.svc.Messages(ctx, se.ID, 1000, 0)
	fromB, totalB, errB := b.svc.Messages(ctx, se.ID, 1000, 0)
	if errA != nil || errB != nil || totalA != want || totalB != want || len(fromA) != want {
		t.Fatalf("listed %d (total %d, %v) and %d (total %d, %v), want %d", len(fromA), totalA, errA, len(fromB), totalB, errB, want)
	}
	if !slices.EqualFunc(fromA, fromB, func(x, y Message) bool { return x.ID == y.ID && x.Seq == y.Seq && x.Text == y.Text }) {
		t.Fatal("the two nodes list different transcripts")
	}
	seen := map[string]bool{}
	bySeq := map[string]int64{}
	for i, m := range fromA {
		if m.Seq != int64(i+1) || (i%2 == 1) != (m.Role == "assistant") {
			t.Fatalf("message %d: %+v", i, m)
		}
		if m.Role == "user" {
			if seen[m.Text] {
				t.Fatalf("%q stored twice", m.Text)
			}
			seen[m.Text] = true
			if fromA[i+1].Text != m.Text {
				t.Fatalf("reply %d answers another message", i+1)
			}
		}
		bySeq[m.ID] = m.Seq
	}
	if len(seen) != 2*perNode {
		t.Fatalf("%d distinct messages stored, want %d", len(seen), 2*perNode)
	}
	n := int(a.cfg.Sessions.HistoryMessages)
	inputs := append(append([]SkillInput{}, a.skills.inputs...), b.skills.inputs...)
	if len(inputs) != 2*perNode {
		t.Fatalf("%d skill calls, want %d", len(inputs), 2*perNode)
	}
	for _, in := range inputs {
		seq, ok := bySeq[in.MessageID]
		if !ok {
			t.Fatalf("a skill was called for a message that is not stored: %s", in.MessageID)
		}
		before := fromA[max(0, int(seq)-1-n) : seq-1]
		if len(in.History) != len(before) {
			t.Fatalf("message %d was handed %d history items, want %d", seq, len(in.History), len(before))
		}
		for i, h := range in.History {
			if h.Role != before[i].Role || h.Text != before[i].Text {
				t.Fatalf("message %d: history item %d is %+v, want %s %q", seq, i, h, before[i].Role, before[i].Text)
			}
		}
	}
}

// TestTurnWaitsAtMostTheStatementTimeout: a turn whose session another
// node holds longer than storage.postgres.statement_timeout answers
// ErrBusy and stores nothing; once the other node lets go it runs.
func TestTurnWaitsAtMostTheStatementTimeout(t *testing.T) {
	url := testtool.Postgres(t)
	ctx := context.Background()
	pg, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url, StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	f := fixtureOn(t, pg, pg)
	se, err := f.svc.Create(ctx, CreateInput{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	// The other node: a connection of its own holding the session's lock.
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID(se.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "hi", Owner: "alice"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("post while another node holds the session = %v, want ErrBusy", err)
	}
	if got, _ := f.svc.Get(ctx, se.ID); got.MessageCount != 0 {
		t.Fatalf("a refused turn stored %d messages", got.MessageCount)
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockID(se.ID)); err != nil {
		t.Fatal(err)
	}
	if turn, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "hi", Owner: "alice"}); err != nil || turn.Reply.Seq != 2 {
		t.Fatalf("post once let go: %+v, %v", turn, err)
	}
}
