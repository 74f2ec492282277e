package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
)

func TestSignature(t *testing.T) {
	body := []byte(`{"type":"message.sent","time":"2026-01-02T03:04:05Z","data":{"text":"hi"}}`)
	const ts = "1767323045"
	// hex(HMAC-SHA256("whsec_test", ts + "." + body)), computed once with
	// openssl (the shell recipe in docs/webhooks.md):
	//   printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac whsec_test -hex
	const known = "v1=" + "2524562f329d9a8e8c34e816a98a0698e3673131d83af037db3451575b71f9e0"
	tests := []struct {
		name      string
		header    string
		secret    string
		timestamp string
		body      []byte
		valid     bool
	}{
		{"one secret", Signature([]string{"s1"}, ts, body), "s1", ts, body, true},
		{"wrong secret", Signature([]string{"s1"}, ts, body), "s2", ts, body, false},
		{"other timestamp", Signature([]string{"s1"}, ts, body), "s1", "1767323046", body, false},
		{"changed body", Signature([]string{"s1"}, ts, body), "s1", ts, append([]byte(" "), body...), false},
		{"two secrets, new", Signature([]string{"new", "old"}, ts, body), "new", ts, body, true},
		{"two secrets, old", Signature([]string{"new", "old"}, ts, body), "old", ts, body, true},
		{"two secrets, neither", Signature([]string{"new", "old"}, ts, body), "other", ts, body, false},
		{"unknown scheme only", "v0=abcd", "s1", ts, body, false},
		{"not hex", "v1=zz", "s1", ts, body, false},
		{"empty", "", "s1", ts, body, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.secret, tt.timestamp, tt.header, tt.body); got != tt.valid {
				t.Errorf("Verify = %v, want %v (header %q)", got, tt.valid, tt.header)
			}
			r := received{timestamp: tt.timestamp, signature: tt.header, body: tt.body}
			if got := verify(tt.secret, r) > 0; got != tt.valid {
				t.Errorf("the documented check = %v, want %v", got, tt.valid)
			}
		})
	}
	if got := Signature([]string{"whsec_test"}, ts, body); got != known {
		t.Errorf("Signature = %s, want the known value %s", got, known)
	}
	if two := Signature([]string{"a", "b"}, ts, body); strings.Count(two, "v1=") != 2 || strings.Count(two, ",") != 1 {
		t.Errorf("two secrets: %q", two)
	}
}

func TestBackoff(t *testing.T) {
	c := config.Webhooks{InitialBackoff: config.Duration(time.Second), MaxBackoff: config.Duration(10 * time.Second)}
	top := func(n int64) int64 { return n - 1 } // the largest value the jitter may pick
	tests := []struct {
		attempts int
		want     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{4, 8 * time.Second},
		{5, 10 * time.Second},
		{60, 10 * time.Second}, // no overflow however many attempts
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.attempts), func(t *testing.T) {
			if got := backoff(tt.attempts, c, top); got != tt.want {
				t.Errorf("longest wait = %s, want %s", got, tt.want)
			}
			if got := backoff(tt.attempts, c, func(int64) int64 { return 0 }); got != 0 {
				t.Errorf("shortest wait = %s, want 0 (full jitter)", got)
			}
			var asked int64
			backoff(tt.attempts, c, func(n int64) int64 { asked = n; return 0 })
			if asked != int64(tt.want)+1 {
				t.Errorf("jitter drawn from [0, %d), want [0, %d]", asked, tt.want)
			}
		})
	}
}

