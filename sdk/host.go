package sdk

import (
	"errors"

	"github.com/porticohq/portico/sdk/internal/printf"
)

// Errors the host API returns, for errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrDenied   = errors.New("refused by the gateway (a capability not granted, or a target the operator does not allow)")
	ErrHost     = errors.New("host error")
	ErrTooLarge = errors.New("over a quota or limit")
	ErrDepth    = errors.New("skill call depth exceeded")
)

// hostError is one of the errors above with the host's message: what
// fmt.Errorf("%w: %s") makes, without fmt's cost inside a guest.
type hostError struct {
	kind error
	msg  string
}

func (e *hostError) Error() string {
	if e.kind == ErrDenied {
		return "refused by the gateway: " + e.msg // the message says what was refused
	}
	return e.kind.Error() + ": " + e.msg
}
func (e *hostError) Unwrap() error { return e.kind }

func resultErr(code int32) error {
	switch code {
	case -1:
		return ErrNotFound
	case -2:
		return ErrDenied
	case -4:
		return ErrTooLarge
	case -5:
		return ErrDepth
	}
	return ErrHost
}

// Log levels.
const (
	LevelDebug int32 = iota
	LevelInfo
	LevelWarn
	LevelError
)

// Log writes a line to the plugin's log in the gateway.
func Log(level int32, msg string) { be.log(level, msg) }

// Logf formats and logs at info level.
func Logf(format string, args ...any) { be.log(LevelInfo, printf.Sprintf(format, args...)) }

// Config returns a value of the plugin's own config ([plugins.config]).
func Config(key string) (string, bool) { return be.config(key) }

// Write streams a part of the reply now, before the skill returns: for long
// answers. It fails once the reply is over the gateway's output limit or the
// caller has gone.
func Write(chunk []byte) error {
	if be.output(chunk) != 0 {
		return ErrTooLarge
	}
	return nil
}

// KVGet reads a key of the plugin's own key-value store [kv].
func KVGet(key string) ([]byte, error) {
	v, code := be.kvGet(key)
	if code < 0 {
		return nil, resultErr(code)
	}
	return v, nil
}

// KVSet writes a key [kv]; ErrTooLarge past the plugin's quota.
func KVSet(key string, value []byte) error {
	if code := be.kvSet(key, value); code != 0 {
		return resultErr(code)
	}
	return nil
}

// KVDelete deletes a key [kv].
func KVDelete(key string) error {
	if code := be.kvDelete(key); code != 0 {
		return resultErr(code)
	}
	return nil
}

// Emit publishes the event plugin.<name>.<typ> with JSON data [events].
func Emit(typ string, data []byte) error {
	if code := be.emit(typ, data); code != 0 {
		return resultErr(code)
	}
	return nil
}

// CallSkill invokes another skill with JSON input and returns its reply
// [skills].
func CallSkill(name string, input []byte) ([]byte, error) {
	out, code := be.callSkill(name, input)
	if code < 0 {
		if code == -3 {
			return nil, &hostError{ErrHost, "skill " + name + ": " + string(out)}
		}
		return nil, resultErr(code)
	}
	return out, nil
}

// Request is an outbound HTTP request [http].
type Request struct {
	Method string
	URL    string
	Header map[string]string
	Body   []byte
}

func (r Request) encode() []byte {
	m := r.Method
	if m == "" {
		m = "GET"
	}
	n := len(m) + len(r.URL) + 3 + len(r.Body)
	for k, v := range r.Header {
		n += len(k) + len(v) + 3
	}
	b := make([]byte, 0, n) // one allocation: each one costs a guest about a microsecond
	b = append(append(append(append(b, m...), ' '), r.URL...), '\n')
	for k, v := range r.Header {
		b = append(append(append(append(b, k...), ": "...), v...), '\n')
	}
	return append(append(b, '\n'), r.Body...)
}

// HTTP sends a request to a host on the plugin's allow-list and returns the
// status and body [http].
func HTTP(req Request) (int, []byte, error) {
	status, body := be.http(req.encode())
	if status < 0 {
		if status == -3 || status == -2 {
			return 0, nil, &hostError{resultErr(status), string(body)}
		}
		return 0, nil, resultErr(status)
	}
	return int(status), body, nil
}

// LLM asks the gateway's LLM providers for a completion; request and reply
// are JSON [llm].
func LLM(request []byte) ([]byte, error) {
	out, code := be.llm(request)
	if code < 0 {
		if code == -3 {
			return nil, &hostError{ErrHost, string(out)}
		}
		return nil, resultErr(code)
	}
	return out, nil
}

// backend is the host API: the real imports inside WebAssembly, an
// in-memory fake elsewhere (so Examples and unit tests run on the host).
type backend interface {
	log(level int32, msg string)
	config(key string) (string, bool)
	output(b []byte) int32
	kvGet(key string) ([]byte, int32)
	kvSet(key string, value []byte) int32
	kvDelete(key string) int32
	emit(typ string, data []byte) int32
	callSkill(name string, in []byte) ([]byte, int32)
	http(req []byte) (int32, []byte)
	llm(req []byte) ([]byte, int32)
}
