package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/session"
)

// visibleEvent decides what of an event a principal may see: a user only
// the events of its own sessions, operators everything, and message text
// only admins (operators see that a message passed, not what it said) or
// the session's own user.
func visibleEvent(p *auth.Principal, e events.Event) (events.Event, bool) {
	if p == nil {
		return e, false
	}
	var owner string
	switch d := e.Data.(type) {
	case session.MessageEvent:
		owner = d.Owner
		if p.Role < auth.RoleAdmin && !(owner != "" && owner == p.UserID) {
			d.Text = ""
			e = e.WithData(d)
		}
	case session.SessionEvent:
		owner = d.Owner
	default:
		return e, p.Role >= auth.RoleOperator
	}
	return e, p.Role >= auth.RoleOperator || owner != "" && owner == p.UserID
}

// eventPatterns reads the comma-separated patterns of ?events= (default
// every event) and checks each.
func eventPatterns(q string) ([]string, error) {
	if strings.TrimSpace(q) == "" {
		return []string{"*"}, nil
	}
	var out []string
	for _, p := range strings.Split(q, ",") {
		p = strings.TrimSpace(p)
		if err := events.CheckPattern(p); err != nil {
			return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "events: %v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// sseKeepAlive is how often an idle event stream sends a comment line, so
// proxies keep the connection open.
const sseKeepAlive = 15 * time.Second

// eventStream serves GET /api/v1/events/stream as server-sent events:
// "event: <type>" and "data: <event JSON>" per event.
func (a *API) eventStream(w http.ResponseWriter, r *http.Request) error {
	patterns, err := eventPatterns(r.URL.Query().Get("events"))
	if err != nil {
		return err
	}
	sub, err := a.d.Bus.SubscribeAny(patterns, int(a.d.Config.Config().Events.Buffer))
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	defer sub.Close()
	p := PrincipalFrom(r.Context())
	serveSSE(a, w, r, "event stream", sub.Events(), func(w io.Writer, e events.Event) error {
		e, ok := visibleEvent(p, e)
		if !ok {
			return nil
		}
		b, err := json.Marshal(e)
		if err != nil {
			a.d.Logger.Error("event not encodable", "type", e.Type, "error", err)
			return nil
		}
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b)
		return err
	})
	return nil
}
