package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/internal/testtool"
)

// fakeSkills routes "/upper ..." to upper and everything else nowhere; the
// skills answer from their input, streaming in two chunks.
type fakeSkills struct {
	mu     sync.Mutex
	inputs []SkillInput
	fail   error
}

func (f *fakeSkills) Route(text string) (plugin.Route, bool) {
	if rest, ok := strings.CutPrefix(text, "/upper "); ok {
		return plugin.Route{Skill: "upper", Plugin: "p", Trigger: "/upper", Command: "/upper", Text: rest}, true
	}
	return plugin.Route{}, false
}

func (f *fakeSkills) Stream(ctx context.Context, skill string, input []byte, sink func([]byte) error) (string, error) {
	var in SkillInput
	if err := json.Unmarshal(input, &in); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	switch skill {
	case "upper":
		sink([]byte(`{"text":"`))
		sink([]byte(strings.ToUpper(in.Text) + `"}`))
	case "echo":
		b, _ := json.Marshal(in)
		sink(b)
	default:
		return "", fmt.Errorf("%w: %s", plugin.ErrNotFound, skill)
	}
	return "p", nil
}

type fixture struct {
	svc    *Service
	skills *fakeSkills
	cfg    *config.Config
	kv     store.Store
	pg     *store.Postgres // set: the records are PostgreSQL's tables
	bus    *events.Bus
	now    time.Time
}

// newFixture opens a service on an in-memory Badger store.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	kv, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	return fixtureOn(t, kv, nil)
}

