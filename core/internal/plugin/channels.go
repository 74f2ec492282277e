package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/porticohq/portico/hostapi"
)

// ErrNotChannel answers a channel call to a plugin that is not a channel.
var ErrNotChannel = errors.New("not a channel plugin")

// Channels returns the channel plugins, by name.
func (m *Manager) Channels() []Info {
	reg := m.reg.Load()
	out := []Info{}
	for _, e := range reg.plugins {
		if e.manifest != nil && slices.Contains(e.manifest.Kinds, hostapi.KindChannel) {
			out = append(out, e.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CallChannel runs one operation ("webhook", "send", "health") of the
// channel plugin name with its JSON payload.
func (m *Manager) callChannel(ctx context.Context, name, op string, payload []byte) ([]byte, error) {
	env := Envelope(op, payload)
	for attempt := 0; ; attempt++ {
		e, ok := m.reg.Load().plugins[name]
		if !ok {
			return nil, fmt.Errorf("%w: channel %q", ErrNotFound, name)
		}
		if e.manifest == nil || !slices.Contains(e.manifest.Kinds, hostapi.KindChannel) {
			return nil, fmt.Errorf("%w: channel %q: plugin %q is %v", ErrNotFound, name, name, ErrNotChannel)
		}
		switch e.state {
		case Loading:
			if err := m.awaitLoad(ctx, e); err != nil {
				return nil, err
			}
			continue
		case Disabled:
			return nil, fmt.Errorf("%w: channel %q is disabled; enable it with POST /api/v1/plugins/%s/enable", ErrDisabled, name, name)
		case Failed:
			return nil, fmt.Errorf("%w: channel %q: %s", ErrFailed, name, e.lastErr)
		}
		out, err := e.plugin.CallChannel(ctx, env)
		if errors.Is(err, hostapi.ErrClosed) && attempt < maxSwapRetries && m.reg.Load().plugins[name] != e {
			continue
		}
		return out, err
	}
}

// CallChannel runs one operation ("webhook", "send", "health") of the
// channel plugin name with payload and returns its reply; a failed call's
// error matches one Kind.
func (m *Manager) CallChannel(ctx context.Context, name, op string, payload []byte) ([]byte, error) {
	out, err := m.callChannel(ctx, name, op, payload)
	return out, withKind(err)
}
