package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/webhook"
)

// roleKey creates a user and a key of role for it, and returns the secret.
func roleKey(t *testing.T, a *API, role auth.Role) string {
	t.Helper()
	ctx := context.Background()
	u, err := a.d.Auth.CreateUser(ctx, auth.UserInput{Email: role.String() + "@example.com", Name: role.String(), Role: role})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.d.Auth.CreateKey(ctx, auth.KeyInput{Name: role.String(), Role: role, UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// call sends one request with key and decodes a JSON answer into a map.
func call(t *testing.T, a *API, key, method, path, body string) (int, map[string]any, []byte) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	var m map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, w.Body)
		}
	}
	return w.Code, m, w.Body.Bytes()
}

func TestHooksAPI(t *testing.T) {
	a := newAPI(t, generous+"[webhooks]\nallow_private = true\nmax_attempts = 1\n")
	ctx := context.Background()
	if err := a.d.Hooks.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.d.Hooks.Close(ctx) })
	op := roleKey(t, a, auth.RoleOperator)

	// The receiver fails the first delivery at once and holds the second
	// until the test ends, so that one stays pending.
	var n atomic.Int32
	hold := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		<-hold
	}))
	t.Cleanup(recv.Close)
	t.Cleanup(func() { close(hold) })

	status, created, body := call(t, a, op, "POST", "/api/v1/hooks", `{"url":"`+recv.URL+`/in","events":["test.*"],"description":"ci"}`)
	if status != http.StatusCreated || !strings.HasPrefix(created["secret"].(string), "whsec_") || created["url"] != recv.URL+"/in" {
		t.Fatalf("create: %d %s", status, body)
	}
	id := created["id"].(string)

	status, list, body := call(t, a, op, "GET", "/api/v1/hooks", "")
	if status != 200 || list["total"] != 1.0 || strings.Contains(string(body), "whsec_") || strings.Contains(string(body), `"secret"`) {
		t.Errorf("list: %d %s", status, body)
	}
	if status, got, body := call(t, a, op, "GET", "/api/v1/hooks/"+id, ""); status != 200 || got["description"] != "ci" || strings.Contains(string(body), "whsec_") {
		t.Errorf("get: %d %s", status, body)
	}
	status, rotated, body := call(t, a, op, "POST", "/api/v1/hooks/"+id+"/rotate-secret", "")
	if status != 200 || rotated["secret"] == created["secret"] || !strings.HasPrefix(rotated["secret"].(string), "whsec_") || rotated["previous_secret_expires_at"] == nil {
		t.Errorf("rotate: %d %s", status, body)
	}

	a.d.Bus.Publish(events.Event{Type: "test.one"})
	var dead map[string]any
	pollUntil(t, "a dead delivery", func() bool {
		_, m, _ := call(t, a, op, "GET", "/api/v1/hooks/"+id+"/deliveries?status=dead", "")
		if m["total"] == 1.0 {
			dead = m["deliveries"].([]any)[0].(map[string]any)
			return true
		}
		return false
	})
	if dead["event"] != "test.one" || dead["attempts"] != 1.0 || dead["last_status"] != 500.0 {
		t.Errorf("dead delivery: %v", dead)
	}
	did := dead["id"].(string)
	status, again, body := call(t, a, op, "POST", "/api/v1/hooks/"+id+"/deliveries/"+did+"/redeliver", "")
	if status != http.StatusAccepted || again["state"] != "pending" || again["id"] != did {
		t.Errorf("redeliver: %d %s", status, body)
	}
	// Held by the receiver, it is pending: redelivering it again conflicts.
	if status, _, body := call(t, a, op, "POST", "/api/v1/hooks/"+id+"/deliveries/"+did+"/redeliver", ""); status != http.StatusConflict || !strings.Contains(string(body), `"conflict"`) {
		t.Errorf("redeliver a pending delivery: %d %s", status, body)
	}
	status, page, body := call(t, a, op, "GET", "/api/v1/hooks/"+id+"/deliveries?limit=1&offset=0", "")
	if status != 200 || page["total"] != 1.0 || page["limit"] != 1.0 || len(page["deliveries"].([]any)) != 1 {
		t.Errorf("deliveries: %d %s", status, body)
	}

	if status, _, body := call(t, a, op, "DELETE", "/api/v1/hooks/"+id, ""); status != http.StatusNoContent {
		t.Errorf("delete: %d %s", status, body)
	}
	if status, _, _ := call(t, a, op, "GET", "/api/v1/hooks/"+id, ""); status != http.StatusNotFound {
		t.Errorf("get after delete: %d", status)
	}
	for _, action := range []string{"hook.create", "hook.rotate_secret", "hook.redeliver", "hook.delete"} {
		entries, _, err := a.d.Audit.List(ctx, audit.Query{Action: action})
		if err != nil || len(entries) == 0 || entries[0].Target != id {
			t.Errorf("audit %s: %+v, %v", action, entries, err)
			continue
		}
		if b, _ := json.Marshal(entries); strings.Contains(string(b), "whsec_") {
			t.Errorf("audit %s shows a secret: %s", action, b)
		}
	}
}