func TestDeliverySigned(t *testing.T) {
	f := started(t, nil, nil)
	r := newReceiver(t, nil)
	h, secret := f.create(t, r.URL+"/hook", "message.*")
	other := newReceiver(t, nil)
	f.create(t, other.URL, "session.created")

	f.bus.Publish(events.Event{Type: "config.reloaded"}) // no hook wants it
	f.bus.Publish(events.Event{Type: "message.sent", Data: map[string]any{"text": "hi"}})
	eventually(t, "the delivery", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 1 })

	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	req := got[0]
	if verify(secret, req) != 1 {
		t.Errorf("signature %q does not verify", req.signature)
	}
	ts, err := strconv.ParseInt(req.timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Hour {
		t.Errorf("timestamp %q", req.timestamp)
	}
	var body events.Event
	if err := json.Unmarshal(req.body, &body); err != nil || body.Type != "message.sent" || body.Data.(map[string]any)["text"] != "hi" {
		t.Errorf("body %s (%v)", req.body, err)
	}
	d := f.deliveries(t, h.ID, "")
	if len(d) != 1 || d[0].ID != req.delivery || req.event != "message.sent" || req.contentType != "application/json" ||
		d[0].Attempts != 1 || d[0].LastStatus != http.StatusNoContent || d[0].FinishedAt.IsZero() || string(d[0].Payload) != string(req.body) {
		t.Errorf("delivery %+v, request %+v", d, req)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("a hook for other events got %d requests", n)
	}
}

func TestSecretRotation(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.SecretOverlap = config.Duration(time.Hour) })
	r := newReceiver(t, nil)
	h, old := f.create(t, r.URL, "*")
	send := func(typ string) received {
		t.Helper()
		n := len(r.requests())
		f.bus.Publish(events.Event{Type: typ})
		eventually(t, typ, func() bool { return len(r.requests()) > n })
		return r.requests()[n]
	}

	if req := send("before.rotation"); verify(old, req) != 1 || strings.Count(req.signature, "v1=") != 1 {
		t.Errorf("before the rotation: %q", req.signature)
	}
	rotated, secret, err := f.s.RotateSecret(context.Background(), h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if secret == old || rotated.PreviousSecretExpiresAt.IsZero() || rotated.SecretRotatedAt.IsZero() {
		t.Fatalf("rotation: %+v, same secret %v", rotated, secret == old)
	}
	req := send("during.overlap")
	if verify(secret, req) != 1 || verify(old, req) != 1 || strings.Count(req.signature, "v1=") != 2 {
		t.Errorf("during the overlap: want one signature per secret, got %q", req.signature)
	}
	f.clock.advance(time.Hour + time.Second)
	req = send("after.overlap")
	if verify(secret, req) != 1 || verify(old, req) != 0 || strings.Count(req.signature, "v1=") != 1 {
		t.Errorf("after the overlap: want only the new secret, got %q", req.signature)
	}

	// With no overlap, the old secret stops at once.
	applyConfig(f.s, testConfig(func(w *config.Webhooks) { w.SecretOverlap = 0 }))
	_, newest, err := f.s.RotateSecret(context.Background(), h.ID)
	if err != nil {
		t.Fatal(err)
	}
	req = send("no.overlap")
	if verify(newest, req) != 1 || verify(secret, req) != 0 || strings.Count(req.signature, "v1=") != 1 {
		t.Errorf("rotation without overlap: %q", req.signature)
	}
	if _, _, err := f.s.RotateSecret(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rotate an unknown hook: %v", err)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	f := started(t, nil, nil)
	f.s.rand = func(n int64) int64 { return n - 1 } // the longest wait: 2ms, then 4ms
	r := newReceiver(t, func(n int) int {
		if n < 3 {
			return []int{http.StatusServiceUnavailable, http.StatusInternalServerError}[n-1]
		}
		return http.StatusOK
	})
	h, secret := f.create(t, r.URL, "*")
	f.bus.Publish(events.Event{Type: "session.created", Data: "s1"})
	eventually(t, "delivery", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 1 })

	d := f.deliveries(t, h.ID, "")[0]
	if d.Attempts != 3 || d.LastStatus != http.StatusOK || d.LastError != "" {
		t.Errorf("delivery after two failures: %+v", d)
	}
	got := r.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	for i, req := range got {
		if req.delivery != d.ID || string(req.body) != string(got[0].body) || verify(secret, req) != 1 {
			t.Errorf("attempt %d: delivery %q, body %s, signature ok %v", i+1, req.delivery, req.body, verify(secret, req) == 1)
		}
	}
}

