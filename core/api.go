// Package core is the Portico gateway as a Go library, and its only
// public Go API: build a Gateway from a configuration and Options, Start
// it, call its skills from Go, watch its events, and Shutdown. The binary
// cmd/portico is built on this package alone, as an embedding program is.
// A program may add HTTP routes behind Portico's authentication, host
// functions its plugins call through a capability, a storage backend, and
// plugins or skill packs carried in the binary with go:embed.
//
// Besides serving, the package has what the tools around a gateway need:
// the layered configuration (LoadConfig), API keys on a data dir
// (OpenKeys), backup and restore, the plugin manifest (ParseManifest) and
// how an admin client finds and trusts a running gateway (Config.Client).
// Everything it builds on lives under core/internal and may change between
// releases. docs/embedding.md is the guide; the plugin side is docs/abi.md
// and the sdk module.
//
// # A gateway in a few lines
//
//	gw, err := core.New(core.Options{
//		Config:   []byte(`listen = "127.0.0.1:8080"`),
//		Plugins:  []fs.FS{myPlugins},
//		AdminKey: os.Getenv("ACME_ADMIN_KEY"),
//	})
//	if err != nil { ... }
//	if err := gw.Start(ctx); err != nil { ... }
//	defer gw.Shutdown(context.Background())
//	reply, err := gw.Invoke(ctx, "stock", []byte(`"apples"`))
//
// # Configuration
//
// The configuration is built in layers, later ones winning: Portico's
// built-in defaults < Options.Config (a TOML document, e.g. go:embed'ed)
// < the file Options.ConfigFile (watched and reloaded while running)
// < PORTICO_* variables in Options.Environ < Options.Settings. Every key
// is in docs/configuration.md; an invalid value fails New with an error
// matching ErrInvalidConfig that names the key.
//
// # Safety
//
// Nothing in this package panics on bad input: New checks every option
// and returns all problems at once, joined, each matching ErrInvalidOption
// (or ErrInvalidConfig). Methods are safe for concurrent use.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/httpapi"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/pack"
	"github.com/porticohq/portico/hostapi"
)

// Errors, for errors.Is. Every error this package returns wraps the
// underlying cause too, so its message says what happened.
var (
	// ErrInvalidOption marks an option that New refuses.
	ErrInvalidOption = errors.New("invalid option")
	// ErrInvalidConfig marks a configuration that does not parse or
	// validate; the message names each bad key (Problems lists them).
	ErrInvalidConfig = config.ErrInvalid
	// ErrNotFound is returned (wrapped) by Invoke for an unknown skill.
	// A Store's Get returns it for a missing key, and a HostFunc returns
	// it for "no such thing" (the guest sees -1).
	ErrNotFound = errors.New("not found")
	// ErrNotStarted is returned by Invoke before Start.
	ErrNotStarted = errors.New("gateway not started")
	// ErrStopped is returned by Start and Invoke after Shutdown.
	ErrStopped = errors.New("gateway stopped")
	// ErrBadInput is returned by Invoke when the input is not JSON, does
	// not match the skill's input schema, or the skill refuses it.
	ErrBadInput = errors.New("bad skill input")
	// ErrUnavailable is returned by Invoke when the skill's plugin is
	// disabled or has failed.
	ErrUnavailable = errors.New("skill unavailable")
	// ErrBusy is returned by Invoke when every instance of the plugin
	// stayed busy for plugin.acquire_timeout.
	ErrBusy = errors.New("plugin busy")
	// ErrTimeout is returned by Invoke when the skill did not answer
	// within its call timeout.
	ErrTimeout = errors.New("skill timed out")
	// ErrSkillFailed is returned by Invoke when the skill reported an
	// error, trapped or wrote more than plugin.max_output_bytes.
	ErrSkillFailed = errors.New("skill failed")
	// ErrQuota is returned by Invoke when the skill failed after a token
	// quota refused it an LLM completion (Invoke itself counts no quota:
	// this comes from a context carrying an account, as the HTTP API's).
	ErrQuota = errors.New("quota exceeded")
	// ErrDepth is returned by Invoke when the skill failed after its call
	// chain went deeper than plugin.max_call_depth or its pool could serve.
	ErrDepth = errors.New("skill call chain too deep")
)

// invokeErrors is the embedding API's answer to each kind of failed
// plugin call: the one table of this surface (HTTP, MCP and A2A have
// theirs; a test holds them to each other).
var invokeErrors = map[plugin.Kind]error{
	plugin.KindNotFound:    ErrNotFound,
	plugin.KindBadInput:    ErrBadInput,
	plugin.KindUnavailable: ErrUnavailable,
	plugin.KindBusy:        ErrBusy,
	plugin.KindTimeout:     ErrTimeout,
	plugin.KindFailed:      ErrSkillFailed,
	plugin.KindQuota:       ErrQuota,
	plugin.KindDepth:       ErrDepth,
}

