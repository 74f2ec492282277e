package session

import (
	"context"
	"strings"
	"testing"
)

func TestHistoryCache(t *testing.T) {
	c := newHistoryCache()
	items := []HistoryItem{{Role: "user", Text: "a"}, {Role: "assistant", Text: "b"}, {Role: "user", Text: "c"}}
	c.put("s1", 3, items, 1<<20)
	if got, ok := c.get("s1", 3, 2); !ok || len(got) != 2 || got[0].Text != "b" {
		t.Errorf("last 2 at count 3: %v %v", got, ok)
	}
	if _, ok := c.get("s1", 4, 2); ok {
		t.Error("an entry answered for another message count")
	}
	if got, ok := c.get("s1", 3, 5); !ok || len(got) != 3 {
		t.Errorf("all 3 messages of a 3-message session: %v %v", got, ok)
	}
	c.put("s4", 10, items, 1<<20) // made when history_messages was 3
	if _, ok := c.get("s4", 10, 5); ok {
		t.Error("an entry with 3 items answered for 5 of a 10-message session (history_messages raised)")
	}
	c.forget("s4")
	if got, ok := c.get("s1", 3, 0); !ok || len(got) != 0 {
		t.Errorf("no history wanted: %v %v", got, ok)
	}
	// Bounded in bytes, least recently used out first.
	c.put("s2", 1, []HistoryItem{{Role: "user", Text: strings.Repeat("x", 10)}}, 20)
	if _, ok := c.get("s1", 3, 3); ok {
		t.Error("s1 kept past the byte bound")
	}
	if _, ok := c.get("s2", 1, 1); !ok {
		t.Error("s2, the newest, evicted")
	}
	c.put("s3", 1, []HistoryItem{{Role: "user", Text: strings.Repeat("y", 100)}}, 20)
	if _, ok := c.get("s3", 1, 1); ok || c.size > 20 {
		t.Errorf("an entry over the bound was kept (size %d)", c.size)
	}
	c.put("s2", 1, nil, 0)
	if c.ll.Len() != 0 || c.size != 0 || len(c.byID) != 0 {
		t.Errorf("a bound of 0 keeps something: %d entries, %d bytes", c.ll.Len(), c.size)
	}
}

// TestHistoryCacheFollowsTheStore: the history a turn hands its skill is
// the same whether it comes from the cache or the store, including after
// a turn that failed once its message was stored (the count moved on).
func TestHistoryCacheFollowsTheStore(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		se, _ := f.svc.Create(ctx, CreateInput{Channel: "api", Owner: "alice"})
		post := func(text string) {
			t.Helper()
			if _, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: text, Owner: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		post("/upper one")
		post("two")
		last := f.skills.inputs[len(f.skills.inputs)-1]
		if len(last.History) != 2 || last.History[0].Text != "/upper one" || last.History[1].Text != "ONE" {
			t.Fatalf("history from the cache: %+v", last.History)
		}
		// A message stored behind the cache's back (another node's turn): the
		// count moves on and the next turn reads the store.
		cur, _ := f.svc.Get(ctx, se.ID)
		m := Message{ID: NewID("msg"), SessionID: se.ID, Seq: cur.MessageCount + 1, Role: "user", Text: "from elsewhere"}
		cur.MessageCount = m.Seq
		if err := f.svc.rec.append(ctx, &m, &cur); err != nil {
			t.Fatal(err)
		}
		post("three")
		last = f.skills.inputs[len(f.skills.inputs)-1]
		if n := len(last.History); n != 5 || last.History[n-1].Text != "from elsewhere" {
			t.Errorf("history after a message the cache did not see: %+v", last.History)
		}
	})
}