// newPostgresFixture opens a service on a new PostgreSQL database, or
// skips without one (testtool.Postgres).
func newPostgresFixture(t testing.TB) *fixture {
	t.Helper()
	pg, err := store.OpenPostgres(context.Background(), store.PostgresOptions{URL: testtool.Postgres(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return fixtureOn(t, pg, pg)
}

func fixtureOn(t testing.TB, kv store.Store, pg *store.Postgres) *fixture {
	f := &fixture{kv: kv, pg: pg, cfg: config.Default(), bus: events.New(), skills: &fakeSkills{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.svc = f.open(t)
	return f
}

// forBackends runs test on each backend's records: the key-value store
// with its index, and PostgreSQL's tables.
func forBackends(t *testing.T, test func(t *testing.T, newFixture func(testing.TB) *fixture)) {
	for _, b := range []struct {
		name string
		open func(testing.TB) *fixture
	}{{"badger", newFixture}, {"postgres", newPostgresFixture}} {
		t.Run(b.name, func(t *testing.T) { test(t, b.open) })
	}
}

func (f *fixture) open(t testing.TB) *Service {
	t.Helper()
	svc, err := Open(context.Background(), Deps{Store: f.kv, Postgres: f.pg, Bus: f.bus, Config: func() *config.Config { return f.cfg }, Skills: f.skills})
	if err != nil {
		t.Fatal(err)
	}
	svc.now = func() time.Time { return f.now }
	return svc
}

func TestCreateGetTerminate(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		sub, _ := f.bus.Subscribe("session.*", 8)
		se, err := f.svc.Create(ctx, CreateInput{Channel: "telegram", UserID: "u1", Owner: "alice", Metadata: map[string]string{"lang": "en"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.Get(ctx, se.ID)
		if err != nil || got.Status != Active || got.Channel != "telegram" || got.Metadata["lang"] != "en" || !got.CreatedAt.Equal(f.now) {
			t.Fatalf("get = %+v, %v", got, err)
		}
		f.now = f.now.Add(f.cfg.Sessions.IdleTimeout.D())
		if got, _ := f.svc.Get(ctx, se.ID); got.Status != Idle {
			t.Errorf("status after the idle timeout = %s", got.Status)
		}
		if _, err := f.svc.Terminate(ctx, se.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Terminate(ctx, se.ID); !errors.Is(err, ErrTerminated) {
			t.Errorf("second terminate: %v", err)
		}
		if _, err := f.svc.Get(ctx, "ses_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown: %v", err)
		}
		for _, want := range []string{EventCreated, EventTerminated} {
			if e := <-sub.Events(); e.Type != want {
				t.Errorf("event %s, want %s", e.Type, want)
			}
		}
	})
}

func TestCreateRefusesBadInput(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		big := map[string]string{}
		for i := range 40 {
			big[fmt.Sprint(i)] = "x"
		}
		for _, in := range []CreateInput{
			{Channel: "bad channel"},
			{Channel: strings.Repeat("c", 65)},
			{UserID: strings.Repeat("u", 200)},
			{UserID: "a\nb"},
			{Metadata: big},
			{Metadata: map[string]string{"k": strings.Repeat("v", 5000)}},
			{Metadata: map[string]string{"": "v"}},
		} {
			if _, err := f.svc.Create(context.Background(), in); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v", in, err)
			}
		}
		if n, _ := f.svc.Count(context.Background()); n != 0 {
			t.Errorf("bad input stored %d sessions", n)
		}
	})
}

func TestListFiltersPagesAndReload(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		var ids []string
		for i := range 30 {
			f.now = f.now.Add(time.Second)
			se, err := f.svc.Create(ctx, CreateInput{Channel: []string{"api", "ws", "telegram"}[i%3], UserID: fmt.Sprintf("u%d", i%5), Owner: []string{"alice", "bob"}[i%2]})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, se.ID)
		}
		f.svc.Terminate(ctx, ids[0])
		f.svc.Terminate(ctx, ids[6])
		f.now = f.now.Add(f.cfg.Sessions.IdleTimeout.D() - 10*time.Second) // the 10 newest stay active

		check := func(svc *Service) {
			t.Helper()
			tests := []struct {
				name  string
				f     Filter
				total int
				first string
				n     int
			}{
				{"all", Filter{AnyOwner: true, Limit: 50}, 30, ids[29], 30},
				{"page", Filter{AnyOwner: true, Limit: 5, Offset: 10}, 30, ids[19], 5},
				{"past the end", Filter{AnyOwner: true, Limit: 5, Offset: 40}, 30, "", 0},
				{"owner", Filter{Owner: "bob", Limit: 2}, 15, ids[29], 2},
				{"owner and channel", Filter{Owner: "alice", Channel: "api", Limit: 50}, 5, ids[24], 5},
				{"user", Filter{AnyOwner: true, UserID: "u3", Limit: 50}, 6, ids[28], 6},
				{"unknown user", Filter{AnyOwner: true, UserID: "nobody", Limit: 50}, 0, "", 0},
				{"terminated", Filter{AnyOwner: true, Status: Terminated, Limit: 50}, 2, ids[6], 2},
				{"active", Filter{AnyOwner: true, Status: Active, Limit: 50}, 10, ids[29], 10},
				{"idle", Filter{AnyOwner: true, Status: Idle, Limit: 3}, 18, ids[19], 3},
				{"no owner", Filter{Limit: 50}, 0, "", 0},
			}
			for _, tt := range tests {
				list, total, err := svc.List(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if total != tt.total || len(list) != tt.n || (tt.n > 0 && list[0].ID != tt.first) {
					first := ""
					if len(list) > 0 {
						first = list[0].ID
					}
					t.Errorf("%s: total %d, %d listed, first %s; want %d, %d, %s", tt.name, total, len(list), first, tt.total, tt.n, tt.first)
				}
			}
		}
		check(f.svc)
		check(f.open(t)) // the index rebuilt from the store lists the same
		if _, _, err := f.svc.List(ctx, Filter{Status: "sleeping", Limit: 1}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad status: %v", err)
		}
	})
}

func TestPostRoutesStoresAndAnnounces(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		sub, _ := f.bus.Subscribe("message.*", 8)
		se, _ := f.svc.Create(ctx, CreateInput{Channel: "api", Owner: "alice"})
		var chunks []string
		turn, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper hello", Owner: "alice", OnChunk: func(s string) { chunks = append(chunks, s) }})
		if err != nil {
			t.Fatal(err)
		}
		if turn.Reply.Text != "HELLO" || turn.Reply.Skill != "upper" || turn.Reply.Trigger != "/upper" || turn.Message.Seq != 1 || turn.Reply.Seq != 2 {
			t.Errorf("turn = %+v", turn)
		}
		if len(chunks) != 2 {
			t.Errorf("chunks = %q", chunks)
		}
		// The default skill gets the rest, with the history.
		turn, err = f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "plain words", Owner: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if turn.Reply.Skill != "echo" || !strings.Contains(turn.Reply.Text, "plain words") {
			t.Errorf("default route: %+v", turn.Reply)
		}
		last := f.skills.inputs[len(f.skills.inputs)-1]
		if len(last.History) != 2 || last.History[0].Text != "/upper hello" || last.History[1].Text != "HELLO" || last.Channel != "api" {
			t.Errorf("history handed to the skill: %+v", last)
		}
		got, _ := f.svc.Get(ctx, se.ID)
		if got.TurnCount != 2 || got.MessageCount != 4 {
			t.Errorf("counts: %+v", got)
		}
		msgs, total, _ := f.svc.Messages(ctx, se.ID, 3, 1)
		if total != 4 || len(msgs) != 3 || msgs[0].Text != "HELLO" || msgs[0].Role != "assistant" {
			t.Errorf("messages page: %d %+v", total, msgs)
		}
		for _, want := range []string{EventReceived, EventSent, EventReceived, EventSent} {
			if e := <-sub.Events(); e.Type != want {
				t.Errorf("event %s, want %s", e.Type, want)
			}
		}
	})
}

