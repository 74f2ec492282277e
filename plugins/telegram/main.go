// Command telegram is a channel plugin for the Telegram Bot API. Telegram
// posts updates to the channel's webhook with the secret token set by
// setWebhook; text messages become messages of the chat's session, and
// replies go out through sendMessage.
//
// Config ([plugins.config] of its [[plugins]] table): bot_token (from
// @BotFather), secret_token (the secret_token given to setWebhook; every
// update must carry it), api_base (default https://api.telegram.org).
// Grants: http, with api.telegram.org (or api_base's host) allowed.
package main

import (
	"crypto/subtle"
	"strings"

	"github.com/porticohq/portico/sdk"
)

func config(key, def string) string {
	if v, ok := sdk.Config(key); ok && v != "" {
		return v
	}
	return def
}

func webhook(req sdk.WebhookRequest) (sdk.WebhookReply, error) {
	secret, _ := sdk.Config("secret_token")
	if secret == "" {
		return sdk.Refuse(401, "the telegram channel has no secret_token configured; set it in its [plugins.config] and in setWebhook"), nil
	}
	got := req.Header("X-Telegram-Bot-Api-Secret-Token")
	if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return sdk.Refuse(401, "bad or missing X-Telegram-Bot-Api-Secret-Token"), nil
	}
	u := sdk.JSON([]byte(req.Body))
	msg := u.Get("message")
	if msg.Kind() == sdk.KindNone {
		msg = u.Get("edited_message")
	}
	text := msg.String("text")
	chat := string(msg.Get("chat").Get("id").Raw())
	if err := u.Err(); err != nil {
		return sdk.Refuse(400, "not a Telegram update: %v", err), nil
	}
	if msg.Kind() == sdk.KindNone || text == "" || chat == "" {
		// Photos, joins, callbacks...: accepted, nothing to answer.
		return sdk.WebhookReply{}, nil
	}
	from := msg.Get("from")
	meta := map[string]string{"chat_id": chat, "from_id": string(from.Get("id").Raw()), "username": from.String("username")}
	return sdk.WebhookReply{Messages: []sdk.IncomingMessage{{UserID: "chat-" + chat, Text: text, Metadata: meta}}}, nil
}

func botURL(method string) (string, error) {
	token, _ := sdk.Config("bot_token")
	if token == "" {
		return "", sdk.Errorf("the telegram channel has no bot_token configured")
	}
	return strings.TrimSuffix(config("api_base", "https://api.telegram.org"), "/") + "/bot" + token + "/" + method, nil
}

// call posts a Bot API method and checks Telegram's {"ok":true}.
func call(method string, body []byte) (sdk.Value, error) {
	url, err := botURL(method)
	if err != nil {
		return sdk.Value{}, err
	}
	status, resp, err := sdk.HTTP(sdk.Request{Method: "POST", URL: url, Header: map[string]string{"Content-Type": "application/json"}, Body: body})
	if err != nil {
		return sdk.Value{}, sdk.Errorf("telegram %s: %w", method, err)
	}
	v := sdk.JSON(resp)
	if status != 200 || !v.Bool("ok") {
		return v, sdk.Errorf("telegram %s: status %d: %s", method, status, v.String("description"))
	}
	return v, nil
}

func send(m sdk.Outgoing) error {
	chat := m.Metadata["chat_id"]
	if chat == "" {
		return sdk.Errorf("session %s has no chat_id to reply to", m.SessionID)
	}
	o := sdk.NewObject().Raw("chat_id", []byte(chat)).Str("text", m.Text)
	if o.Err() != nil {
		o = sdk.NewObject().Str("chat_id", chat).Str("text", m.Text)
	}
	_, err := call("sendMessage", o.Bytes())
	return err
}

func health() (bool, string) {
	v, err := call("getMe", []byte("{}"))
	if err != nil {
		return false, err.Error()
	}
	return true, "bot @" + v.Get("result").String("username")
}

func init() {
	sdk.Channel(sdk.ChannelHandler{Webhook: webhook, Send: send, Health: health})
}

func main() {}
