package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

type reply struct {
	Messages []struct {
		UserID   string            `json:"user_id"`
		Text     string            `json:"text"`
		Metadata map[string]string `json:"metadata"`
	} `json:"messages"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

func webhookCall(t *testing.T, secret, body string) reply {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"method": "POST", "headers": map[string]string{"x-telegram-bot-api-secret-token": secret}, "body": body})
	out, err := sdk.CallChannel("webhook", req)
	if err != nil {
		t.Fatalf("webhook: %v", err)
	}
	var r reply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("reply %s: %v", out, err)
	}
	return r
}

func TestWebhook(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	update := `{"update_id":1,"message":{"message_id":2,"from":{"id":-1001234567890,"username":"ann"},"chat":{"id":-1001234567890},"text":"/echo hi"}}`
	if r := webhookCall(t, "s", update); r.Status != 401 || !strings.Contains(r.Error, "secret_token") {
		t.Errorf("no secret configured: %+v", r)
	}
	f.Conf["secret_token"] = "s"
	if r := webhookCall(t, "wrong", update); r.Status != 401 || len(r.Messages) != 0 {
		t.Errorf("bad secret: %+v", r)
	}
	r := webhookCall(t, "s", update)
	if r.Status != 0 || len(r.Messages) != 1 || r.Messages[0].UserID != "chat--1001234567890" || r.Messages[0].Text != "/echo hi" ||
		r.Messages[0].Metadata["chat_id"] != "-1001234567890" || r.Messages[0].Metadata["username"] != "ann" {
		t.Errorf("update: %+v", r)
	}
	if r := webhookCall(t, "s", `{"update_id":3,"message":{"chat":{"id":5},"sticker":{}}}`); r.Status != 0 || len(r.Messages) != 0 {
		t.Errorf("sticker: %+v", r)
	}
	if r := webhookCall(t, "s", `{"update_id":`); r.Status != 400 {
		t.Errorf("bad JSON: %+v", r)
	}
}

func TestSendAndHealth(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	var reqs []string
	f.HTTP = func(req string) (int, []byte, error) {
		reqs = append(reqs, req)
		if strings.Contains(req, "/getMe") {
			return 200, []byte(`{"ok":true,"result":{"username":"bot1"}}`), nil
		}
		if strings.Contains(req, `"chat_id":99`) {
			return 400, []byte(`{"ok":false,"description":"Bad Request: chat not found"}`), nil
		}
		return 200, []byte(`{"ok":true}`), nil
	}
	send := func(chat, text string) error {
		b, _ := json.Marshal(map[string]any{"session_id": "ses_1", "user_id": "chat-" + chat, "metadata": map[string]string{"chat_id": chat}, "text": text})
		_, err := sdk.CallChannel("send", b)
		return err
	}
	if err := send("42", "hi"); err == nil || !strings.Contains(err.Error(), "bot_token") {
		t.Errorf("no token: %v", err)
	}
	f.Conf["bot_token"], f.Conf["api_base"] = "T", "http://127.0.0.1:9/"
	if err := send("42", `say "hi"`); err != nil {
		t.Fatal(err)
	}
	if want := "POST http://127.0.0.1:9/botT/sendMessage\n"; !strings.HasPrefix(reqs[len(reqs)-1], want) || !strings.HasSuffix(reqs[len(reqs)-1], `{"chat_id":42,"text":"say \"hi\""}`) {
		t.Errorf("request:\n%s", reqs[len(reqs)-1])
	}
	if err := send("99", "x"); err == nil || !strings.Contains(err.Error(), "chat not found") {
		t.Errorf("telegram error: %v", err)
	}
	if err := send("", "x"); err == nil || !strings.Contains(err.Error(), "chat_id") {
		t.Errorf("no chat: %v", err)
	}
	if out, err := sdk.CallChannel("health", []byte("{}")); err != nil || string(out) != `{"healthy":true,"detail":"bot @bot1"}` {
		t.Errorf("health: %s %v", out, err)
	}
	f.Grants = []string{} // http not granted
	if err := send("42", "x"); err == nil || !strings.Contains(err.Error(), "grant") {
		t.Errorf("denied: %v", err)
	}
}
