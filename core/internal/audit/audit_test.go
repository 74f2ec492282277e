package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
)

var base = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// at is the time of the i-th seeded entry.
func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

func openStore(t testing.TB) store.Store {
	t.Helper()
	return storetest.Open(t)
}

func newTrail(t testing.TB) (*audit.Trail, store.Store) {
	t.Helper()
	s := openStore(t)
	return audit.New(s), s
}

// seed records n entries at at(i), in a scrambled order so that List's
// order can only come from the entries' times. Entry i has Target i, actor
// alice or bob by parity and one of three actions by i%3.
func seed(t testing.TB, tr *audit.Trail, n int) {
	t.Helper()
	actors := []string{"alice", "bob"}
	actions := []string{"config.patch", "store.backup", "key.create"}
	for _, i := range rand.New(rand.NewPCG(1, uint64(n))).Perm(n) {
		e := audit.Entry{
			Time:    at(i),
			Actor:   actors[i%2],
			Action:  actions[i%3],
			Target:  strconv.Itoa(i),
			Outcome: audit.Success,
		}
		if err := tr.Record(context.Background(), e); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

// targets returns the seeded indexes of entries, in their order.
func targets(t testing.TB, es []audit.Entry) []int {
	t.Helper()
	out := make([]int, len(es))
	for j, e := range es {
		i, err := strconv.Atoi(e.Target)
		if err != nil {
			t.Fatalf("entry %d has target %q", j, e.Target)
		}
		out[j] = i
	}
	return out
}

// desc returns the indexes in [0, n) that keep matches, newest first.
func desc(n int, keep func(i int) bool) []int {
	out := []int{}
	for i := n - 1; i >= 0; i-- {
		if keep(i) {
			out = append(out, i)
		}
	}
	return out
}

func all(int) bool { return true }

func TestRecordFillsIDAndTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr, _ := newTrail(t)

	before := time.Now()
	err := tr.Record(ctx, audit.Entry{
		Actor: "key_1", Action: "config.patch", Target: "routes", Outcome: audit.Failure,
		RequestID: "req-1", Details: map[string]any{"keys": "a.b", "n": 2},
	})
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	es, total, err := tr.List(ctx, audit.Query{})
	if err != nil || total != 1 || len(es) != 1 {
		t.Fatalf("List = %d entries, total %d, %v; want 1", len(es), total, err)
	}
	e := es[0]
	if e.Time.IsZero() || e.Time.Before(before) || e.Time.After(after) {
		t.Errorf("Time = %v, want between %v and %v", e.Time, before, after)
	}
	id, err := hex.DecodeString(e.ID)
	if err != nil || len(id) != 16 {
		t.Fatalf("ID = %q, want 32 hex digits (%v)", e.ID, err)
	}
	if ns := int64(binary.BigEndian.Uint64(id)); ns != e.Time.UnixNano() {
		t.Errorf("ID starts with %d, want the entry's time %d", ns, e.Time.UnixNano())
	}
	if e.Actor != "key_1" || e.Action != "config.patch" || e.Target != "routes" ||
		e.Outcome != audit.Failure || e.RequestID != "req-1" {
		t.Errorf("entry fields changed: %+v", e)
	}
	if e.Details["keys"] != "a.b" || e.Details["n"] != float64(2) {
		t.Errorf("Details = %v", e.Details)
	}
}

func TestRecordKeepsTimeAndIDsAreUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr, _ := newTrail(t)
	// Two entries in the same nanosecond must both be kept.
	for range 2 {
		if err := tr.Record(ctx, audit.Entry{Time: base, Actor: "a", Action: "x", Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
	}
	es, total, err := tr.List(ctx, audit.Query{})
	if err != nil || total != 2 || len(es) != 2 {
		t.Fatalf("List = %d entries, total %d, %v; want 2", len(es), total, err)
	}
	if es[0].ID == es[1].ID {
		t.Fatalf("two entries share ID %s", es[0].ID)
	}
	for _, e := range es {
		if !e.Time.Equal(base) {
			t.Errorf("Time = %v, want the given %v", e.Time, base)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		e       audit.Entry
		wantErr error // nil: any error
	}{
		{"no actor", context.Background(), audit.Entry{Action: "x", Outcome: audit.Success}, nil},
		{"no action", context.Background(), audit.Entry{Actor: "a", Outcome: audit.Success}, nil},
		{"no outcome", context.Background(), audit.Entry{Actor: "a", Action: "x"}, nil},
		{"empty entry", context.Background(), audit.Entry{}, nil},
		{"cancelled context", cancelled, audit.Entry{Actor: "a", Action: "x", Outcome: audit.Denied}, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tr, s := newTrail(t)
			err := tr.Record(c.ctx, c.e)
			if err == nil {
				t.Fatal("Record = nil, want error")
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("Record = %v, want %v", err, c.wantErr)
			}
			stored := 0
			err = s.Scan(context.Background(), nil, store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error { stored++; return nil })
			if err != nil || stored != 0 {
				t.Fatalf("a rejected entry was stored (%d keys, %v)", stored, err)
			}
		})
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	const n = 10
	tr, _ := newTrail(t)
	seed(t, tr, n)
	alice := func(i int) bool { return i%2 == 0 }
	bob := func(i int) bool { return i%2 == 1 }

	cases := []struct {
		name      string
		q         audit.Query
		want      []int
		wantTotal int
	}{
		{"zero query is all, newest first", audit.Query{}, desc(n, all), n},
		{"actor", audit.Query{Actor: "alice"}, desc(n, alice), 5},
		{"action", audit.Query{Action: "store.backup"}, desc(n, func(i int) bool { return i%3 == 1 }), 3},
		{"actor and action", audit.Query{Actor: "bob", Action: "config.patch"}, []int{9, 3}, 2},
		{"no match", audit.Query{Actor: "carol"}, []int{}, 0},
		{"since an entry's time includes it", audit.Query{Since: at(5)}, []int{9, 8, 7, 6, 5}, 5},
		{"since between entries", audit.Query{Since: at(4).Add(time.Nanosecond)}, []int{9, 8, 7, 6, 5}, 5},
		{"since before all", audit.Query{Since: at(-1)}, desc(n, all), n},
		{"since after all", audit.Query{Since: at(n)}, []int{}, 0},
		{"since and actor", audit.Query{Since: at(5), Actor: "bob"}, []int{9, 7, 5}, 3},
		{"limit", audit.Query{Limit: 3}, []int{9, 8, 7}, n},
		{"limit and offset", audit.Query{Limit: 3, Offset: 3}, []int{6, 5, 4}, n},
		{"last page is short", audit.Query{Limit: 5, Offset: 8}, []int{1, 0}, n},
		{"offset past the end", audit.Query{Limit: 5, Offset: 20}, []int{}, n},
		{"paged filter", audit.Query{Actor: "alice", Limit: 2, Offset: 1}, []int{6, 4}, 5},
		{"paged filter with since", audit.Query{Actor: "bob", Since: at(2), Limit: 2, Offset: 2}, []int{5, 3}, 4},
		{"negative limit is the default", audit.Query{Limit: -1}, desc(n, all), n},
		{"filter with a limit above the matches", audit.Query{Actor: "bob", Limit: 10}, desc(n, bob), 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			es, total, err := tr.List(context.Background(), c.q)
			if err != nil {
				t.Fatal(err)
			}
			if es == nil {
				t.Fatal("List returned a nil slice, want empty")
			}
			if got := targets(t, es); !slices.Equal(got, c.want) {
				t.Errorf("entries = %v, want %v", got, c.want)
			}
			if total != c.wantTotal {
				t.Errorf("total = %d, want %d", total, c.wantTotal)
			}
		})
	}
}

func TestListDefaultLimit(t *testing.T) {
	t.Parallel()
	tr, _ := newTrail(t)
	seed(t, tr, 60)
	es, total, err := tr.List(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 50 || total != 60 {
		t.Fatalf("List = %d entries, total %d; want 50 of 60", len(es), total)
	}
	if got := targets(t, es); !slices.Equal(got, desc(60, func(i int) bool { return i >= 10 })) {
		t.Fatalf("entries = %v, want 59..10", got)
	}
}

func TestListCorruptEntry(t *testing.T) {
	t.Parallel()
	tr, s := newTrail(t)
	seed(t, tr, 3)
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at(1).UnixNano())+1)
	var err error
	if pg, ok := s.(*store.Postgres); ok { // the entries are rows there
		_, err = pg.Pool().Exec(context.Background(), `INSERT INTO portico_audit (id, at, actor, action, entry) VALUES ('x', $1, 'a', 'b', '{not json')`, at(1).UnixNano()+1)
	} else {
		err = s.Set(context.Background(), append([]byte("audit/"), k...), []byte("{not json"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.List(context.Background(), audit.Query{}); err == nil {
		t.Fatal("List over a corrupt entry = nil, want error")
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	const n = 10
	cases := []struct {
		name        string
		before      time.Time
		wantDeleted int
	}{
		{"keeps the entry at before", at(5), 5},
		{"just after an entry", at(4).Add(time.Nanosecond), 5},
		{"before all", at(0), 0},
		{"long before all", base.Add(-time.Hour), 0},
		{"after all", at(n), n},
		{"zero time deletes nothing", time.Time{}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tr, _ := newTrail(t)
			seed(t, tr, n)
			deleted, err := tr.Prune(ctx, c.before)
			if err != nil {
				t.Fatal(err)
			}
			if deleted != c.wantDeleted {
				t.Errorf("Prune = %d, want %d", deleted, c.wantDeleted)
			}
			es, total, err := tr.List(ctx, audit.Query{})
			if err != nil {
				t.Fatal(err)
			}
			want := desc(n, func(i int) bool { return i >= c.wantDeleted })
			if got := targets(t, es); !slices.Equal(got, want) || total != len(want) {
				t.Errorf("after Prune entries = %v (total %d), want %v", got, total, want)
			}
			for _, e := range es {
				if e.Time.Before(c.before) {
					t.Errorf("entry at %v survived Prune(%v)", e.Time, c.before)
				}
			}
			if again, err := tr.Prune(ctx, c.before); err != nil || again != 0 {
				t.Errorf("second Prune = %d, %v; want 0", again, err)
			}
		})
	}
}

func TestKeysUnderAuditPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr, s := newTrail(t)
	// Neighbours of the prefix that the trail must neither see nor prune.
	others := []string{"audit", "auditx", "audit-log/1", "a", "zzz"}
	for _, k := range others {
		if err := s.Set(ctx, []byte(k), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	seed(t, tr, 3)

	var raw [][]byte
	err := s.Scan(ctx, []byte("audit/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		raw = append(raw, bytes.Clone(k))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 3
	if pg, ok := s.(*store.Postgres); ok { // the entries are rows there
		want = 0
		var rows int
		if err := pg.Pool().QueryRow(ctx, `SELECT count(*) FROM portico_audit`).Scan(&rows); err != nil || rows != 3 {
			t.Fatalf("portico_audit holds %d rows (%v), want 3", rows, err)
		}
	}
	if len(raw) != want {
		t.Fatalf("raw store holds %d keys under audit/, want %d", len(raw), want)
	}
	es, total, err := tr.List(ctx, audit.Query{})
	if err != nil || total != 3 {
		t.Fatalf("List = total %d, %v; want 3", total, err)
	}
	// Raw keys ascend, entries descend: entry j is raw key 2-j.
	for j, e := range es {
		if want == 0 {
			break // no raw keys to match
		}
		id, err := hex.DecodeString(e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("audit/"), id...); !bytes.Equal(raw[2-j], want) {
			t.Errorf("raw key %x, want audit/ + ID %s", raw[2-j], e.ID)
		}
	}

	if n, err := tr.Prune(ctx, at(100)); err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3", n, err)
	}
	for _, k := range others {
		if _, err := s.Get(ctx, []byte(k)); err != nil {
			t.Errorf("Prune touched %q outside the prefix: %v", k, err)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	s := openStore(b)
	tr := audit.New(s)
	ctx := context.Background()
	e := audit.Entry{
		Actor: "key_1", Action: "config.patch", Target: "routes", Outcome: audit.Success,
		RequestID: "req-1", Details: map[string]any{"keys": []string{"a.b", "c"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
