//go:build !wasip1

package sdk

import "errors"

// CallChannel runs a channel operation ("webhook", "send", "health") with
// its JSON payload on the registered channel, as the gateway would, and
// returns its reply.
func CallChannel(op string, payload []byte) ([]byte, error) {
	var out []byte
	var msg string
	env := append([]byte{byte(len(op) >> 8), byte(len(op))}, op...)
	status := dispatchChannel(append(env, payload...), func(b []byte) { out = append(out, b...) }, func(m string) { msg = m })
	switch status {
	case statusOK:
		return out, nil
	case statusBadInput:
		return nil, BadInput("%s", msg)
	}
	return nil, errors.New(msg)
}