// Role is what a credential may do: each role includes the ones before it.
// A Route requires one.
type Role int

// Roles, from least to most allowed. The zero Role is not a role: a Route
// must choose.
const (
	// RolePublic needs no credential.
	RolePublic Role = iota + 1
	// RoleUser is any valid key or token.
	RoleUser
	// RoleOperator can manage plugins, hooks and channels.
	RoleOperator
	// RoleAdmin can manage keys, users and the configuration.
	RoleAdmin
)

// String returns the role's name as the HTTP API and keys use it.
func (r Role) String() string {
	if a, ok := r.auth(); ok {
		return a.String()
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

func (r Role) auth() (auth.Role, bool) {
	switch r {
	case RolePublic:
		return auth.RolePublic, true
	case RoleUser:
		return auth.RoleUser, true
	case RoleOperator:
		return auth.RoleOperator, true
	case RoleAdmin:
		return auth.RoleAdmin, true
	}
	return 0, false
}

// Route is an HTTP route tree the program adds to the gateway's handler.
// Handler serves every path under Prefix, mounted like chi's Router.Mount
// (a chi.Router sees paths relative to Prefix; any other handler sees the
// full path). It runs behind Portico's core middleware (request id, access
// log, panic recovery, CORS, in-flight limit, pre-auth WASM middleware)
// and:
//   - with RolePublic, no authentication, rate-limited per client IP in
//     the ratelimit.unauthenticated group;
//   - with any other Role, a key or token of at least that role (401 or
//     403 otherwise), the ratelimit.default group per credential, and the
//     post-auth WASM middleware.
//
// Prefix looks like "/acme" or "/acme/v1"; its first segment must not be
// one of Portico's own ("api", "health", "ui", ".well-known", "a2a",
// "metrics", "cert", ...) nor another Route's.
type Route struct {
	Prefix  string
	Role    Role
	Handler http.Handler
}

// HostFunc is a host function the program gives its plugins. A guest
// imports it from module Module under Name with the signature
// (in_ptr i32, in_len i32) -> i32 and reads the reply with the portico
// module's result function, like llm_complete (docs/abi.md). Only a plugin
// granted Capability may call it: its manifest lists the capability
// (capabilities.required or optional) and the configuration grants it
// ([[plugins]] grants); any other caller gets -2 and the refusal is
// audited.
//
// Fn gets the guest's bytes and returns the reply. An error that matches
// ErrNotFound gives the guest -1; any other error -3, and the error's
// message is the result. Fn runs under the plugin call's deadline, must
// honour ctx and be safe for concurrent use; a panic in Fn traps that
// call only.
//
// Module is lower-case letters, digits and _ (not "portico", "env" or a
// WASI or http-wasm module); Name likewise; Capability is a dotted name
// such as "acme.lookup", which keeps it apart from the built-in
// capabilities.
type HostFunc struct {
	Module     string
	Name       string
	Capability string
	Fn         func(ctx context.Context, in []byte) ([]byte, error)
}

// Options configure New. The zero value is a gateway with Portico's
// built-in defaults (listening on 127.0.0.1:3120, data in ./portico-data).
type Options struct {
	// Config is a TOML configuration document: the program's own
	// defaults, over Portico's built-in ones.
	Config []byte
	// ConfigFile is a TOML or YAML file read over Config and watched
	// while the gateway runs; an invalid edit keeps the old configuration
	// serving. Empty: the optional <data_dir>/portico.toml.
	ConfigFile string
	// Settings are dotted keys ("log.level") with values written as on
	// Portico's command line; they win over every other layer.
	Settings map[string]string
	// Environ holds "NAME=value" pairs: PORTICO_* names among them are
	// configuration (PORTICO_LOG__LEVEL), as for the binary. nil reads no
	// environment; pass os.Environ() to behave like the binary.
	Environ []string
	// AdminKey becomes the first admin key when the data dir holds no key
	// yet; without it the gateway writes a fresh one to
	// <data_dir>/admin.key on first start.
	AdminKey string

	// Logger receives the gateway's logs (log.level still filters them).
	// nil writes text or JSON lines (log.format) to LogOutput.
	Logger *slog.Logger
	// LogOutput is where logs go when Logger is nil; nil means os.Stderr.
	LogOutput io.Writer
	// Store replaces the embedded Badger database in data_dir (the data
	// dir still holds the admin key file, installed plugins and the
	// compilation cache). The gateway owns it from New on and closes it
	// at Shutdown, or when New fails. NewMemoryStore gives one for tests.
	Store Store

	// Routes are mounted beside Portico's API; see Route.
	Routes []Route
	// HostFuncs are added to the plugin runtime; see HostFunc.
	HostFuncs []HostFunc
	// Plugins are plugin sources carried by the program, typically an
	// embed.FS (use fs.Sub to drop a leading directory). Each is either a
	// skill pack (pack.toml at its root: installed or upgraded as a whole
	// by Start, docs/packs.md) or a tree of plugin directories
	// (<name>/plugin.toml and its module), loaded beside the first-party
	// plugins whatever plugin.embedded says. Grants and per-plugin
	// settings come from [[plugins]] tables in the configuration, as for
	// any plugin.
	Plugins []fs.FS

	// ConfigDebounce is how long the config file watcher waits for quiet
	// after a change before reloading; zero means 100ms.
	ConfigDebounce time.Duration
}

// sources are the configuration layers of o.
func (o Options) sources() config.Sources {
	return config.Sources{File: o.ConfigFile, Env: o.Environ, Flags: o.Settings, Base: o.Config}
}

// checked is what check makes of Options for New.
type checked struct {
	store     store.Store // nil: Badger in data_dir
	routes    []httpapi.Mount
	hostFuncs []hostapi.HostFunc
	plugins   []fs.FS
	packs     []*pack.Pack
}

// check checks the options and converts them for New.
func (o Options) check() (checked, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...)))
	}
	var e checked
	if o.AdminKey != "" {
		if err := auth.CheckSecret(o.AdminKey); err != nil {
			bad("AdminKey: %v; NewKey makes one", err)
		}
	}
	if o.Store != nil {
		e.store = &storeAdapter{s: o.Store}
	}
	for i, r := range o.Routes {
		role, ok := r.Role.auth()
		if !ok {
			bad("Routes[%d] (%q): Role %d is not a role; use RolePublic, RoleUser, RoleOperator or RoleAdmin", i, r.Prefix, int(r.Role))
			role = auth.RolePublic // checked no further than this
		}
		e.routes = append(e.routes, httpapi.Mount{Prefix: r.Prefix, Role: role, Handler: r.Handler})
	}
	if err := httpapi.CheckMounts(e.routes); err != nil {
		bad("%v", err)
	}
	for _, f := range o.HostFuncs {
		e.hostFuncs = append(e.hostFuncs, hostapi.HostFunc{Module: f.Module, Name: f.Name, Capability: f.Capability, Fn: adaptHostFn(f.Fn)})
	}
	if err := hostapi.CheckHostFuncs(e.hostFuncs); err != nil {
		bad("%v", err)
	}
	names := map[string]string{}
	for i, fsys := range o.Plugins {
		if fsys == nil {
			bad("Plugins[%d] is nil", i)
			continue
		}
		if _, err := fs.Stat(fsys, pack.ManifestFile); err == nil {
			p, err := pack.Parse(fsys, pack.Limits{})
			if err != nil {
				bad("Plugins[%d]: %v", i, err)
				continue
			}
			for _, pl := range p.Manifest.Plugins {
				if prev, ok := names[pl.Name]; ok {
					bad("Plugins[%d]: plugin %q is also in %s", i, pl.Name, prev)
				}
				names[pl.Name] = fmt.Sprintf("Plugins[%d] (pack %q)", i, p.Manifest.Name)
			}
			e.packs = append(e.packs, p)
			continue
		}
		found := plugin.BundledNames(fsys)
		if len(found) == 0 {
			bad("Plugins[%d] holds neither %s nor a plugin directory (<name>/%s); for an embed.FS, use fs.Sub to drop the leading directory", i, pack.ManifestFile, plugin.ManifestFile)
			continue
		}
		for _, n := range found {
			if prev, ok := names[n]; ok {
				bad("Plugins[%d]: plugin %q is also in %s", i, n, prev)
			}
			names[n] = fmt.Sprintf("Plugins[%d]", i)
		}
		e.plugins = append(e.plugins, fsys)
	}
	return e, errors.Join(errs...)
}

