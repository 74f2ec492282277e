package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// middlewareDrain bounds how long a reload or disable waits for requests
// still inside the old version of a middleware; streams (WebSocket, SSE)
// may hold it much longer, and its instances then close when they end.
const middlewareDrain = 5 * time.Second

// startMiddleware loads a middleware plugin (http-wasm) and installs it in
// its slot, so chains use it from the next request on. Its guest config is
// the [plugins.config] table as a JSON object of strings.
func (m *Manager) startMiddleware(ctx context.Context, e *entry, wasm []byte, host *pluginHost, o hostapi.Options) error {
	conf := e.cfg.Config
	if conf == nil {
		conf = map[string]string{}
	}
	guestConfig, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	callTimeout := o.CallTimeout
	if e.cfg.Trusted {
		callTimeout = -1 // hostapi's trusted tier: no deadline, no close-on-context-done
	}
	mw, err := httpwasm.Load(ctx, m.d.Runtime, wasm, httpwasm.Options{
		Name: e.name, GuestConfig: guestConfig, Host: host, Grants: e.granted,
		PoolOptions: hostapi.PoolOptions{MinInstances: o.MinInstances, MaxInstances: o.MaxInstances, AcquireTimeout: o.AcquireTimeout, IdleRelease: o.IdleRelease, Source: o.Source},
		CallTimeout: callTimeout, MemoryBytes: o.MemoryLimitBytes,
		MaxBodyBytes: int(m.cfg.Middleware.MaxBodyBytes),
		Logger:       m.d.Logger.With("plugin", e.name),
	})
	if err != nil {
		return err
	}
	e.mw, e.host, e.state, e.lastErr = mw, host, Active, ""
	m.slot(e.name).Swap(mw)
	return nil
}

func (m *Manager) slot(name string) *nethttp.Slot {
	s, _ := m.slots.LoadOrStore(name, &nethttp.Slot{})
	return s.(*nethttp.Slot)
}

// middlewareOff empties a middleware's slot (disabled or removed).
func (m *Manager) middlewareOff(name string) {
	if s, ok := m.slots.Load(name); ok {
		s.(*nethttp.Slot).Swap(nil)
	}
}

// closeMiddleware closes an old version in the background: the request
// that asked for the reload or disable may itself be passing through it
// (a pre_auth middleware on every route), so waiting here would wait for
// ourselves.
func closeMiddleware(mw *httpwasm.Middleware) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), middlewareDrain)
		defer cancel()
		mw.Close(ctx) // past the deadline it finishes closing as the last request ends
	}()
}

// Middleware states for a chain.
var (
	// ErrNotMiddleware is a chain naming a plugin that is not middleware.
	ErrNotMiddleware = fmt.Errorf("not a middleware plugin")
)

// Middleware returns the slot of the middleware plugin name for a chain:
// nil with no error when the plugin is disabled (the chain skips it), an
// error when it is missing, not middleware or failed (the chain fails
// closed: a guard that did not load must not let requests by).
//
// A middleware still loading at start-up is waited for, up to its call
// timeout, so no request passes it by while it compiles.
func (m *Manager) Middleware(name string) (*nethttp.Slot, error) {
	e, ok := m.reg.Load().plugins[name]
	if ok && e.state == Loading {
		if err := m.awaitLoad(context.Background(), e); err != nil {
			return nil, err
		}
		e, ok = m.reg.Load().plugins[name]
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: middleware plugin %q is not loaded", ErrNotFound, name)
	case e.state == Disabled:
		return nil, nil
	case e.state == Failed:
		return nil, fmt.Errorf("%w: middleware plugin %q: %s", ErrFailed, name, e.lastErr)
	case e.mw == nil:
		return nil, fmt.Errorf("%w: plugin %q is %v", ErrFailed, name, ErrNotMiddleware)
	}
	return m.slot(name), nil
}
