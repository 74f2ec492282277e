package sdk

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/porticohq/portico/sdk/internal/printf"
)

// WebhookRequest is a chat platform's request to the channel's webhook
// (POST /api/v1/channels/{name}/webhook), as the gateway received it.
type WebhookRequest struct {
	Method string
	Path   string
	Query  string
	// Headers holds the first value of each header by lower-case name.
	Headers map[string]string
	Body    string
}

// Header returns a request header, by any case of its name.
func (r *WebhookRequest) Header(name string) string { return r.Headers[strings.ToLower(name)] }

// IncomingMessage is one message the platform delivered. UserID names the
// conversation on the platform (a chat id): its messages continue one
// session. Metadata is kept on a new session and comes back in Outgoing.
type IncomingMessage struct {
	UserID   string
	Text     string
	Metadata map[string]string
}

// WebhookReply is what Webhook answers: the messages found in the request,
// and optionally the answer to the platform (Status, Body, ContentType).
type WebhookReply struct {
	Messages    []IncomingMessage
	Status      int
	Body        string
	ContentType string
	// Error explains a refusal (Status 400 or more).
	Error string
}

// Refuse answers a request the channel will not process, such as one with
// a bad signature (401): the gateway answers the platform with status and
// the message, audits it, and stores nothing.
func Refuse(status int, format string, args ...any) WebhookReply {
	return WebhookReply{Status: status, Error: printf.Sprintf(format, args...)}
}

// Outgoing is a reply to deliver on the platform.
type Outgoing struct {
	SessionID string
	UserID    string
	Metadata  map[string]string
	Text      string
}

// ChannelHandler is a channel plugin: Webhook turns the platform's
// requests into messages, Send delivers replies (with the http
// capability), and the optional Health reports whether the platform is
// reachable and configured.
type ChannelHandler struct {
	Webhook func(req WebhookRequest) (WebhookReply, error)
	Send    func(msg Outgoing) error
	Health  func() (healthy bool, detail string)
}

var channel *ChannelHandler

// Channel registers the plugin's channel (manifest kinds = ["channel"];
// the plugin's name is the channel's). Call it from an init function.
// Webhook and Send are required.
func Channel(h ChannelHandler) {
	if h.Webhook == nil || h.Send == nil {
		panic("sdk: a channel needs Webhook and Send")
	}
	channel = &h
}

// abiMinor is the ABI minor the module needs: 1 (v1.1) for a channel.
func abiMinor() uint32 {
	if channel != nil {
		return 1
	}
	return 0
}

func dispatchChannel(envelope []byte, out func([]byte), fail func(string)) uint32 {
	in, err := parseEnvelope(envelope)
	if err != nil {
		fail(err.Error())
		return statusError
	}
	if channel == nil {
		fail("this module has no channel (sdk.Channel)")
		return statusError
	}
	var reply []byte
	switch in.Skill {
	case "webhook":
		req, err := decodeWebhook(in.Payload)
		if err != nil {
			fail(err.Error())
			return statusBadInput
		}
		r, err := channel.Webhook(req)
		if err == nil {
			reply, err = encodeWebhookReply(r)
		}
		if err != nil {
			return failed(err, fail)
		}
	case "send":
		msg, err := decodeOutgoing(in.Payload)
		if err != nil {
			fail(err.Error())
			return statusBadInput
		}
		if err := channel.Send(msg); err != nil {
			return failed(err, fail)
		}
	case "health":
		healthy, detail := true, ""
		if channel.Health != nil {
			healthy, detail = channel.Health()
		}
		reply = NewObject().Bool("healthy", healthy).Str("detail", detail).Bytes()
	default:
		fail("unknown channel operation " + in.Skill)
		return statusBadInput
	}
	if len(reply) > 0 {
		out(reply)
	}
	return statusOK
}

func failed(err error, fail func(string)) uint32 {
	fail(err.Error())
	var bi *badInput
	if errors.As(err, &bi) {
		return statusBadInput
	}
	return statusError
}

func stringMap(v Value) map[string]string {
	m := map[string]string{}
	for k, x := range v.Fields() {
		m[k] = x.AsString()
	}
	return m
}

func decodeWebhook(b []byte) (WebhookRequest, error) {
	v := JSON(b)
	r := WebhookRequest{Method: v.String("method"), Path: v.String("path"), Query: v.String("query"),
		Headers: stringMap(v.Get("headers")), Body: v.String("body")}
	return r, v.Err()
}

func decodeOutgoing(b []byte) (Outgoing, error) {
	v := JSON(b)
	o := Outgoing{SessionID: v.String("session_id"), UserID: v.String("user_id"), Metadata: stringMap(v.Get("metadata")), Text: v.String("text")}
	return o, v.Err()
}

func encodeWebhookReply(r WebhookReply) ([]byte, error) {
	msgs := NewArray()
	for _, m := range r.Messages {
		meta := NewObject()
		for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
			meta.Str(k, m.Metadata[k])
		}
		msgs.Object(NewObject().Str("user_id", m.UserID).Str("text", m.Text).Object("metadata", meta))
	}
	o := NewObject().Array("messages", msgs)
	if r.Status != 0 {
		o.Int("status", r.Status)
	}
	if r.Body != "" {
		o.Str("body", r.Body)
	}
	if r.ContentType != "" {
		o.Str("content_type", r.ContentType)
	}
	if r.Error != "" {
		o.Str("error", r.Error)
	}
	return o.Bytes(), o.Err()
}
