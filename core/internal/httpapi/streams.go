package httpapi

import "context"

// CloseStreams ends every WebSocket and server-sent-event stream, now and
// from then on: the gateway calls it when it starts draining, because
// http.Server.Shutdown waits for open handlers (an SSE stream never ends
// on its own) and does not track hijacked WebSocket connections at all.
func (a *API) CloseStreams() { a.stopStreams() }

// streamContext is the request's context, also canceled by CloseStreams.
func (a *API) streamContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(a.streams, cancel)
	return ctx, func() { stop(); cancel() }
}