func TestBackoffIsRecorded(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) {
		w.InitialBackoff = config.Duration(time.Hour) // never comes due during the test
		w.MaxBackoff = config.Duration(2 * time.Hour)
	})
	f.s.rand = func(n int64) int64 { return n - 1 }
	r := newReceiver(t, func(int) int { return http.StatusBadGateway })
	h, _ := f.create(t, r.URL, "*")
	f.bus.Publish(events.Event{Type: "x.y"})
	var d Delivery
	eventually(t, "the first failed attempt", func() bool {
		ds := f.deliveries(t, h.ID, Pending)
		if len(ds) == 1 && ds[0].Attempts == 1 {
			d = ds[0]
			return true
		}
		return false
	})
	if got := d.NextAttemptAt.Sub(d.LastAttemptAt); got != time.Hour {
		t.Errorf("next attempt %s after the first failure, want initial_backoff (1h)", got)
	}
	if d.LastStatus != http.StatusBadGateway || !strings.Contains(d.LastError, "502") {
		t.Errorf("last status %d, error %q", d.LastStatus, d.LastError)
	}
}

func TestDeadLetterAndRedeliver(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.MaxAttempts = 3 })
	up := make(chan struct{})
	r := newReceiver(t, func(int) int {
		select {
		case <-up:
			return http.StatusOK
		default:
			return http.StatusInternalServerError
		}
	})
	h, _ := f.create(t, r.URL, "*")
	f.bus.Publish(events.Event{Type: "message.received"})
	eventually(t, "the dead letter", func() bool { return len(f.deliveries(t, h.ID, Dead)) == 1 })
	d := f.deliveries(t, h.ID, Dead)[0]
	if d.Attempts != 3 || d.LastStatus != 500 || !strings.Contains(d.LastError, "500") || d.FinishedAt.IsZero() || !d.NextAttemptAt.IsZero() {
		t.Errorf("dead delivery: %+v", d)
	}
	if n := len(r.requests()); n != 3 {
		t.Errorf("receiver got %d attempts, want max_attempts = 3", n)
	}

	ctx := context.Background()
	close(up)
	again, err := f.s.Redeliver(ctx, h.ID, d.ID)
	if err != nil || again.State != Pending || again.Attempts != 0 || again.ID != d.ID {
		t.Fatalf("redeliver: %+v, %v", again, err)
	}
	eventually(t, "the redelivery", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 1 })
	if got := r.requests(); got[len(got)-1].delivery != d.ID {
		t.Errorf("redelivered under id %q, want %q", got[len(got)-1].delivery, d.ID)
	}
	if n := len(f.deliveries(t, h.ID, Dead)); n != 0 {
		t.Errorf("%d still dead", n)
	}
	// A delivered one may be sent again too.
	if _, err := f.s.Redeliver(ctx, h.ID, d.ID); err != nil {
		t.Errorf("redeliver a delivered one: %v", err)
	}
	eventually(t, "the second redelivery", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 1 })

	tests := []struct {
		name, hook, id string
		want           error
	}{
		{"unknown hook", "0123456789abcdef0123456789abcdef", d.ID, ErrNotFound},
		{"unknown delivery", h.ID, "0123456789abcdef0123456789abcdef", ErrNotFound},
		{"malformed delivery id", h.ID, "../../h/x", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.s.Redeliver(ctx, tt.hook, tt.id); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRedeliverPendingConflicts(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) {
		w.InitialBackoff, w.MaxBackoff = config.Duration(time.Hour), config.Duration(time.Hour)
	})
	h, _ := f.create(t, "http://"+downAddr(t), "*")
	f.bus.Publish(events.Event{Type: "a.b"})
	eventually(t, "a pending delivery", func() bool { return len(f.deliveries(t, h.ID, Pending)) == 1 })
	d := f.deliveries(t, h.ID, Pending)[0]
	if _, err := f.s.Redeliver(context.Background(), h.ID, d.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("redeliver a pending delivery: %v, want ErrConflict", err)
	}
}

