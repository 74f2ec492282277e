package core_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/internal/testtool"
)

// startNodes starts n gateways at the same moment on the PostgreSQL
// database dbURL, sharing one admin key, as replicas behind a load
// balancer do.
func startNodes(t *testing.T, dbURL string, n int) []*gw {
	t.Helper()
	key := auth.NewSecret()
	nodes := make([]*gw, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "portico.toml"), []byte(sessionsConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			nodes[i], errs[i] = startWith(t, dir, io.Discard, key, "PORTICO_STORAGE__BACKEND=postgres", "PORTICO_STORAGE__POSTGRES__URL="+dbURL)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	return nodes
}

// send is one request that may run on any goroutine.
func send(method, url, body string, hdr ...string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestTwoNodesOnePostgres: two gateway processes' worth of state on one
// database behave as one gateway.
func TestTwoNodesOnePostgres(t *testing.T) {
	t.Parallel()
	nodes := startNodes(t, testtool.Postgres(t), 2)
	n1, n2 := nodes[0], nodes[1]

	// Started at once on an empty database: one bootstrap admin.
	if r := n2.do(t, "GET", n2.url+"/api/v1/users", ""); r.status != 200 || r.json(t)["total"] != 1.0 {
		t.Fatalf("users after two starts: %d %s", r.status, r.body)
	}
	// Each node lists both, itself first; the same plugins, one digest.
	for i, g := range nodes {
		r := g.do(t, "GET", g.url+"/api/v1/cluster", "")
		list, _ := r.json(t)["nodes"].([]any)
		if r.status != 200 || len(list) != 2 {
			t.Fatalf("cluster on node %d: %d %s", i+1, r.status, r.body)
		}
		first, second := list[0].(map[string]any), list[1].(map[string]any)
		if first["this"] != true || first["id"] != r.json(t)["node"] || first["up"] != true || second["up"] != true ||
			first["address"] != g.Addr() || first["plugins_digest"] == "" || first["plugins_digest"] != second["plugins_digest"] {
			t.Fatalf("cluster on node %d: %s", i+1, r.body)
		}
	}
	// PostgreSQL is backed up with its own tools; the API says so.
	if r := n1.do(t, "POST", n1.url+"/api/v1/admin/backup", ""); r.status != 409 || !strings.Contains(string(r.body), "pg_dump") {
		t.Fatalf("backup on postgres: %d %s", r.status, r.body)
	}
	// A key created on node 1 works on node 2 at once.
	alice := userKey(t, n1, "alice@example.com", "user")
	as := func(g *gw, method, path, body string, hdr ...string) response {
		return do(t, method, g.url+path, body, append([]string{"X-API-Key", alice}, hdr...)...)
	}
	if r := as(n2, "GET", "/api/v1/sessions", ""); r.status != 200 {
		t.Fatalf("node 1's key on node 2: %d %s", r.status, r.body)
	}
	// A session created on node 1 takes messages on node 2 and lists on
	// node 1 with exact totals.
	r := as(n1, "POST", "/api/v1/sessions", `{"channel":"api","user_id":"end-user"}`)
	if r.status != 201 {
		t.Fatalf("create on node 1: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	if r := as(n2, "POST", "/api/v1/sessions/"+id+"/messages", `{"text":"hello from node 2"}`); r.status != 201 || get(r.json(t), "reply.text") != "hello from node 2" {
		t.Fatalf("post on node 2: %d %s", r.status, r.body)
	}
	if r := as(n1, "GET", "/api/v1/sessions?channel=api", ""); r.status != 200 || r.json(t)["total"] != 1.0 || get(r.json(t)["sessions"].([]any)[0].(map[string]any), "message_count") != 2.0 {
		t.Fatalf("list on node 1: %d %s", r.status, r.body)
	}

	// Both nodes post 50 messages each to the session at once.
	const perNode, workers = 50, 5
	var wg sync.WaitGroup
	for n, g := range nodes {
		for w := range workers {
			wg.Go(func() {
				for i := range perNode / workers {
					status, body, err := send("POST", g.url+"/api/v1/sessions/"+id+"/messages", fmt.Sprintf(`{"text":"n%d w%d m%d"}`, n, w, i), "X-API-Key", alice)
					if err != nil || status != 201 {
						t.Errorf("post to node %d: %d %s %v", n+1, status, body, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	const want = 2 + 2*2*perNode
	var lists [2]string
	for i, g := range nodes {
		r := as(g, "GET", "/api/v1/sessions/"+id+"/messages?limit=1000", "")
		if r.status != 200 || r.json(t)["total"] != float64(want) || len(r.json(t)["messages"].([]any)) != want {
			t.Fatalf("messages on node %d: %d total %v", i+1, r.status, r.json(t)["total"])
		}
		lists[i] = string(r.body)
		for j, m := range r.json(t)["messages"].([]any) {
			m := m.(map[string]any)
			if m["seq"] != float64(j+1) || (j%2 == 1) != (m["role"] == "assistant") {
				t.Fatalf("node %d, message %d: %v", i+1, j, m)
			}
		}
	}
	if lists[0] != lists[1] {
		t.Fatal("the nodes list different transcripts")
	}

	// One Idempotency-Key sent to both nodes at once runs one turn, and
	// both answers carry its result.
	replies := make([]string, 2)
	for i, g := range nodes {
		wg.Go(func() {
			status, body, err := send("POST", g.url+"/api/v1/sessions/"+id+"/messages", `{"text":"once"}`, "X-API-Key", alice, "Idempotency-Key", "both-nodes")
			if err != nil || status != 201 && status != 200 {
				t.Errorf("node %d: %d %s %v", i+1, status, body, err)
			}
			replies[i] = body
		})
	}
	wg.Wait()
	replyID := func(body string) any {
		var m response
		m.body = []byte(body)
		return get(m.json(t), "reply.id")
	}
	if a, b := replyID(replies[0]), replyID(replies[1]); a == nil || a != b {
		t.Fatalf("the two answers differ:\n%s\n%s", replies[0], replies[1])
	}
	if r := as(n1, "GET", "/api/v1/sessions/"+id, ""); r.json(t)["message_count"] != float64(want+2) {
		t.Fatalf("after the idempotent pair: %s", r.body)
	}
}

// TestPostgresDownAndBack: with the database gone, writes answer 503
// store_unavailable and change nothing; once it is back the gateway
// serves again by itself, and what was stored is whole.
func TestPostgresDownAndBack(t *testing.T) {
	t.Parallel()
	db, err := url.Parse(testtool.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testtool.NewCutProxy(t, db.Host)
	db.Host = proxy.Addr()
	viaProxy := db.String()
	g := startNodes(t, viaProxy, 1)[0]
	r := g.do(t, "POST", g.url+"/api/v1/sessions", `{}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	post := func() response { return g.do(t, "POST", g.url+"/api/v1/sessions/"+id+"/messages", `{"text":"hi"}`) }
	if r := post(); r.status != 201 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}

	proxy.Cut()
	for _, r := range []response{post(), g.do(t, "POST", g.url+"/api/v1/sessions", `{}`), g.do(t, "GET", g.url+"/api/v1/sessions/"+id, "")} {
		if r.status != 503 || r.errCode(t) != "store_unavailable" || r.header.Get("Retry-After") == "" {
			t.Fatalf("with the database down: %d %s", r.status, r.body)
		}
	}
	// What needs no database still answers.
	if r := do(t, "GET", g.url+"/health", ""); r.status != 200 {
		t.Fatalf("health with the database down: %d %s", r.status, r.body)
	}

	proxy.Restore()
	eventually(t, "the gateway serving again", func() bool { return post().status == 201 })
	r = g.do(t, "GET", g.url+"/api/v1/sessions/"+id+"/messages?limit=100", "")
	msgs := r.json(t)["messages"].([]any)
	if r.status != 200 || r.json(t)["total"] != float64(len(msgs)) || len(msgs) != 4 {
		t.Fatalf("after the outage: %d %s", r.status, r.body)
	}
	for i, m := range msgs {
		if m := m.(map[string]any); m["seq"] != float64(i+1) || (i%2 == 1) != (m["role"] == "assistant") {
			t.Fatalf("message %d after the outage: %v", i, m)
		}
	}
	if r := g.do(t, "GET", g.url+"/api/v1/sessions", ""); r.status != 200 || r.json(t)["total"] != 1.0 {
		t.Fatalf("sessions after the outage: %d %s", r.status, r.body)
	}
}