// Problems lists the problems an error of New or LoadConfig holds, one
// each: every bad key of an invalid configuration (with where its value
// came from), every refused option.
func Problems(err error) []string {
	if err == nil {
		return nil
	}
	return config.Problems(err)
}

// NewKey returns a new random API key secret in the form the gateway
// accepts, for Options.AdminKey.
func NewKey() string { return auth.NewSecret() }

// adaptHostFn maps ErrNotFound onto the runtime's own sentinel.
func adaptHostFn(fn func(context.Context, []byte) ([]byte, error)) func(context.Context, []byte) ([]byte, error) {
	if fn == nil {
		return nil // refused by CheckHostFuncs
	}
	return func(ctx context.Context, in []byte) ([]byte, error) {
		out, err := fn(ctx, in)
		if err != nil && errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", hostapi.ErrNotFound, err)
		}
		return out, err
	}
}

// Invoke calls a skill with input, which must be JSON (a skill's input is
// what the HTTP API's {"input": ...} holds), and returns the skill's reply
// as it wrote it. It runs with the program's authority: no key, no rate
// limit, no quota. Errors match ErrNotStarted, ErrStopped, ErrNotFound,
// ErrBadInput, ErrUnavailable, ErrBusy, ErrTimeout, ErrSkillFailed,
// ErrQuota, ErrDepth, or are ctx's.
func (gw *Gateway) Invoke(ctx context.Context, skill string, input []byte) ([]byte, error) {
	gw.mu.Lock()
	state := gw.state
	gw.mu.Unlock()
	switch state {
	case stateNew:
		return nil, ErrNotStarted
	case stateStopped:
		return nil, ErrStopped
	}
	if !json.Valid(input) {
		return nil, fmt.Errorf("%w: skill %q: the input is not JSON", ErrBadInput, skill)
	}
	out, _, err := gw.plugins.Invoke(ctx, skill, input)
	if err != nil {
		return nil, invokeError(err)
	}
	return out, nil
}