func TestCreateChecksInput(t *testing.T) {
	f := newFixture(t, nil, func(w *config.Webhooks) { w.AllowPrivate = false })
	ctx := context.Background()
	tests := []struct {
		name   string
		url    string
		events []string
		msg    string // part of the error; "" means accepted
	}{
		{"public address", "https://93.184.216.34/hook", []string{"*"}, ""},
		{"no url", "", []string{"*"}, "url is required"},
		{"not a url", "http://[::1", []string{"*"}, "url"},
		{"ftp", "ftp://93.184.216.34/", []string{"*"}, "http or https"},
		{"no host", "http:///path", []string{"*"}, "no host"},
		{"credentials", "https://user:pw@93.184.216.34/", []string{"*"}, "credentials"},
		{"loopback", "http://127.0.0.1:9000/", []string{"*"}, "internal address"},
		{"loopback v6", "http://[::1]:9000/", []string{"*"}, "internal address"},
		{"private", "http://10.0.0.8/", []string{"*"}, "internal address"},
		{"link-local metadata", "http://169.254.169.254/latest", []string{"*"}, "internal address"},
		{"name for loopback", "http://localhost:9000/", []string{"*"}, "internal address"},
		{"does not resolve", "https://no-such-host.invalid/", []string{"*"}, "no-such-host.invalid"},
		{"no events", "https://93.184.216.34/", nil, "at least one event pattern"},
		{"bad pattern", "https://93.184.216.34/", []string{"message.*x"}, "whole segment"},
		{"empty segment", "https://93.184.216.34/", []string{"message..sent"}, "empty segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.s.List())
			h, secret, err := f.s.Create(ctx, HookInput{URL: tt.url, Events: tt.events})
			if tt.msg == "" {
				if err != nil || !strings.HasPrefix(secret, "whsec_") || !validID(h.ID) {
					t.Fatalf("refused: %v (%+v)", err, h)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, tt.msg)
			}
			if len(f.s.List()) != before {
				t.Error("a refused hook was listed")
			}
		})
	}
	stored := 0
	f.kv.Scan(ctx, []byte("webhook/h/"), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error { stored++; return nil })
	if stored != 1 {
		t.Errorf("%d hooks stored, want only the accepted one", stored)
	}
	// Allowed targets on loopback once the operator says so.
	applyConfig(f.s, testConfig(nil))
	if _, _, err := f.s.Create(ctx, HookInput{URL: "http://localhost:9000/", Events: []string{"*"}}); err != nil {
		t.Errorf("loopback with allow_private: %v", err)
	}
}

func TestAttemptChecksAddress(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.MaxAttempts = 2 })
	r := newReceiver(t, nil)
	// A name, so the check after DNS is what refuses it.
	url := strings.Replace(r.URL, "127.0.0.1", "localhost", 1)
	h, _ := f.create(t, url, "*")
	applyConfig(f.s, testConfig(func(w *config.Webhooks) { w.MaxAttempts = 2; w.AllowPrivate = false }))
	f.bus.Publish(events.Event{Type: "a.b"})
	eventually(t, "the refused delivery", func() bool { return len(f.deliveries(t, h.ID, Dead)) == 1 })
	d := f.deliveries(t, h.ID, Dead)[0]
	if !strings.Contains(d.LastError, "internal address") || !strings.Contains(d.LastError, "webhooks.allow_private") || d.LastStatus != 0 {
		t.Errorf("dead delivery: %+v", d)
	}
	if n := len(r.requests()); n != 0 {
		t.Errorf("the internal receiver got %d requests", n)
	}
	applyConfig(f.s, testConfig(nil))
	if _, err := f.s.Redeliver(context.Background(), h.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the allowed delivery", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 1 })
}

func TestRedirectsNotFollowed(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.MaxAttempts = 1 })
	target := newReceiver(t, nil)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	h, _ := f.create(t, redirect.URL, "*")
	f.bus.Publish(events.Event{Type: "a.b"})
	eventually(t, "the dead letter", func() bool { return len(f.deliveries(t, h.ID, Dead)) == 1 })
	if d := f.deliveries(t, h.ID, Dead)[0]; d.LastStatus != http.StatusTemporaryRedirect {
		t.Errorf("last status %d, want 307", d.LastStatus)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect was followed: target got %d requests", n)
	}
}

