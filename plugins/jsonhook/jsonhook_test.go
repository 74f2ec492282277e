package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/sdk"
)

func signed(secret string, ts int64, body string) map[string]string {
	m := hmac.New(sha256.New, []byte(secret))
	t := strconv.FormatInt(ts, 10)
	m.Write([]byte(t + "." + body))
	return map[string]string{"portico-timestamp": t, "portico-signature": "v1=" + hex.EncodeToString(m.Sum(nil))}
}

func call(t *testing.T, headers map[string]string, body string) (status int, errText string, msgs []map[string]any) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"method": "POST", "headers": headers, "body": body})
	out, err := sdk.CallChannel("webhook", req)
	if err != nil {
		t.Fatalf("webhook: %v", err)
	}
	var r struct {
		Status   int              `json:"status"`
		Error    string           `json:"error"`
		Messages []map[string]any `json:"messages"`
	}
	json.Unmarshal(out, &r)
	return r.Status, r.Error, r.Messages
}

func TestWebhookSignatures(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	body := `{"user_id":"u1","text":"hello","metadata":{"ticket":"T-1"}}`
	now := time.Now().Unix()
	if st, e, _ := call(t, signed("k", now, body), body); st != 401 || !strings.Contains(e, "no secret") {
		t.Errorf("unconfigured: %d %s", st, e)
	}
	f.Conf["secret"] = "k"
	tests := []struct {
		name    string
		headers map[string]string
		body    string
		status  int
		msgs    int
	}{
		{"good", signed("k", now, body), body, 0, 1},
		{"several", signed("k", now, `{"messages":[{"user_id":"a","text":"x"},{"user_id":"b","text":"y"}]}`), `{"messages":[{"user_id":"a","text":"x"},{"user_id":"b","text":"y"}]}`, 0, 2},
		{"wrong secret", signed("other", now, body), body, 401, 0},
		{"body changed", signed("k", now, body), strings.Replace(body, "hello", "hullo", 1), 401, 0},
		{"old timestamp (replay)", signed("k", now-3600, body), body, 401, 0},
		{"no timestamp", map[string]string{"portico-signature": "v1=00"}, body, 401, 0},
		{"not JSON", signed("k", now, `{"user_id":`), `{"user_id":`, 400, 0},
		{"no text", signed("k", now, `{"user_id":"u"}`), `{"user_id":"u"}`, 400, 0},
	}
	for _, tt := range tests {
		st, e, msgs := call(t, tt.headers, tt.body)
		if st != tt.status || len(msgs) != tt.msgs {
			t.Errorf("%s: status %d (%s), %d messages", tt.name, st, e, len(msgs))
		}
	}
	// A second signature (a rotation) is accepted too.
	h := signed("k", now, body)
	h["portico-signature"] = "v1=" + strings.Repeat("0", 64) + ", " + h["portico-signature"]
	if st, e, _ := call(t, h, body); st != 0 {
		t.Errorf("two signatures: %d %s", st, e)
	}
}

func TestSendSigned(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	var got string
	f.HTTP = func(req string) (int, []byte, error) {
		got = req
		return 204, nil, nil
	}
	msg := []byte(`{"session_id":"ses_1","user_id":"u1","metadata":{"ticket":"T-1"},"text":"the reply"}`)
	if _, err := sdk.CallChannel("send", msg); err == nil {
		t.Error("send without config succeeded")
	}
	f.Conf["secret"], f.Conf["reply_url"] = "k", "https://example.com/replies"
	if _, err := sdk.CallChannel("send", msg); err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(got, "\n\n")
	if !strings.HasPrefix(head, "POST https://example.com/replies\n") || !strings.Contains(body, `"text":"the reply"`) || !strings.Contains(body, `"ticket":"T-1"`) {
		t.Fatalf("request:\n%s", got)
	}
	var ts, sig string
	for _, line := range strings.Split(head, "\n")[1:] {
		k, v, _ := strings.Cut(line, ": ")
		switch strings.ToLower(k) {
		case "portico-timestamp":
			ts = v
		case "portico-signature":
			sig = v
		}
	}
	n, _ := strconv.ParseInt(ts, 10, 64)
	if want := signed("k", n, body)["portico-signature"]; sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	f.HTTP = func(string) (int, []byte, error) { return 500, []byte("boom"), nil }
	if _, err := sdk.CallChannel("send", msg); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("receiver error: %v", err)
	}
	if out, _ := sdk.CallChannel("health", []byte("{}")); !strings.Contains(string(out), `"healthy":true`) {
		t.Errorf("health: %s", out)
	}
}
