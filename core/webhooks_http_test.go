package core_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/porticohq/portico/core/internal/webhook"
)

// TestWebhooksOverHTTP wires the whole gateway: a hook created over the
// API receives, signed, the events the gateway publishes (a config patch,
// a plugin disabled and enabled), and webhooks.* changes apply live.
func TestWebhooksOverHTTP(t *testing.T) {
	t.Parallel()
	// Enough attempts that a refused delivery stays pending (not dead) for
	// the seconds the test polls it, even on a loaded machine.
	g := start(t, small+"[webhooks]\nallow_private = true\ninitial_backoff = \"5ms\"\nmax_backoff = \"200ms\"\nmax_attempts = 100\n")
	type got struct {
		event string
		ok    bool
	}
	var mu sync.Mutex
	var seen []got
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, got{r.Header.Get(webhook.HeaderEvent), webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body)})
		mu.Unlock()
	}))
	defer recv.Close()

	r := g.do(t, "POST", g.url+"/api/v1/hooks", `{"url":"`+recv.URL+`","events":["plugin.disabled","plugin.enabled","config.reloaded"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := r.json(t)
	mu.Lock()
	secret = created["secret"].(string)
	mu.Unlock()
	id := created["id"].(string)

	for _, step := range []string{"/api/v1/plugins/echo/disable", "/api/v1/plugins/echo/enable"} {
		if r := g.do(t, "POST", g.url+step, ""); r.status != 200 {
			t.Fatalf("%s: %d %s", step, r.status, r.body)
		}
	}
	if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"webhooks.allow_private":false}`); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	// The change is live: a loopback target is refused now...
	if r := g.do(t, "POST", g.url+"/api/v1/hooks", `{"url":"`+recv.URL+`","events":["*"]}`); r.status != 400 || !strings.Contains(string(r.body), "allow_private") {
		t.Errorf("loopback hook with allow_private off: %d %s", r.status, r.body)
	}
	// ...and so are the attempts to the existing one, until it is allowed again.
	eventually(t, "a delivery refused", func() bool {
		m := g.do(t, "GET", g.url+"/api/v1/hooks/"+id+"/deliveries?status=pending", "").json(t)
		ds, _ := m["deliveries"].([]any)
		for _, d := range ds {
			if e, _ := d.(map[string]any)["last_error"].(string); strings.Contains(e, "internal address") {
				return true
			}
		}
		return false
	})
	if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"webhooks.allow_private":true}`); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	eventually(t, "every delivery delivered", func() bool {
		m := g.do(t, "GET", g.url+"/api/v1/hooks/"+id+"/deliveries?status=delivered", "").json(t)
		return m["total"] == 4.0 // disabled, enabled, and two config reloads
	})
	mu.Lock()
	defer mu.Unlock()
	events := map[string]int{}
	for _, s := range seen {
		if !s.ok {
			t.Errorf("%s arrived with a bad signature", s.event)
		}
		events[s.event]++
	}
	if events["plugin.disabled"] != 1 || events["plugin.enabled"] != 1 || events["config.reloaded"] != 2 {
		t.Errorf("events received: %v", events)
	}

	// Both creations are audited, the refused one as a failure; no secret.
	list := g.do(t, "GET", g.url+"/api/v1/audit?action=hook.create", "").json(t)
	entries, _ := list["entries"].([]any)
	if len(entries) != 2 || get(entries[0].(map[string]any), "outcome") != "failure" || get(entries[1].(map[string]any), "target") != id ||
		strings.Contains(string(mustJSON(t, list)), "whsec_") {
		t.Errorf("audit of hook.create: %v", list)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