// TestAtLeastOnce: the receiver is down while events happen, then comes
// up: every event arrives, signed, at least once.
func TestAtLeastOnce(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // runs after the service's Close: cleanups run last first
	f := started(t, st, nil)
	addr := downAddr(t)
	h, secret := f.create(t, "http://"+addr+"/in", "test.*")
	const n = 200
	for i := range n {
		f.bus.Publish(events.Event{Type: "test.seq", Data: i})
	}
	eventually(t, "every delivery queued and tried while the receiver is down", func() bool {
		ds := f.deliveries(t, h.ID, Pending)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Attempts == 0 || d.LastStatus != 0 {
				return false
			}
		}
		return true
	})

	r := receiverOn(t, addr, nil)
	eventually(t, "every delivery delivered", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == n })
	seen := map[int]bool{}
	for _, req := range r.requests() {
		if verify(secret, req) != 1 {
			t.Fatalf("unsigned or badly signed request %q", req.signature)
		}
		var e struct{ Data int }
		if err := json.Unmarshal(req.body, &e); err != nil {
			t.Fatal(err)
		}
		seen[e.Data] = true
	}
	for i := range n {
		if !seen[i] {
			t.Errorf("event %d never arrived", i)
		}
	}
}

// TestRestartResumes: deliveries pending when the service and store close
// are sent by the next run on the same data dir.
func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	open := func() *store.Badger {
		st, err := store.Open(dir, store.Options{MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	f := newFixture(t, st, nil)
	if err := f.s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := downAddr(t)
	h, secret := f.create(t, "http://"+addr, "*")
	for i := range 10 {
		f.bus.Publish(events.Event{Type: fmt.Sprintf("e.%d", i)})
	}
	eventually(t, "ten pending", func() bool { return len(f.deliveries(t, h.ID, Pending)) == 10 })
	if err := f.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	r := receiverOn(t, addr, nil)
	st = open()
	t.Cleanup(func() { st.Close() }) // runs after the service's Close: cleanups run last first
	f = started(t, st, nil)
	eventually(t, "ten delivered after the restart", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 10 })
	types := map[string]bool{}
	for _, req := range r.requests() {
		if verify(secret, req) == 1 {
			types[req.event] = true
		}
	}
	if len(types) != 10 {
		t.Errorf("%d distinct signed events arrived, want 10", len(types))
	}
}

func TestDeleteStopsPending(t *testing.T) {
	f := started(t, nil, nil)
	addr := downAddr(t)
	h, _ := f.create(t, "http://"+addr, "*")
	keep, _ := f.create(t, "http://"+addr, "*")
	for range 5 {
		f.bus.Publish(events.Event{Type: "a.b"})
	}
	eventually(t, "pending deliveries", func() bool {
		return len(f.deliveries(t, h.ID, Pending)) == 5 && len(f.deliveries(t, keep.ID, Pending)) == 5
	})
	ctx := context.Background()
	if err := f.s.Delete(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.ListDeliveries(ctx, h.ID, "", 10, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("deliveries of a deleted hook: %v", err)
	}
	// Nothing of the deleted hook is left in the queue or anywhere else.
	for _, prefix := range []string{"webhook/"} {
		f.kv.Scan(ctx, []byte(prefix), store.ScanOptions{}, func(k, v []byte) error {
			if strings.Contains(string(k), h.ID) || string(v) == h.ID {
				t.Errorf("left behind: %q", k)
			}
			return nil
		})
	}
	if n := len(f.deliveries(t, keep.ID, Pending)); n != 5 {
		t.Errorf("the other hook has %d pending, want 5", n)
	}
	if err := f.s.Delete(ctx, h.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestListDeliveries(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.MaxAttempts = 1 })
	r := newReceiver(t, func(n int) int {
		if n%2 == 0 {
			return http.StatusOK
		}
		return http.StatusGone
	})
	h, _ := f.create(t, r.URL, "*")
	applyConfig(f.s, testConfig(func(w *config.Webhooks) { w.MaxAttempts = 1; w.Workers = 1 })) // one at a time: alternate outcomes
	for i := range 6 {
		f.bus.Publish(events.Event{Type: fmt.Sprintf("e.n%d", i)})
		eventually(t, "finished", func() bool { return len(f.deliveries(t, h.ID, Pending)) == 0 && len(r.requests()) == i+1 })
	}
	ctx := context.Background()
	all, total, err := f.s.ListDeliveries(ctx, h.ID, "", 4, 0)
	if err != nil || total != 6 || len(all) != 4 || all[0].Event != "e.n5" || all[3].Event != "e.n2" {
		t.Fatalf("first page: total %d, %d items, %v", total, len(all), err)
	}
	page, total, _ := f.s.ListDeliveries(ctx, h.ID, "", 4, 4)
	if total != 6 || len(page) != 2 || page[1].Event != "e.n0" {
		t.Errorf("second page: total %d, %+v", total, page)
	}
	tests := []struct {
		state string
		want  int
	}{{Delivered, 3}, {Dead, 3}, {Pending, 0}}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			ds, total, err := f.s.ListDeliveries(ctx, h.ID, tt.state, 50, 0)
			if err != nil || total != tt.want || len(ds) != tt.want {
				t.Fatalf("total %d, %d items, %v", total, len(ds), err)
			}
			for _, d := range ds {
				if d.State != tt.state {
					t.Errorf("%s listed as %s", d.State, tt.state)
				}
			}
		})
	}
	if _, _, err := f.s.ListDeliveries(ctx, h.ID, "done", 50, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad status filter: %v", err)
	}
	if _, _, err := f.s.ListDeliveries(ctx, "nope", "", 50, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hook: %v", err)
	}
}

