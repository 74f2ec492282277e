// Package hostapi is the host side of Portico's plugin ABI: it compiles
// WebAssembly modules with wazero (through one on-disk compilation cache),
// checks them against ABI v1 before anything runs, keeps a capped pool of
// warm instances per plugin, pins one instance to one call, and runs every
// call under a deadline, a memory ceiling and an output ceiling. It knows
// nothing of HTTP routes, sessions or storage: the core hands each plugin a
// Host with what it may use.
//
// The contract guests write against is docs/abi.md.
package hostapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/porticohq/portico/hostapi/internal/pool"
)

// ABI version this host speaks. A guest must have the same major and a
// minor no newer than ABIMinor.
const (
	ABIMajor = 1
	ABIMinor = 2 // v1.1 added the channel kind, v1.2 mcp_call_tool
)

// Guest exports and host module names of ABI v1.
const (
	ExportABIVersion = "portico_abi_version"
	ExportSkill      = "portico_skill"
	ExportHook       = "portico_hook"
	ExportChannel    = "portico_channel" // v1.1
	HostModule       = "portico"
)

// Plugin kinds and the export each requires.
const (
	KindSkill   = "skill"
	KindHook    = "hook"
	KindChannel = "channel"
	// KindMiddleware is an HTTP middleware: a module for the public
	// http-wasm handler ABI (http-wasm.io), which hostapi/httpwasm runs
	// on this runtime.
	KindMiddleware = "middleware"
)

var kindExports = map[string]string{KindSkill: ExportSkill, KindHook: ExportHook, KindChannel: ExportChannel}

// Errors a call or a load can end in, for errors.Is. The HTTP API maps
// them to its codes: ErrBusy 503 plugin_busy, ErrTimeout 504
// plugin_timeout, ErrGuest and ErrTrap 502 plugin_error, ErrBadInput 400.
var (
	ErrNotWasm     = errors.New("not a WebAssembly module")
	ErrABI         = errors.New("ABI mismatch")
	ErrBusy        = pool.ErrBusy // no free plugin instance
	ErrTimeout     = errors.New("plugin call timed out")
	ErrTrap        = errors.New("plugin trapped")
	ErrGuest       = errors.New("plugin reported an error")
	ErrBadInput    = errors.New("plugin refused its input")
	ErrOutputLimit = errors.New("plugin output exceeds the limit")
	ErrClosed      = pool.ErrClosed // plugin is closed
	ErrDenied      = errors.New("refused")
	// ErrNoSkill is what Host.CallSkill returns for an unknown skill.
	ErrNoSkill = errors.New("no such skill")
	// ErrDepth is what Host.CallSkill returns past the call-depth limit.
	ErrDepth = errors.New("skill call depth exceeded")
)

// Status codes a guest's portico_skill returns.
const (
	StatusOK       = 0
	StatusError    = 1 // the skill failed; its message was set with fail
	StatusBadInput = 2 // the input is not what the skill takes
)

// CallError is a failed call, naming the plugin.
type CallError struct {
	Plugin string
	Kind   error  // one of the Err* values
	Msg    string // the guest's message or the runtime's reason
	// Cause is the host-side refusal (ErrRefused) the guest failed after,
	// when there was one.
	Cause error
}

func (e *CallError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("plugin %q: %v: %s (after: %v)", e.Plugin, e.Kind, e.Msg, e.Cause)
	}
	return fmt.Sprintf("plugin %q: %v: %s", e.Plugin, e.Kind, e.Msg)
}

func (e *CallError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// Capabilities a plugin may be granted. log and its own config are always
// available.
const (
	CapKV     = "kv"
	CapEvents = "events"
	CapHTTP   = "http"
	CapSkills = "skills"
	CapLLM    = "llm"
	CapMCP    = "mcp" // v1.2
)

// Host is what the core gives one plugin: its log, its key-value namespace,
// the event bus and its config, behind the capabilities it was granted.
type Host interface {
	Log(ctx context.Context, level int32, msg string)
	Config(key string) (string, bool)
	KVGet(ctx context.Context, key []byte) ([]byte, bool, error)
	KVSet(ctx context.Context, key, value []byte) error
	KVDelete(ctx context.Context, key []byte) error
	Emit(ctx context.Context, typ string, data []byte) error
	// CallSkill invokes another skill; ErrNotFound-like failures are the
	// host's to classify with SkillNotFound.
	CallSkill(ctx context.Context, skill string, input []byte) ([]byte, error)
	// HTTP makes an outbound request the plugin asked for (already parsed
	// and granted); the host enforces its allow-list, address rules and
	// limits, returning ErrDenied for a host that is not allowed and
	// ErrQuota for a response over the limit.
	HTTP(ctx context.Context, req *http.Request) (status int, body []byte, err error)
	// LLM completes a prompt through the gateway's configured providers
	// (the plugin never sees a provider key); request and reply are JSON.
	LLM(ctx context.Context, request []byte) ([]byte, error)
	// Denied is told of every refused capability call, for the audit trail.
	Denied(ctx context.Context, capability string)
}

// DenyAll is a Host that grants nothing: every capability call is refused
// with ErrDenied and forgotten, the config is empty, and the guest's log
// lines go to Logger (nil: nowhere) with Attrs. It backs a module loaded
// for inspection (portico plugin inspect) or without a host of its own.
type DenyAll struct {
	Logger *slog.Logger
	Attrs  []slog.Attr
}

var _ Host = DenyAll{}

// Log implements Host: a guest's level (0 debug .. 3 error) as slog's.
func (d DenyAll) Log(ctx context.Context, level int32, msg string) {
	if d.Logger != nil {
		d.Logger.LogAttrs(ctx, slog.Level(4*(level-1)), msg, d.Attrs...)
	}
}

// Config implements Host: refused (or empty).
func (DenyAll) Config(string) (string, bool) { return "", false }

// KVGet implements Host: refused (or empty).
func (DenyAll) KVGet(context.Context, []byte) ([]byte, bool, error) {
	return nil, false, ErrDenied
}

// KVSet implements Host: refused (or empty).
func (DenyAll) KVSet(context.Context, []byte, []byte) error { return ErrDenied }

// KVDelete implements Host: refused (or empty).
func (DenyAll) KVDelete(context.Context, []byte) error { return ErrDenied }

// Emit implements Host: refused (or empty).
func (DenyAll) Emit(context.Context, string, []byte) error { return ErrDenied }

// CallSkill implements Host: refused (or empty).
func (DenyAll) CallSkill(context.Context, string, []byte) ([]byte, error) {
	return nil, ErrDenied
}

// HTTP implements Host: refused (or empty).
func (DenyAll) HTTP(context.Context, *http.Request) (int, []byte, error) {
	return 0, nil, ErrDenied
}

// LLM implements Host: refused (or empty).
func (DenyAll) LLM(context.Context, []byte) ([]byte, error) { return nil, ErrDenied }

// Denied implements Host: refused (or empty).
func (DenyAll) Denied(context.Context, string) {}
