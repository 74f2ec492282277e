// Command jsonhook is a generic channel for any system that can send and
// receive signed JSON. Messages come in as
//
//	POST /api/v1/channels/jsonhook/webhook
//	Portico-Timestamp: 1767312000
//	Portico-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
//	{"user_id": "u1", "text": "hello", "metadata": {"k": "v"}}
//
// (or {"messages": [...]} with several), and replies go out as a POST of
// {"session_id","user_id","text","metadata"} to reply_url, signed the same
// way — the scheme of Portico's outbound webhooks, so one verifier serves
// both.
//
// Config: secret (shared, required), reply_url (where replies go,
// required), max_skew_seconds (default 300: older or future timestamps are
// refused, so a captured request cannot be replayed later).
// Grants: http, with reply_url's host allowed.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/porticohq/portico/sdk"
)

func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// verify checks one of the v1= signatures of the header.
func verify(secret, ts, header string, body []byte) bool {
	want := sign(secret, ts, body)
	for _, part := range strings.Split(header, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(part)), []byte(want)) {
			return true
		}
	}
	return false
}

func message(v sdk.Value) sdk.IncomingMessage {
	meta := map[string]string{}
	for k, x := range v.Get("metadata").Fields() {
		meta[k] = x.AsString()
	}
	return sdk.IncomingMessage{UserID: v.String("user_id"), Text: v.String("text"), Metadata: meta}
}

func webhook(req sdk.WebhookRequest) (sdk.WebhookReply, error) {
	secret, _ := sdk.Config("secret")
	if secret == "" {
		return sdk.Refuse(401, "the jsonhook channel has no secret configured"), nil
	}
	ts := req.Header("Portico-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return sdk.Refuse(401, "missing or bad Portico-Timestamp"), nil
	}
	skew := int64(300)
	if s, ok := sdk.Config("max_skew_seconds"); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			skew = n
		}
	}
	if d := time.Now().Unix() - sec; d > skew || d < -skew {
		return sdk.Refuse(401, "Portico-Timestamp is %ds away from now; at most %ds is accepted", d, skew), nil
	}
	if !verify(secret, ts, req.Header("Portico-Signature"), []byte(req.Body)) {
		return sdk.Refuse(401, "bad Portico-Signature"), nil
	}
	v := sdk.JSON([]byte(req.Body))
	var msgs []sdk.IncomingMessage
	if v.Has("messages") {
		for _, m := range v.Get("messages").Items() {
			msgs = append(msgs, message(m))
		}
	} else {
		msgs = append(msgs, message(v))
	}
	if err := v.Err(); err != nil {
		return sdk.Refuse(400, "want {\"user_id\",\"text\",\"metadata\"} or {\"messages\":[...]}: %v", err), nil
	}
	for i, m := range msgs {
		if m.UserID == "" || strings.TrimSpace(m.Text) == "" {
			return sdk.Refuse(400, "message %d needs user_id and text", i), nil
		}
	}
	return sdk.WebhookReply{Messages: msgs}, nil
}

func send(m sdk.Outgoing) error {
	url, _ := sdk.Config("reply_url")
	secret, _ := sdk.Config("secret")
	if url == "" || secret == "" {
		return sdk.Errorf("the jsonhook channel needs reply_url and secret in its config")
	}
	meta := sdk.NewObject()
	for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
		meta.Str(k, m.Metadata[k])
	}
	body := sdk.NewObject().Str("session_id", m.SessionID).Str("user_id", m.UserID).Str("text", m.Text).Object("metadata", meta).Bytes()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	status, resp, err := sdk.HTTP(sdk.Request{Method: "POST", URL: url, Body: body, Header: map[string]string{
		"Content-Type": "application/json", "Portico-Timestamp": ts, "Portico-Signature": sign(secret, ts, body)}})
	if err != nil {
		return sdk.Errorf("reply to %s: %w", url, err)
	}
	if status < 200 || status > 299 {
		return sdk.Errorf("reply to %s: status %d: %.200s", url, status, resp)
	}
	return nil
}

func health() (bool, string) {
	url, _ := sdk.Config("reply_url")
	secret, _ := sdk.Config("secret")
	switch {
	case secret == "":
		return false, "no secret configured"
	case url == "":
		return false, "no reply_url configured"
	}
	return true, "replies go to " + url
}

func init() {
	sdk.Channel(sdk.ChannelHandler{Webhook: webhook, Send: send, Health: health})
}

func main() {}