func TestPostIdempotent(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		se, _ := f.svc.Create(ctx, CreateInput{Owner: "alice"})
		first, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper a", Owner: "alice", IdempotencyKey: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper a", Owner: "alice", IdempotencyKey: "k1"})
		if err != nil || !again.Replayed || again.Reply.ID != first.Reply.ID {
			t.Fatalf("retry: %+v %v", again, err)
		}
		// Another owner's key does not collide.
		other, _ := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper a", Owner: "bob", AnyOwner: true, IdempotencyKey: "k1"})
		if other.Replayed {
			t.Error("keys are not per owner")
		}
		if got, _ := f.svc.Get(ctx, se.ID); got.TurnCount != 2 {
			t.Errorf("turns = %d, want 2", got.TurnCount)
		}
		f.now = f.now.Add(f.cfg.Sessions.IdempotencyTTL.D() + time.Second)
		if n, err := f.svc.Sweep(ctx); err != nil || n != 2 {
			t.Errorf("sweep: %d %v", n, err)
		}
		if late, _ := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper a", Owner: "alice", IdempotencyKey: "k1"}); late.Replayed {
			t.Error("an expired key replayed")
		}
	})
}

func TestPostRefusesAndStoresNothing(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		se, _ := f.svc.Create(ctx, CreateInput{Owner: "alice"})
		done, _ := f.svc.Create(ctx, CreateInput{Owner: "alice"})
		f.svc.Terminate(ctx, done.ID)
		f.cfg.Sessions.MaxMessageBytes = 10
		tests := []struct {
			name string
			in   PostInput
			want error
		}{
			{"unknown session", PostInput{SessionID: "ses_x", Text: "hi", Owner: "alice"}, ErrNotFound},
			{"another's session", PostInput{SessionID: se.ID, Text: "hi", Owner: "bob"}, ErrNotFound},
			{"terminated", PostInput{SessionID: done.ID, Text: "hi", Owner: "alice"}, ErrTerminated},
			{"too large", PostInput{SessionID: se.ID, Text: strings.Repeat("x", 11), Owner: "alice"}, ErrTooLarge},
			{"empty", PostInput{SessionID: se.ID, Text: "  ", Owner: "alice"}, ErrInvalid},
			{"not utf-8", PostInput{SessionID: se.ID, Text: "\xff", Owner: "alice"}, ErrInvalid},
		}
		for _, tt := range tests {
			if _, err := f.svc.Post(ctx, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}
		f.cfg.Sessions.DefaultSkill = ""
		if _, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: "hi", Owner: "alice"}); !errors.Is(err, ErrNoRoute) {
			t.Errorf("no route: %v", err)
		}
		if got, _ := f.svc.Get(ctx, se.ID); got.MessageCount != 0 {
			t.Errorf("refused posts stored %d messages", got.MessageCount)
		}
	})
}

func TestConcurrentPostsKeepOrder(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		se, _ := f.svc.Create(ctx, CreateInput{Owner: "alice"})
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if _, err := f.svc.Post(ctx, PostInput{SessionID: se.ID, Text: fmt.Sprintf("/upper m%d", i), Owner: "alice"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		msgs, total, _ := f.svc.Messages(ctx, se.ID, 100, 0)
		if total != 40 || len(msgs) != 40 {
			t.Fatalf("%d messages, total %d", len(msgs), total)
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) || (i%2 == 1) != (m.Role == "assistant") {
				t.Fatalf("message %d: %+v", i, m)
			}
			if i%2 == 1 && m.Text != strings.ToUpper(strings.TrimPrefix(msgs[i-1].Text, "/upper ")) {
				t.Fatalf("reply %d answers another message: %q after %q", i, m.Text, msgs[i-1].Text)
			}
		}
	})
}

// TestOutboundAfterTheLock: a channel's reply goes out after the turn has
// let go of its session: a platform slow to take it holds up no other
// message of the session.
func TestOutboundAfterTheLock(t *testing.T) {
	forBackends(t, func(t *testing.T, newFixture func(testing.TB) *fixture) {
		f := newFixture(t)
		ctx := context.Background()
		release := make(chan struct{})
		sent := make(chan string, 2)
		svc, err := Open(ctx, Deps{Store: f.kv, Postgres: f.pg, Bus: f.bus, Config: func() *config.Config { return f.cfg }, Skills: f.skills,
			Hooks: Hooks{Outbound: func(ctx context.Context, se Session, reply Message) {
				<-release
				sent <- reply.Text
			}}})
		if err != nil {
			t.Fatal(err)
		}
		se, _ := svc.Create(ctx, CreateInput{Channel: "telegram", Owner: "alice"})
		go svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper first", FromChannel: true, AnyOwner: true})
		done := make(chan error, 1)
		go func() {
			deadline := time.Now().Add(10 * time.Second)
			for { // the first post is in its Outbound once the session counts its two messages
				got, _ := svc.Get(ctx, se.ID)
				if got.MessageCount == 2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			_, err := svc.Post(ctx, PostInput{SessionID: se.ID, Text: "/upper second", AnyOwner: true})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a second post waited for the first one's outbound delivery")
		}
		close(release)
		if got := <-sent; got != "FIRST" {
			t.Errorf("outbound sent %q", got)
		}
	})
}
