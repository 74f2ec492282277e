package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

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

// serveSSE answers a request with a server-sent-event stream: it lifts the
// write deadline, sends the headers and a first comment naming the stream,
// then writes each item of ch with write (which may write nothing to skip
// one), a keep-alive comment every sseKeepAlive, and flushes, until the
// client leaves, CloseStreams ends it, ch closes or a write fails.
func serveSSE[T any](a *API, w http.ResponseWriter, r *http.Request, name string, ch <-chan T, write func(io.Writer, T) error) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives http.write_timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": portico %s\n\n", name)
	if rc.Flush() != nil {
		return
	}
	ctx, cancel := a.streamContext(r.Context())
	defer cancel()
	tick := time.NewTicker(sseKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case item, ok := <-ch:
			if !ok || write(w, item) != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}
