package plugin

import (
	"errors"

	"github.com/porticohq/portico/hostapi"
)

// Kind is what went wrong with a plugin call, in the one vocabulary every
// surface of the gateway maps: the HTTP API, the embedding API, MCP and
// A2A each turn a Kind into their own answer, in one table each, and a
// test holds the tables to each other. A Kind is an error, so
// errors.Is(err, KindBusy) holds for an error Invoke returned.
type Kind string

// The kinds of a failed call.
const (
	KindNotFound    Kind = "not_found"   // no such skill
	KindBadInput    Kind = "bad_input"   // the input is not JSON, misses the schema, or the skill refused it
	KindUnavailable Kind = "unavailable" // the plugin is disabled or failed, or was closed under the call
	KindBusy        Kind = "busy"        // every instance stayed busy for plugin.acquire_timeout
	KindTimeout     Kind = "timeout"     // no answer within the call timeout
	KindFailed      Kind = "failed"      // the skill failed, trapped, exited or wrote too much
	KindQuota       Kind = "quota"       // the caller's token quota refused what the skill needed
	KindDepth       Kind = "depth"       // the call chain went too deep
)

// Kinds lists every kind, in the order above.
var Kinds = []Kind{KindNotFound, KindBadInput, KindUnavailable, KindBusy, KindTimeout, KindFailed, KindQuota, KindDepth}

func (k Kind) Error() string { return string(k) }

// KindOf returns the kind of a plugin call's error, or "" for an error that
// is no plugin failure (nil, the caller's context ending, a streaming
// sink's own error). It is the one place runtime and manager errors are
// classified.
func KindOf(err error) Kind {
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, hostapi.ErrQuota) && errors.Is(err, hostapi.ErrRefused):
		return KindQuota
	case errors.Is(err, hostapi.ErrDepth):
		return KindDepth
	case errors.Is(err, ErrNotFound), errors.Is(err, hostapi.ErrNoSkill):
		return KindNotFound
	case errors.Is(err, ErrInput), errors.Is(err, hostapi.ErrBadInput):
		return KindBadInput
	case errors.Is(err, ErrDisabled), errors.Is(err, ErrFailed), errors.Is(err, hostapi.ErrClosed):
		return KindUnavailable
	case errors.Is(err, hostapi.ErrBusy):
		return KindBusy
	case errors.Is(err, hostapi.ErrTimeout):
		return KindTimeout
	case errors.Is(err, hostapi.ErrGuest), errors.Is(err, hostapi.ErrTrap), errors.Is(err, hostapi.ErrOutputLimit),
		errors.Is(err, hostapi.ErrABI), errors.Is(err, hostapi.ErrQuota):
		return KindFailed
	}
	return ""
}

// kindError is an error of a plugin call with its kind attached.
type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// withKind attaches err's kind to it (KindOf), so every error a call
// returns matches exactly one Kind with errors.Is and keeps its message
// and its causes.
func withKind(err error) error {
	k := KindOf(err)
	if k == "" {
		return err
	}
	var ke *kindError
	if errors.As(err, &ke) {
		return err
	}
	return &kindError{kind: k, err: err}
}