func TestSweep(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.MaxAttempts = 1; w.Retention = config.Duration(24 * time.Hour) })
	r := newReceiver(t, func(n int) int { return []int{200, 500}[(n-1)%2] })
	h, _ := f.create(t, r.URL, "*")
	applyConfig(f.s, testConfig(func(w *config.Webhooks) {
		w.MaxAttempts = 1
		w.Workers = 1
		w.Retention = config.Duration(24 * time.Hour)
	}))
	for i := range 2 {
		f.bus.Publish(events.Event{Type: "a.b"})
		eventually(t, "finished", func() bool { return len(r.requests()) == i+1 && len(f.deliveries(t, h.ID, Pending)) == 0 })
	}
	down, _ := f.create(t, "http://"+downAddr(t), "*")
	ctx := context.Background()
	if n, err := f.s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep within retention removed %d (%v)", n, err)
	}
	applyConfig(f.s, testConfig(func(w *config.Webhooks) {
		w.MaxAttempts = 100
		w.InitialBackoff, w.MaxBackoff = config.Duration(48*time.Hour), config.Duration(48*time.Hour)
		w.Retention = config.Duration(24 * time.Hour)
	}))
	f.bus.Publish(events.Event{Type: "c.d"}) // pending for the down hook: never swept
	eventually(t, "a pending delivery", func() bool {
		ds := f.deliveries(t, down.ID, Pending)
		return len(ds) == 1 && ds[0].Attempts == 1
	})
	f.clock.advance(25 * time.Hour)
	if n, err := f.s.Sweep(ctx); err != nil || n != 3 { // delivered, dead, and the new delivered one
		t.Errorf("sweep after retention removed %d (%v), want 3", n, err)
	}
	if ds := f.deliveries(t, h.ID, ""); len(ds) != 0 {
		t.Errorf("left after the sweep: %+v", ds)
	}
	if ds := f.deliveries(t, down.ID, Pending); len(ds) != 1 {
		t.Errorf("pending delivery swept: %+v", ds)
	}
}

