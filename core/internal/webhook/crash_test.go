package webhook_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/gatewaytest"
	"github.com/porticohq/portico/core/internal/webhook"
	"github.com/porticohq/portico/hostapi"
)

// TestCrashLosesNoDelivery runs the real gateway binary: a hook is created
// over its API, plugin events are caused while the receiver is down, the
// process is killed with SIGKILL while those deliveries are pending, and a
// second process on the same data dir, with the receiver up, delivers every
// one of them, signed.
func TestCrashLosesNoDelivery(t *testing.T) {
	bin := gatewaytest.Build(t)
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, key := t.TempDir(), auth.NewSecret()
	env := append(os.Environ(),
		"PORTICO_ADMIN_KEY="+key, "PORTICO_PLUGIN__CACHE_DIR="+cache,
		"PORTICO_STORAGE__MEMTABLE_BYTES=1048576", "PORTICO_STORAGE__CACHE_BYTES=1048576",
		"PORTICO_RATELIMIT__DEFAULT__RATE=100000", "PORTICO_RATELIMIT__DEFAULT__BURST=100000",
		"PORTICO_WEBHOOKS__ALLOW_PRIVATE=true", "PORTICO_WEBHOOKS__MAX_ATTEMPTS=100",
		"PORTICO_WEBHOOKS__INITIAL_BACKOFF=20ms", "PORTICO_WEBHOOKS__MAX_BACKOFF=200ms",
	)
	c := &gatewaytest.Client{T: t, Key: key}

	// First run: the receiver is down.
	addr := downAddr(t)
	first := gatewaytest.Start(t, bin, dir, env)
	c.URL = first.URL
	var created struct {
		ID, Secret string
	}
	c.Do("POST", "/api/v1/hooks", `{"url":"http://`+addr+`/in","events":["plugin.disabled","plugin.enabled"]}`, http.StatusCreated, &created)
	const rounds = 5
	for range rounds {
		c.Do("POST", "/api/v1/plugins/echo/disable", "", http.StatusOK, nil)
		c.Do("POST", "/api/v1/plugins/echo/enable", "", http.StatusOK, nil)
	}
	var pending struct {
		Total      int
		Deliveries []webhook.Delivery
	}
	gatewaytest.Eventually(t, "every delivery queued and tried at least once", func() bool {
		c.Do("GET", "/api/v1/hooks/"+created.ID+"/deliveries?status=pending", "", http.StatusOK, &pending)
		if pending.Total != 2*rounds {
			return false
		}
		for _, d := range pending.Deliveries {
			if d.Attempts == 0 {
				return false
			}
		}
		return true
	})
	first.Kill(t)

	// Second run on the same data dir: the receiver is up.
	recv := newReceiver(t, addr, created.Secret)
	c.URL = gatewaytest.Start(t, bin, dir, env).URL
	gatewaytest.Eventually(t, "every pending delivery delivered after the restart", func() bool {
		var done struct{ Total int }
		c.Do("GET", "/api/v1/hooks/"+created.ID+"/deliveries?status=delivered", "", http.StatusOK, &done)
		return done.Total == 2*rounds
	})
	got := recv.signed()
	events := map[string]int{}
	for _, d := range pending.Deliveries {
		if got[d.ID] == "" {
			t.Errorf("delivery %s (%s) pending at the crash never arrived signed", d.ID, d.Event)
		}
		events[got[d.ID]]++
	}
	if events["plugin.disabled"] != rounds || events["plugin.enabled"] != rounds {
		t.Errorf("events delivered: %v", events)
	}
	if bad := recv.unsigned(); bad > 0 {
		t.Errorf("%d requests with a bad signature", bad)
	}
}

// receiver records which deliveries arrived with a valid signature.
type receiver struct {
	secret string
	mu     sync.Mutex
	ok     map[string]string // delivery id -> event type
	bad    int
}

func newReceiver(t *testing.T, addr, secret string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{secret: secret, ok: map[string]string{}}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body) {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.ok[req.Header.Get(webhook.HeaderDelivery)] = req.Header.Get(webhook.HeaderEvent)
}

func (r *receiver) signed() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.ok))
	for k, v := range r.ok {
		out[k] = v
	}
	return out
}

func (r *receiver) unsigned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func downAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
