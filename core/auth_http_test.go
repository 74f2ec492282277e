package core_test

import (
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/porticohq/portico/core/internal/auth"
)

func TestRateLimitOverHTTPChangesLive(t *testing.T) {
	t.Parallel()
	base := "[storage]\nmemtable_bytes = 1048576\ncache_bytes = 1048576\n[ratelimit.config_write]\nrate = 100000.0\nburst = 100000\n"
	g := start(t, base+"[ratelimit.default]\nrate = 0.001\nburst = 3\n")
	for i := 3; i >= 1; i-- {
		r := g.do(t, "GET", g.url+"/api/v1/status", "")
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", 4-i, r.status, r.body)
		}
		if r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(i-1) || r.header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("headers: limit %q remaining %q reset %q", r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"), r.header.Get("X-RateLimit-Reset"))
		}
	}
	r := g.do(t, "GET", g.url+"/api/v1/status", "")
	if r.status != 429 || r.errCode(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the burst: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	// Probes are never limited.
	if r := do(t, "GET", g.url+"/api/v1/status/health", ""); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "" {
		t.Errorf("probe: %d, headers %v", r.status, r.header)
	}
	// A new number in the file changes enforcement without a restart.
	if err := os.WriteFile(g.file, []byte(base+"[ratelimit.default]\nrate = 1000.0\nburst = 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the raised limit to apply", func() bool {
		r := g.do(t, "GET", g.url+"/api/v1/status", "")
		return r.status == 200 && r.header.Get("X-RateLimit-Limit") == "1000"
	})
}

func TestFailedAuthLockout(t *testing.T) {
	t.Parallel()
	// The unauthenticated group refills slowly, so its burst of 10 is all
	// the anonymous requests get however slowly the test runs.
	g := start(t, small+"[auth]\nfailures_per_minute = 3\n[auth.jwt]\nhs256_secret = \""+strings.Repeat("s", 32)+"\"\n[ratelimit.unauthenticated]\nrate = 0.001\nburst = 10\n")
	// Requests with no credential at all are not failed logins: ten of
	// them (over failures_per_minute) must not lock the address out.
	for i := range 10 {
		if r := do(t, "GET", g.url+"/api/v1/status", ""); r.status != 401 || !strings.Contains(string(r.body), "no credential") {
			t.Fatalf("anonymous request %d: %d %s", i+1, r.status, r.body)
		}
	}
	if r := g.do(t, "GET", g.url+"/api/v1/status", ""); r.status != 200 {
		t.Fatalf("a valid key after anonymous requests: %d %s", r.status, r.body)
	}
	// Past the unauthenticated group's burst (10), anonymous requests are
	// rate limited as such, still without a lockout.
	if r := do(t, "GET", g.url+"/api/v1/status", ""); r.status != 429 || r.header.Get("X-RateLimit-Limit") != "10" {
		t.Errorf("11th anonymous request: %d %s", r.status, r.body)
	}
	// A refused JWT says "invalid token", not the parser's reason.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","portico_role":"admin"}`)) + "."
	r := do(t, "GET", g.url+"/api/v1/status", "", "Authorization", "Bearer "+none)
	if r.status != 401 || get(r.json(t), "error.message") != "invalid token" {
		t.Errorf("alg none token: %d %s", r.status, r.body)
	}
	for i := range 2 {
		if r := do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", auth.NewSecret()); r.status != 401 || r.errCode(t) != "unauthorized" {
			t.Fatalf("attempt %d: %d %s", i+1, r.status, r.body)
		}
	}
	if r := do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", auth.NewSecret()); r.status != 429 {
		t.Fatalf("4th bad attempt: %d %s", r.status, r.body)
	}
	// Once locked out, even a valid key from that IP waits: guessing stops.
	if r := g.do(t, "GET", g.url+"/api/v1/status", ""); r.status != 429 {
		t.Errorf("valid key during lockout: %d", r.status)
	}
	// Failures were audited, without the credentials.
	entries, total, err := g.Audit().List(t.Context(), audit_query("auth.failed"))
	if err != nil || total != 3 {
		t.Fatalf("audited failures: %d, %v", total, err)
	}
	for _, e := range entries {
		if reason := e.Details["reason"].(string); strings.Contains(reason, "pk_") || strings.Contains(reason, "none") {
			t.Errorf("credential in audit entry: %+v", e)
		}
	}
}

