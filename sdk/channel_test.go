//go:build !wasip1

package sdk_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestChannel(t *testing.T) {
	var sent []sdk.Outgoing
	sdk.Channel(sdk.ChannelHandler{
		Webhook: func(req sdk.WebhookRequest) (sdk.WebhookReply, error) {
			if req.Header("X-Secret") != "s3cret" {
				return sdk.Refuse(401, "bad secret"), nil
			}
			if req.Body == "" {
				return sdk.WebhookReply{}, sdk.BadInput("empty body")
			}
			return sdk.WebhookReply{Messages: []sdk.IncomingMessage{{UserID: "u1", Text: req.Body, Metadata: map[string]string{"chat": "c\"1"}}}}, nil
		},
		Send: func(m sdk.Outgoing) error {
			if m.Text == "fail" {
				return errors.New("platform down")
			}
			sent = append(sent, m)
			return nil
		},
	})
	defer sdk.Channel(sdk.ChannelHandler{Webhook: func(sdk.WebhookRequest) (sdk.WebhookReply, error) { return sdk.WebhookReply{}, nil }, Send: func(sdk.Outgoing) error { return nil }})

	out, err := sdk.CallChannel("webhook", []byte(`{"method":"POST","headers":{"x-secret":"s3cret"},"body":"hi \u00e9"}`))
	var reply struct {
		Messages []struct {
			UserID   string            `json:"user_id"`
			Text     string            `json:"text"`
			Metadata map[string]string `json:"metadata"`
		} `json:"messages"`
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if err != nil || json.Unmarshal(out, &reply) != nil || len(reply.Messages) != 1 || reply.Messages[0].Text != "hi é" || reply.Messages[0].Metadata["chat"] != `c"1` {
		t.Fatalf("webhook: %s %v", out, err)
	}
	out, err = sdk.CallChannel("webhook", []byte(`{"headers":{"x-secret":"no"},"body":"x"}`))
	if err != nil || json.Unmarshal(out, &reply) != nil || reply.Status != 401 || reply.Error != "bad secret" {
		t.Errorf("refusal: %s %v", out, err)
	}
	if _, err := sdk.CallChannel("webhook", []byte(`{"headers":{"x-secret":"s3cret"}}`)); err == nil || !strings.Contains(err.Error(), "empty body") {
		t.Errorf("bad input: %v", err)
	}
	if _, err := sdk.CallChannel("send", []byte(`{"session_id":"s","user_id":"u1","metadata":{"chat":"9"},"text":"hello"}`)); err != nil || len(sent) != 1 || sent[0].Metadata["chat"] != "9" {
		t.Errorf("send: %v %+v", err, sent)
	}
	if _, err := sdk.CallChannel("send", []byte(`{"text":"fail"}`)); err == nil || !strings.Contains(err.Error(), "platform down") {
		t.Errorf("failed send: %v", err)
	}
	if out, err := sdk.CallChannel("health", []byte(`{}`)); err != nil || string(out) != `{"healthy":true,"detail":""}` {
		t.Errorf("health: %s %v", out, err)
	}
	for _, bad := range []struct{ op, payload string }{{"webhook", `{"headers":`}, {"dance", `{}`}} {
		if _, err := sdk.CallChannel(bad.op, []byte(bad.payload)); err == nil {
			t.Errorf("%s %s accepted", bad.op, bad.payload)
		}
	}
}
