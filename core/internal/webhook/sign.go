package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Headers of every delivery request.
const (
	// HeaderDelivery carries the delivery id: the same on every attempt of
	// one delivery, so receivers drop duplicates by it.
	HeaderDelivery = "Portico-Delivery"
	// HeaderEvent carries the event type, e.g. "message.sent".
	HeaderEvent = "Portico-Event"
	// HeaderTimestamp carries the attempt's time in Unix seconds.
	HeaderTimestamp = "Portico-Timestamp"
	// HeaderSignature carries "v1=<hex>" signatures, comma-separated: one
	// per secret that signs at the time (two during a rotation's overlap).
	HeaderSignature = "Portico-Signature"
)

// Signature returns the value of the Portico-Signature header for body
// sent at timestamp (Unix seconds, as in Portico-Timestamp): "v1=" and the
// hex HMAC-SHA256 of timestamp + "." + body under each secret, joined with
// commas.
func Signature(secrets []string, timestamp string, body []byte) string {
	var b strings.Builder
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("v1=")
		b.WriteString(hex.EncodeToString(mac(s, timestamp, body)))
	}
	return b.String()
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify reports whether header (a Portico-Signature value) holds a valid
// v1 signature of body at timestamp under secret. Receivers written in Go
// may use it; they should also refuse timestamps far from their own clock
// (docs/webhooks.md).
func Verify(secret, timestamp, header string, body []byte) bool {
	want := mac(secret, timestamp, body)
	for _, part := range strings.Split(header, ",") {
		sig, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}