func TestCloseWaitsForAttempts(t *testing.T) {
	f := newFixture(t, nil, nil)
	if err := f.s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer srv.Close()
	h, _ := f.create(t, srv.URL, "*")
	f.bus.Publish(events.Event{Type: "a.b"})
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- f.s.Close(context.Background()) }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// Close returned after the attempt's outcome was recorded.
	if ds := f.deliveries(t, h.ID, Delivered); len(ds) != 1 {
		t.Errorf("after Close: %+v", f.deliveries(t, h.ID, ""))
	}
}

func TestCloseCutsOffAtDeadline(t *testing.T) {
	f := newFixture(t, nil, nil)
	if err := f.s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so the server notices the client hanging up
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	h, _ := f.create(t, srv.URL, "*")
	f.bus.Publish(events.Event{Type: "a.b"})
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close past its deadline: %v", err)
	}
	// The cut-off attempt is not counted: the delivery stays queued as it was.
	ds := f.deliveries(t, h.ID, Pending)
	if len(ds) != 1 || ds[0].Attempts != 0 {
		t.Errorf("after a cut-off Close: %+v", ds)
	}
	if err := f.s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseWithoutStart(t *testing.T) {
	f := newFixture(t, nil, nil)
	if err := f.s.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestEventsBeforeCloseAreQueued(t *testing.T) {
	f := newFixture(t, nil, nil)
	if err := f.s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, _ := f.create(t, "http://"+downAddr(t), "*")
	for range 20 {
		f.bus.Publish(events.Event{Type: "a.b"})
	}
	if err := f.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ds := f.deliveries(t, h.ID, ""); len(ds) != 20 {
		t.Errorf("%d queued, want every event published before Close (20)", len(ds))
	}
}

func TestHooksSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st, func(w *config.Webhooks) { w.SecretOverlap = config.Duration(time.Hour) })
	h, _ := f.create(t, "https://93.184.216.34/x", "message.*", "session.created", "message.*")
	rotated, _, err := f.s.RotateSecret(context.Background(), h.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.Open(dir, store.Options{MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // runs after the service's Close: cleanups run last first
	g := started(t, st, nil)
	got, err := g.s.Get(h.ID)
	if err != nil || got.URL != h.URL || strings.Join(got.Events, ",") != "message.*,session.created" ||
		!got.PreviousSecretExpiresAt.Equal(rotated.PreviousSecretExpiresAt) {
		t.Errorf("after restart: %+v, %v", got, err)
	}
	b, _ := json.Marshal(g.s.List())
	if strings.Contains(string(b), "whsec_") || strings.Contains(string(b), "secret\"") {
		t.Errorf("a listing shows a secret: %s", b)
	}
}

func applyConfig(s *Service, c *config.Config) { s.Apply(context.Background(), c) }

// TestAllowPrivateOffRetiresConnections: a connection to an internal
// address that was in flight when webhooks.allow_private turned off is not
// reused afterwards, even once other requests have asked for connections
// since (which makes net/http keep newly idle ones again).
func TestAllowPrivateOffRetiresConnections(t *testing.T) {
	f := started(t, nil, func(w *config.Webhooks) { w.MaxAttempts = 1 })
	inside, release := make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			close(inside)
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h, _ := f.create(t, srv.URL, "*")
	f.bus.Publish(events.Event{Type: "a.first"})
	<-inside
	applyConfig(f.s, testConfig(func(w *config.Webhooks) { w.MaxAttempts = 1; w.AllowPrivate = false }))
	f.bus.Publish(events.Event{Type: "a.second"}) // refused at its dial
	eventually(t, "the second delivery refused", func() bool { return len(f.deliveries(t, h.ID, Dead)) == 1 })
	close(release)
	eventually(t, "the first delivery", func() bool { return len(f.deliveries(t, h.ID, Delivered)) == 1 })
	f.bus.Publish(events.Event{Type: "a.third"})
	eventually(t, "the third delivery refused", func() bool { return len(f.deliveries(t, h.ID, Dead)) == 2 })
	for _, d := range f.deliveries(t, h.ID, Dead) {
		if !strings.Contains(d.LastError, "internal address") {
			t.Errorf("dead delivery: %+v", d)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("the internal receiver got %d requests after allow_private turned off, want none", got-1)
	}
}
