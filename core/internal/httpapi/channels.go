package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/channel"
)

func channelError(err error) error {
	switch {
	case errors.Is(err, channel.ErrNotFound):
		return Errorf(http.StatusNotFound, CodeNotFound, "%v", err)
	case errors.Is(err, channel.ErrReply):
		return Errorf(http.StatusBadGateway, CodePluginError, "%v", err)
	}
	return sessionError(err)
}

func (a *API) listChannels(w http.ResponseWriter, r *http.Request) error {
	list, err := a.d.Channels.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": list, "total": len(list)})
	return nil
}

func (a *API) channelHealth(w http.ResponseWriter, r *http.Request) error {
	h, err := a.d.Channels.Health(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return channelError(err)
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *API) restartChannel(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	err := a.d.Channels.Restart(r.Context(), name)
	if errors.Is(err, channel.ErrBuiltIn) {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%s is built in: it has no plugin instances to restart", name)
	}
	if errors.Is(err, channel.ErrNotFound) {
		return channelError(err)
	}
	e := audit.Entry{Actor: actor(r), Action: "channel.restart", Target: name, Outcome: audit.Success}
	if err != nil {
		e.Outcome, e.Details = audit.Failure, map[string]any{"error": err.Error()}
	}
	a.record(r, e)
	if err != nil {
		return Errorf(http.StatusBadGateway, CodePluginError, "%v", err)
	}
	h, err := a.d.Channels.Health(r.Context(), name)
	if err != nil {
		return channelError(err)
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// channelWebhook takes a chat platform's request: public, because the
// channel plugin checks the platform's own signature or secret.
func (a *API) channelWebhook(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return badBody(err)
	}
	if !utf8.Valid(body) {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "the webhook body must be UTF-8 text")
	}
	req := channel.WebhookRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: map[string]string{}, Body: string(body)}
	for k, v := range r.Header {
		req.Headers[strings.ToLower(k)] = v[0]
	}
	res, err := a.d.Channels.Webhook(r.Context(), name, req)
	if err != nil {
		return channelError(err)
	}
	if st := res.Reply.Status; st >= 400 {
		a.record(r, audit.Entry{Actor: "ip:" + a.proxies.clientIP(r), Action: "channel.webhook_refused", Target: name, Outcome: audit.Denied,
			Details: map[string]any{"status": st, "reason": res.Reply.Error}})
		code := map[int]string{401: CodeUnauthorized, 403: CodeForbidden, 404: CodeNotFound, 413: CodeTooLarge}[st]
		if code == "" {
			code = CodeBadRequest
		}
		msg := res.Reply.Error
		if msg == "" {
			msg = "the channel refused the request"
		}
		return Errorf(st, code, "channel %s: %s", name, msg)
	}
	if res.Reply.Body != "" {
		ct := res.Reply.ContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(res.Reply.Status)
		io.WriteString(w, res.Reply.Body)
		return nil
	}
	writeJSON(w, res.Reply.Status, map[string]any{"ok": true, "messages": len(res.Reply.Messages), "answered": len(res.Turns), "errors": res.Errors})
	return nil
}
