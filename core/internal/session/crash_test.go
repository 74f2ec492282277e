package session_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/gatewaytest"
	"github.com/porticohq/portico/core/internal/session"
	"github.com/porticohq/portico/hostapi"
)

// TestKillAfterReply: the transcript is durable before a turn's reply is
// returned. The real gateway binary is killed with SIGKILL the moment a
// turn's answer arrives, and a second process on the same data dir has
// both of its messages, and the session counts them.
func TestKillAfterReply(t *testing.T) {
	bin := gatewaytest.Build(t)
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, key := t.TempDir(), auth.NewSecret()
	env := append(os.Environ(), "PORTICO_ADMIN_KEY="+key, "PORTICO_PLUGIN__CACHE_DIR="+cache,
		"PORTICO_PLUGIN__READY_AFTER_LOAD=true")
	first := gatewaytest.Start(t, bin, dir, env)
	c := &gatewaytest.Client{T: t, URL: first.URL, Key: key}
	var se session.Session
	c.Do("POST", "/api/v1/sessions", `{}`, http.StatusCreated, &se)
	var turns []session.Turn
	for _, text := range []string{"/echo one", "/echo two", "/echo three"} {
		var turn session.Turn
		c.Do("POST", "/api/v1/sessions/"+se.ID+"/messages", `{"text":"`+text+`"}`, http.StatusCreated, &turn)
		turns = append(turns, turn)
	}
	first.Kill(t) // right after the last reply arrived

	c.URL = gatewaytest.Start(t, bin, dir, env).URL
	var got struct {
		Messages []session.Message
		Total    int
	}
	c.Do("GET", "/api/v1/sessions/"+se.ID+"/messages", "", http.StatusOK, &got)
	if got.Total != 2*len(turns) {
		t.Fatalf("after the kill: %d messages, want %d", got.Total, 2*len(turns))
	}
	for i, turn := range turns {
		m, r := got.Messages[2*i], got.Messages[2*i+1]
		if m.ID != turn.Message.ID || m.Text != turn.Message.Text || r.ID != turn.Reply.ID || r.Text != turn.Reply.Text {
			t.Errorf("turn %d after the kill: %+v, %+v; want %+v, %+v", i, m, r, turn.Message, turn.Reply)
		}
	}
	var after session.Session
	c.Do("GET", "/api/v1/sessions/"+se.ID, "", http.StatusOK, &after)
	if after.MessageCount != int64(2*len(turns)) || after.TurnCount != int64(len(turns)) {
		t.Errorf("session after the kill counts %d messages and %d turns", after.MessageCount, after.TurnCount)
	}
}
