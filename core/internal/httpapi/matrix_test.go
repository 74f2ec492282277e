package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/auth"
)

// generous lifts rate limits so the matrix sees only auth decisions.
const generous = "[auth]\nfailures_per_minute = 100000\n[ratelimit.default]\nrate = 100000.0\nburst = 100000\n" +
	"[ratelimit.config_write]\nrate = 100000.0\nburst = 100000\n[ratelimit.unauthenticated]\nrate = 100000.0\nburst = 100000\n" +
	"[ratelimit.sessions_read]\nrate = 100000.0\nburst = 100000\n[ratelimit.sessions_write]\nrate = 100000.0\nburst = 100000\n"

// TestRoutesAllHavePermissions walks the router itself: every route it
// serves must come from the route table with a role.
func TestRoutesAllHavePermissions(t *testing.T) {
	a := newAPI(t, "")
	table := map[string]route{}
	for _, rt := range a.routes() {
		table[rt.method+" "+rt.pattern] = rt
	}
	n := 0
	err := chi.Walk(a.handler.(chi.Routes), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		n++
		rt, ok := table[method+" "+pattern]
		if !ok {
			t.Errorf("%s %s is served but not in the route table", method, pattern)
		} else if rt.role == 0 {
			t.Errorf("%s %s has no role", method, pattern)
		}
		return nil
	})
	if err != nil || n != len(table) {
		t.Errorf("walked %d routes (err %v), table has %d", n, err, len(table))
	}
}

// spec is ../shared/design/api.md's permission table for the routes that
// exist: the route table must agree with it, so a role typed wrong in the
// table fails here rather than silently opening a route.
var spec = map[string]auth.Role{
	"GET /health":                             RolePublic,
	"GET /api/v1/status/health":               RolePublic,
	"GET /api/v1/status/ready":                RolePublic,
	"GET /api/v1/status":                      RoleOperator,
	"GET /api/v1/cluster":                     RoleOperator,
	"GET /ui":                                 RolePublic,
	"GET /ui/*":                               RolePublic,
	"GET /api/v1/config":                      RoleAdmin,
	"PATCH /api/v1/config":                    RoleAdmin,
	"POST /api/v1/admin/backup":               RoleAdmin,
	"GET /api/v1/keys":                        RoleAdmin,
	"POST /api/v1/keys":                       RoleAdmin,
	"DELETE /api/v1/keys/{id}":                RoleAdmin,
	"GET /api/v1/users":                       RoleAdmin,
	"POST /api/v1/users":                      RoleAdmin,
	"GET /api/v1/users/{id}":                  RoleAdmin,
	"PUT /api/v1/users/{id}":                  RoleAdmin,
	"DELETE /api/v1/users/{id}":               RoleAdmin,
	"GET /api/v1/users/{id}/keys":             RoleAdmin,
	"POST /api/v1/users/{id}/keys":            RoleAdmin,
	"DELETE /api/v1/users/{id}/keys/{key_id}": RoleAdmin,
	"GET /api/v1/audit":                       RoleAdmin,
	"GET /api/v1/plugins":                     RoleOperator,
	"POST /api/v1/plugins":                    RoleOperator,
	"DELETE /api/v1/plugins/{name}":           RoleOperator,
	"GET /api/v1/plugins/{name}":              RoleOperator,
	"POST /api/v1/plugins/{name}/reload":      RoleOperator,
	"POST /api/v1/plugins/{name}/disable":     RoleOperator,
	"POST /api/v1/plugins/{name}/enable":      RoleOperator,
	"GET /api/v1/packs":                       RoleOperator,
	"POST /api/v1/packs":                      RoleOperator,
	"GET /api/v1/skills":                      RoleUser,
	"POST /api/v1/skills/{name}/invoke":       RoleUser,
	"GET /api/v1/usage":                       RoleUser,
	"POST /api/v1/sessions":                   RoleUser,
	"GET /api/v1/sessions":                    RoleUser,
	"GET /api/v1/sessions/{id}":               RoleUser,
	"DELETE /api/v1/sessions/{id}":            RoleUser,
	"GET /api/v1/sessions/{id}/messages":      RoleUser,
	"POST /api/v1/sessions/{id}/messages":     RoleUser,
	"POST /api/v1/chat":                       RoleUser,
	"GET /api/v1/ws":                          RoleUser,
	"GET /api/v1/events/stream":               RoleUser,
	"GET /api/v1/channels":                    RoleOperator,
	"GET /api/v1/channels/{name}/health":      RoleOperator,
	"POST /api/v1/channels/{name}/restart":    RoleOperator,
	"POST /api/v1/channels/{name}/webhook":    RolePublic,

	// Outbound webhooks.
	"GET /api/v1/hooks":                                       RoleOperator,
	"POST /api/v1/hooks":                                      RoleOperator,
	"GET /api/v1/hooks/{id}":                                  RoleOperator,
	"DELETE /api/v1/hooks/{id}":                               RoleOperator,
	"POST /api/v1/hooks/{id}/rotate-secret":                   RoleOperator,
	"GET /api/v1/hooks/{id}/deliveries":                       RoleOperator,
	"POST /api/v1/hooks/{id}/deliveries/{delivery}/redeliver": RoleOperator,

	// MCP and A2A.
	"POST /api/v1/mcp":                    RoleUser,
	"GET /api/v1/mcp":                     RoleUser,
	"DELETE /api/v1/mcp":                  RoleUser,
	"GET /api/v1/mcp/registry":            RoleOperator,
	"POST /api/v1/mcp/{server}/mcp":       RoleUser,
	"GET /api/v1/mcp/{server}/mcp":        RoleUser,
	"DELETE /api/v1/mcp/{server}/mcp":     RoleUser,
	"GET /.well-known/agent-card.json":    RolePublic,
	"GET /.well-known/agent-cards":        RolePublic,
	"GET /.well-known/agent-cards/{name}": RolePublic,
	"POST /a2a":                           RoleUser,

	// Operations.
	"GET /api/v1/logs":        RoleOperator,
	"GET /api/v1/logs/stream": RoleOperator,
	"GET /metrics":            RoleOperator,
	"GET /cert":               RolePublic,
}