func TestKeysAndUsersOverHTTP(t *testing.T) {
	t.Parallel()
	g := start(t, small)
	r := g.do(t, "POST", g.url+"/api/v1/users", `{"email":"dev@example.com","name":"Dev","role":"operator"}`)
	if r.status != 201 {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	uid := r.json(t)["id"].(string)
	if r := g.do(t, "POST", g.url+"/api/v1/users", `{"email":"dev@example.com","name":"Dup","role":"user"}`); r.status != 409 {
		t.Errorf("duplicate email: %d", r.status)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/users", `{"email":"x@example.com","name":"X","role":"root"}`); r.status != 400 {
		t.Errorf("bad role: %d", r.status)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/users", `{"email":"x@example.com","bogus":1}`); r.status != 400 {
		t.Errorf("unknown field: %d", r.status)
	}
	r = g.do(t, "POST", g.url+"/api/v1/users/"+uid+"/keys", `{"name":"ci","role":"operator","expires_in":"24h"}`)
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	secret := r.json(t)["secret"].(string)
	keyID := get(r.json(t), "key.id").(string)
	if get(r.json(t), "key.hash") != nil {
		t.Error("key hash in the answer")
	}
	if r := g.do(t, "POST", g.url+"/api/v1/users/"+uid+"/keys", `{"name":"too strong","role":"admin"}`); r.status != 400 {
		t.Errorf("admin key for an operator: %d %s", r.status, r.body)
	}
	// The operator's key works for operator routes and not for admin ones.
	if r := do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", secret); r.status != 200 {
		t.Errorf("operator key on status: %d", r.status)
	}
	if r := do(t, "GET", g.url+"/api/v1/keys", "", "X-API-Key", secret); r.status != 403 || r.errCode(t) != "forbidden" {
		t.Errorf("operator key on keys: %d", r.status)
	}
	list := g.do(t, "GET", g.url+"/api/v1/users/"+uid+"/keys", "").json(t)
	if list["total"] != 1.0 {
		t.Errorf("user's keys: %v", list)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/keys?limit=0", ""); r.status != 400 {
		t.Errorf("limit=0: %d", r.status)
	}
	// Disabling the user stops its key at once.
	if r := g.do(t, "PUT", g.url+"/api/v1/users/"+uid, `{"email":"dev@example.com","name":"Dev","role":"operator","disabled":true}`); r.status != 200 {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", secret); r.status != 401 {
		t.Errorf("disabled user's key: %d", r.status)
	}
	g.do(t, "PUT", g.url+"/api/v1/users/"+uid, `{"email":"dev@example.com","name":"Dev","role":"operator"}`)
	if r := g.do(t, "DELETE", g.url+"/api/v1/keys/"+keyID, ""); r.status != 204 {
		t.Errorf("revoke: %d", r.status)
	}
	if r := do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", secret); r.status != 401 {
		t.Errorf("revoked key: %d", r.status)
	}
	if r := g.do(t, "DELETE", g.url+"/api/v1/users/"+uid, ""); r.status != 204 {
		t.Errorf("delete user: %d", r.status)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/users/"+uid, ""); r.status != 404 {
		t.Errorf("deleted user: %d", r.status)
	}
	// Everything above is in the audit trail, readable with filters.
	a := g.do(t, "GET", g.url+"/api/v1/audit?action=key.create&limit=10", "").json(t)
	if a["total"] != 2.0 { // the created key and the refused admin key
		t.Errorf("key.create entries: %v", a["total"])
	}
	for _, action := range []string{"user.create", "user.update", "user.delete", "key.revoke"} {
		if n := g.do(t, "GET", g.url+"/api/v1/audit?action="+action, "").json(t)["total"]; n == 0.0 {
			t.Errorf("no %s audit entry", action)
		}
	}
	if r := g.do(t, "GET", g.url+"/api/v1/audit?since=yesterday", ""); r.status != 400 {
		t.Errorf("bad since: %d", r.status)
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	// Loopback is the trusted proxy: X-Forwarded-For decides the client, so
	// failures from one forwarded client do not lock out another.
	g := start(t, small+"[auth]\nfailures_per_minute = 1\n[http]\ntrusted_proxies = [\"127.0.0.0/8\", \"::1\"]\n")
	bad := auth.NewSecret()
	do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", bad, "X-Forwarded-For", "203.0.113.9")
	if r := do(t, "GET", g.url+"/api/v1/status", "", "X-API-Key", bad, "X-Forwarded-For", "203.0.113.9"); r.status != 429 {
		t.Errorf("same forwarded client: %d", r.status)
	}
	if r := g.do(t, "GET", g.url+"/api/v1/status", "", "X-Forwarded-For", "198.51.100.7"); r.status != 200 {
		t.Errorf("other forwarded client: %d %s", r.status, r.body)
	}
	entries, _, _ := g.Audit().List(t.Context(), audit_query("auth.failed"))
	if len(entries) == 0 || entries[0].Actor != "ip:203.0.113.9" {
		t.Errorf("audited actor: %+v", entries)
	}
}
