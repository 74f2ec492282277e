package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
)

// testClock is the real clock plus an offset a test can move forward, so
// the dispatcher's timers keep working while a test skips hours.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// testConfig is the default config with loopback targets allowed (tests
// have no other) and millisecond backoffs.
func testConfig(edit func(*config.Webhooks)) *config.Config {
	c := config.Default()
	c.Webhooks.AllowPrivate = true
	c.Webhooks.InitialBackoff = config.Duration(2 * time.Millisecond)
	c.Webhooks.MaxBackoff = config.Duration(20 * time.Millisecond)
	c.Webhooks.MaxAttempts = 100
	if edit != nil {
		edit(&c.Webhooks)
	}
	return c
}

type fixture struct {
	s     *Service
	bus   *events.Bus
	kv    store.KV
	clock *testClock
}

// newFixture builds a Service on kv (a fresh in-memory store when nil)
// without starting it.
func newFixture(t testing.TB, kv store.KV, edit func(*config.Webhooks)) *fixture {
	t.Helper()
	if kv == nil {
		kv = storetest.Open(t)
	}
	bus := events.New()
	clock := &testClock{}
	s := New(Deps{Store: kv, Bus: bus, Logger: slog.New(slog.DiscardHandler)}, testConfig(edit))
	s.now = clock.now
	return &fixture{s: s, bus: bus, kv: kv, clock: clock}
}

// started is newFixture plus Start, closed when the test ends.
func started(t testing.TB, kv store.KV, edit func(*config.Webhooks)) *fixture {
	t.Helper()
	f := newFixture(t, kv, edit)
	if err := f.s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.s.Close(context.Background()) })
	return f
}

func (f *fixture) create(t testing.TB, url string, pats ...string) (Hook, string) {
	t.Helper()
	h, secret, err := f.s.Create(context.Background(), HookInput{URL: url, Events: pats})
	if err != nil {
		t.Fatal(err)
	}
	return h, secret
}

// deliveries lists every delivery of a hook in one state ("" for all).
func (f *fixture) deliveries(t testing.TB, hookID, state string) []Delivery {
	t.Helper()
	ds, _, err := f.s.ListDeliveries(context.Background(), hookID, state, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// received is one request a receiver got.
type received struct {
	delivery, event, timestamp, signature, contentType string
	body                                               []byte
}

// receiver is a webhook endpoint on loopback. status picks the answer to
// the n-th request (from 1); nil answers 204.
type receiver struct {
	*httptest.Server
	status func(n int) int

	mu  sync.Mutex
	got []received
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.Server = httptest.NewServer(r)
	t.Cleanup(r.Close)
	return r
}

// receiverOn starts a receiver on addr, a loopback address that was
// unreachable until now.
func receiverOn(t testing.TB, addr string, status func(n int) int) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{status: status}
	r.Server = httptest.NewUnstartedServer(r)
	r.Listener.Close()
	r.Listener = ln
	r.Start()
	t.Cleanup(r.Close)
	return r
}

// downAddr returns a loopback address nothing listens on (yet).
func downAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, received{
		delivery: req.Header.Get("Portico-Delivery"), event: req.Header.Get("Portico-Event"),
		timestamp: req.Header.Get("Portico-Timestamp"), signature: req.Header.Get("Portico-Signature"),
		contentType: req.Header.Get("Content-Type"), body: body,
	})
	n := len(r.got)
	r.mu.Unlock()
	status := http.StatusNoContent
	if r.status != nil {
		status = r.status(n)
	}
	w.WriteHeader(status)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// verify checks a signature header the way docs/webhooks.md tells
// receivers to, written independently of the package's own Signature: for
// each "v1=" entry, compare it with hex(HMAC-SHA256(secret, timestamp + "."
// + body)). It returns how many entries the secret verifies.
func verify(secret string, r received) int {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(r.timestamp + "." + string(r.body)))
	want := hex.EncodeToString(m.Sum(nil))
	n := 0
	for _, part := range strings.Split(r.signature, ",") {
		if sig, ok := strings.CutPrefix(part, "v1="); ok && hmac.Equal([]byte(sig), []byte(want)) {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds; the deadline guards against a
// hang and is not a speed assertion.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
