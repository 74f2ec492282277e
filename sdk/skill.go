package sdk

import (
	"errors"
	"unsafe"

	"github.com/porticohq/portico/sdk/internal/printf"
)

// Input is one skill call: the skill's name (a module may provide several)
// and the caller's input as JSON text. Both point into a buffer the next
// call reuses: copy what you keep after returning.
type Input struct {
	Skill   string
	Payload []byte
}

// SkillFunc handles one call of a skill. It returns the reply (JSON or
// text), which may also be streamed in parts with Write before returning.
// An error fails the call (the caller sees 502 plugin_error with its
// message) unless it was made with BadInput (400).
type SkillFunc func(in Input) ([]byte, error)

var skills = map[string]SkillFunc{}

// Skill registers fn as the skill name. Call it from an init function:
// a plugin module runs its package initializers when it starts, not main.
// Registering a name twice panics.
func Skill(name string, fn SkillFunc) {
	if _, dup := skills[name]; dup {
		panic("sdk: skill " + name + " registered twice")
	}
	skills[name] = fn
}

type badInput struct{ msg string }

func (e *badInput) Error() string { return e.msg }

// BadInput returns an error that tells the caller its input was wrong
// (status 2: the gateway answers 400 with the message).
func BadInput(format string, args ...any) error {
	return &badInput{msg: printf.Sprintf(format, args...)}
}

// Call statuses of ABI v1.
const (
	statusOK       = 0
	statusError    = 1
	statusBadInput = 2
)

// ErrEnvelope reports a call envelope that does not parse: a host bug or a
// version mismatch, never the caller's input.
var ErrEnvelope = errors.New("sdk: malformed call envelope")

// parseEnvelope splits ABI v1's call envelope: a 2-byte big-endian name
// length, the name, then the payload.
func parseEnvelope(b []byte) (Input, error) {
	if len(b) < 2 {
		return Input{}, ErrEnvelope
	}
	n := int(b[0])<<8 | int(b[1])
	if 2+n > len(b) {
		return Input{}, ErrEnvelope
	}
	// The name aliases the buffer instead of being copied: no allocation
	// per call, which in a WebAssembly guest also means less GC.
	var name string
	if n > 0 {
		name = unsafe.String(&b[2], n)
	}
	return Input{Skill: name, Payload: b[2+n:]}, nil
}

// dispatch runs one call and returns its status; the reply goes to out,
// the error message to fail.
func dispatch(envelope []byte, out func([]byte), fail func(string)) uint32 {
	in, err := parseEnvelope(envelope)
	if err != nil {
		fail(err.Error())
		return statusError
	}
	fn, ok := skills[in.Skill]
	if !ok {
		fail("this module has no skill " + in.Skill)
		return statusBadInput
	}
	reply, err := fn(in)
	if err != nil {
		fail(err.Error())
		var bi *badInput
		if errors.As(err, &bi) {
			return statusBadInput
		}
		return statusError
	}
	if len(reply) > 0 {
		out(reply)
	}
	return statusOK
}