func TestHooksAPIBadInput(t *testing.T) {
	a := newAPI(t, generous) // webhooks.allow_private is off
	op := roleKey(t, a, auth.RoleOperator)
	h, _, err := a.d.Hooks.Create(context.Background(), webhook.HookInput{URL: "https://93.184.216.34/", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	missing := "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"invalid JSON", "POST", "/api/v1/hooks", `{"url":`, 400, CodeBadRequest, "request body"},
		{"unknown field", "POST", "/api/v1/hooks", `{"url":"https://93.184.216.34/","events":["*"],"secret":"x"}`, 400, CodeBadRequest, "unknown field"},
		{"no url", "POST", "/api/v1/hooks", `{"events":["*"]}`, 400, CodeBadRequest, "url is required"},
		{"bad url", "POST", "/api/v1/hooks", `{"url":"ftp://93.184.216.34/","events":["*"]}`, 400, CodeBadRequest, "http or https"},
		{"private target", "POST", "/api/v1/hooks", `{"url":"http://127.0.0.1:8080/","events":["*"]}`, 400, CodeBadRequest, "webhooks.allow_private"},
		{"metadata address", "POST", "/api/v1/hooks", `{"url":"http://169.254.169.254/","events":["*"]}`, 400, CodeBadRequest, "internal address"},
		{"no events", "POST", "/api/v1/hooks", `{"url":"https://93.184.216.34/","events":[]}`, 400, CodeBadRequest, "event pattern"},
		{"bad pattern", "POST", "/api/v1/hooks", `{"url":"https://93.184.216.34/","events":["message*"]}`, 400, CodeBadRequest, "bad event pattern"},
		{"unknown hook", "GET", "/api/v1/hooks/" + missing, "", 404, CodeNotFound, "hook"},
		{"delete unknown hook", "DELETE", "/api/v1/hooks/" + missing, "", 404, CodeNotFound, "hook"},
		{"rotate unknown hook", "POST", "/api/v1/hooks/" + missing + "/rotate-secret", "", 404, CodeNotFound, "hook"},
		{"deliveries of unknown hook", "GET", "/api/v1/hooks/" + missing + "/deliveries", "", 404, CodeNotFound, "hook"},
		{"bad status filter", "GET", "/api/v1/hooks/" + h.ID + "/deliveries?status=done", "", 400, CodeBadRequest, "pending, delivered or dead"},
		{"bad limit", "GET", "/api/v1/hooks/" + h.ID + "/deliveries?limit=0", "", 400, CodeBadRequest, "limit"},
		{"unknown delivery", "POST", "/api/v1/hooks/" + h.ID + "/deliveries/" + missing + "/redeliver", "", 404, CodeNotFound, "delivery"},
		{"malformed delivery", "POST", "/api/v1/hooks/" + h.ID + "/deliveries/xyz/redeliver", "", 404, CodeNotFound, "delivery"},
		{"redeliver for unknown hook", "POST", "/api/v1/hooks/" + missing + "/deliveries/" + missing + "/redeliver", "", 404, CodeNotFound, "hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := call(t, a, op, tt.method, tt.path, tt.body)
			if status != tt.status || code(t, body) != tt.code || !strings.Contains(string(body), tt.msg) {
				t.Errorf("%d %s, want %d %s mentioning %q", status, body, tt.status, tt.code, tt.msg)
			}
		})
	}
	// A user may not manage hooks.
	user := roleKey(t, a, auth.RoleUser)
	if status, _, body := call(t, a, user, "POST", "/api/v1/hooks", `{"url":"https://93.184.216.34/","events":["*"]}`); status != 403 || code(t, body) != CodeForbidden {
		t.Errorf("user creates a hook: %d %s", status, body)
	}
	// Nothing but the one hook made above was stored.
	if hooks := a.d.Hooks.List(); len(hooks) != 1 || hooks[0].ID != h.ID {
		t.Errorf("hooks after bad input: %+v", hooks)
	}
	n := 0
	a.d.Store.Scan(context.Background(), []byte("webhook/"), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error { n++; return nil })
	if n != 1 {
		t.Errorf("%d webhook keys stored, want the one hook", n)
	}
}

// pollUntil polls cond until it holds; the deadline guards against a hang
// and is not a speed assertion.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