// invokeError adds the public sentinel of a plugin call's kind.
func invokeError(err error) error {
	if public, ok := invokeErrors[plugin.KindOf(err)]; ok {
		return fmt.Errorf("%w: %w", public, err)
	}
	return err
}

// Event is something that happened in the gateway: a plugin loaded, a
// session created, a message sent, a configuration reloaded... Type is a
// dotted name ("plugin.loaded"); Data is its details as JSON, the same
// document the event stream (GET /api/v1/events/stream) and webhooks
// carry. docs/webhooks.md lists the types.
type Event struct {
	Type string
	Time time.Time
	Data json.RawMessage
}

// Subscription receives the events that match its pattern until it is
// closed; see Gateway.Subscribe.
type Subscription struct {
	gw   *Gateway
	sub  *events.Subscription
	ch   chan Event
	done chan struct{}
	once sync.Once
}

// Subscribe returns a subscription to events whose type matches pattern:
// dotted segments where "*" matches one segment and a final "*" one or
// more ("plugin.*", "message.sent", "*" for all). Up to buffer events wait
// to be read; when the reader falls further behind, new events are dropped
// for this subscription alone and counted (Dropped): the gateway never
// waits for a subscriber. The subscription ends with Close or Shutdown,
// which close its Events channel.
func (gw *Gateway) Subscribe(pattern string, buffer int) (*Subscription, error) {
	if buffer < 1 {
		return nil, fmt.Errorf("%w: subscription buffer must be at least 1, got %d", ErrInvalidOption, buffer)
	}
	gw.mu.Lock()
	stopped := gw.state == stateStopped
	gw.mu.Unlock()
	if stopped {
		return nil, ErrStopped
	}
	gw.subMu.Lock()
	defer gw.subMu.Unlock()
	sub, err := gw.bus.Subscribe(pattern, buffer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	s := &Subscription{gw: gw, sub: sub, ch: make(chan Event), done: make(chan struct{})}
	gw.subs[s] = struct{}{}
	go s.pump()
	return s, nil
}

// pump hands events on, converted, until the subscription closes.
func (s *Subscription) pump() {
	defer close(s.ch)
	for e := range s.sub.Events() {
		data, err := e.DataJSON()
		if err != nil {
			data = nil // events carry JSON-encodable data; nothing to hand on
		}
		data = slices.Clone(data) // the encoding is every subscriber's: each gets its own copy
		select {
		case s.ch <- Event{Type: e.Type, Time: e.Time, Data: data}:
		case <-s.done:
			return
		}
	}
}

// Events returns the channel events arrive on, in the order they were
// published. It is closed when the subscription ends.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Dropped counts the events this subscription missed because its buffer
// was full.
func (s *Subscription) Dropped() uint64 { return s.sub.Dropped() }

// Close ends the subscription; Events is closed soon after. It is safe to
// call more than once.
func (s *Subscription) Close() {
	s.gw.subMu.Lock()
	delete(s.gw.subs, s)
	s.gw.subMu.Unlock()
	s.close()
}

// close ends the subscription without touching the gateway's list.
func (s *Subscription) close() {
	s.once.Do(func() {
		close(s.done)
		s.sub.Close()
	})
}