// TestPermissionMatrix sends every route every kind of credential and
// checks the answer against the route's role.
func TestPermissionMatrix(t *testing.T) {
	a := newAPI(t, generous)
	ctx := context.Background()
	svc := a.d.Auth
	admin, _ := svc.CreateUser(ctx, auth.UserInput{Email: "a@example.com", Name: "a", Role: auth.RoleAdmin})
	keyOf := func(role auth.Role, exp *time.Time) string {
		_, s, err := svc.CreateKey(ctx, auth.KeyInput{Name: role.String(), Role: role, UserID: admin.ID, ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	userKey, opKey, adminKey := keyOf(auth.RoleUser, nil), keyOf(auth.RoleOperator, nil), keyOf(auth.RoleAdmin, nil)
	soon := time.Now().Add(time.Hour)
	expired := keyOf(auth.RoleAdmin, &soon)
	revoked := keyOf(auth.RoleAdmin, nil)
	keys, _ := svc.ListKeys("", 100, 0)
	for _, k := range keys {
		if strings.HasPrefix(revoked, k.Prefix) {
			if err := svc.RevokeKey(ctx, k.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })

	type cred struct {
		name   string
		header [2]string
		role   auth.Role // 0: not a valid credential
	}
	creds := []cred{
		{"none", [2]string{}, 0},
		{"malformed header", [2]string{"Authorization", "Token abc"}, 0},
		{"malformed key", [2]string{"X-API-Key", "pk_short"}, 0},
		{"unknown key", [2]string{"X-API-Key", auth.NewSecret()}, 0},
		{"revoked key", [2]string{"X-API-Key", revoked}, 0},
		{"expired key", [2]string{"X-API-Key", expired}, 0},
		{"user key", [2]string{"Authorization", "Bearer " + userKey}, auth.RoleUser},
		{"operator key", [2]string{"Authorization", "Bearer " + opKey}, auth.RoleOperator},
		{"admin key", [2]string{"X-API-Key", adminKey}, auth.RoleAdmin},
	}
	for _, rt := range a.routes() {
		if want, ok := spec[rt.method+" "+rt.pattern]; !ok || want != rt.role {
			t.Errorf("%s %s: role %v, the permission table says %v (ok=%v)", rt.method, rt.pattern, rt.role, want, ok)
		}
		path := strings.NewReplacer("{id}", "x", "{key_id}", "y", "{name}", "z", "{delivery}", "d", "{server}", "z").Replace(rt.pattern)
		for _, c := range creds {
			t.Run(rt.method+" "+rt.pattern+"/"+c.name, func(t *testing.T) {
				// Streams end when their request does.
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				r := httptest.NewRequestWithContext(ctx, rt.method, path, strings.NewReader("{}"))
				if c.header[0] != "" {
					r.Header.Set(c.header[0], c.header[1])
				}
				w := httptest.NewRecorder()
				a.ServeHTTP(w, r)
				var want int // 0: anything but 401, 403 and 429
				switch {
				case rt.role == RolePublic:
				case c.role == 0:
					want = http.StatusUnauthorized
				case c.role < rt.role:
					want = http.StatusForbidden
				}
				got := w.Code
				if want != 0 && got != want || want == 0 && (got == 401 || got == 403 || got == 429) {
					t.Errorf("status %d, want %s: %s", got, map[int]string{0: "not 401/403/429", 401: "401", 403: "403"}[want], w.Body)
				}
				if want != 0 {
					if code(t, w.Body.Bytes()) != map[int]string{401: CodeUnauthorized, 403: CodeForbidden}[want] {
						t.Errorf("wrong code: %s", w.Body)
					}
				}
				if rt.group != "" && want == 0 && w.Header().Get("X-RateLimit-Limit") == "" {
					t.Error("no rate-limit headers")
				}
			})
		}
	}
}
