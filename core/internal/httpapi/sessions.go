package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/session"
)

// Session error codes.
const (
	CodeNoRoute    = "no_route"   // 422: no trigger matched and there is no default skill
	CodeTerminated = "terminated" // 409: the session takes no more messages
	// CodeSessionBusy: another node's turn held the session past
	// storage.postgres.statement_timeout.
	CodeSessionBusy = "session_busy" // 409
)

// sessionError maps the session service's errors (and the skill's, for a
// turn) to API errors.
func sessionError(err error) error {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return Errorf(http.StatusNotFound, CodeNotFound, "%v", err)
	case errors.Is(err, session.ErrTerminated):
		return Errorf(http.StatusConflict, CodeTerminated, "%v", err)
	case errors.Is(err, session.ErrInvalid):
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	case errors.Is(err, session.ErrTooLarge):
		return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "%v", err)
	case errors.Is(err, session.ErrNoRoute):
		return Errorf(http.StatusUnprocessableEntity, CodeNoRoute, "%v", err)
	case errors.Is(err, session.ErrBusy):
		return Errorf(http.StatusConflict, CodeSessionBusy, "%v", err)
	}
	return PluginError(err)
}

// owner is whose sessions a principal sees: its own user's, or everyone's
// for operators and admins (seeAll).
func owner(r *http.Request) (user string, seeAll bool) {
	p := PrincipalFrom(r.Context())
	if p == nil {
		return "", false
	}
	return p.UserID, p.Role >= auth.RoleOperator
}

// ownSession loads a session the caller may see; others' sessions are
// not found, so their ids leak nothing.
func (a *API) ownSession(r *http.Request, id string) (session.Session, error) {
	se, err := a.d.Sessions.Get(r.Context(), id)
	if err != nil {
		return se, sessionError(err)
	}
	if user, all := owner(r); !all && se.Owner != user {
		return session.Session{}, Errorf(http.StatusNotFound, CodeNotFound, "session not found: %q", id)
	}
	return se, nil
}

type createSessionRequest struct {
	Channel  string            `json:"channel"`
	UserID   string            `json:"user_id"`
	Metadata map[string]string `json:"metadata"`
}

func (a *API) createSession(w http.ResponseWriter, r *http.Request) error {
	var req createSessionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	user, _ := owner(r)
	se, err := a.d.Sessions.Create(r.Context(), session.CreateInput{Channel: req.Channel, UserID: req.UserID, Metadata: req.Metadata, Owner: user})
	if err != nil {
		return sessionError(err)
	}
	writeJSON(w, http.StatusCreated, se)
	return nil
}

type sessionList struct {
	Sessions []session.Session `json:"sessions"`
	Total    int               `json:"total"`
	Limit    int               `json:"limit"`
	Offset   int               `json:"offset"`
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	user, all := owner(r)
	list, total, err := a.d.Sessions.List(r.Context(), session.Filter{Owner: user, AnyOwner: all, UserID: q.Get("user_id"),
		Channel: q.Get("channel"), Status: session.Status(q.Get("status")), Limit: limit, Offset: offset})
	if err != nil {
		return sessionError(err)
	}
	writeJSON(w, http.StatusOK, sessionList{Sessions: list, Total: total, Limit: limit, Offset: offset})
	return nil
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request) error {
	se, err := a.ownSession(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, se)
	return nil
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) error {
	se, err := a.ownSession(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := a.d.Sessions.Terminate(r.Context(), se.ID); err != nil {
		if errors.Is(err, session.ErrTerminated) {
			return Errorf(http.StatusConflict, CodeConflict, "%v", err)
		}
		return sessionError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type messageList struct {
	Messages []session.Message `json:"messages"`
	Total    int64             `json:"total"`
	Limit    int               `json:"limit"`
	Offset   int               `json:"offset"`
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	se, err := a.ownSession(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	msgs, total, err := a.d.Sessions.Messages(r.Context(), se.ID, limit, offset)
	if err != nil {
		return sessionError(err)
	}
	writeJSON(w, http.StatusOK, messageList{Messages: msgs, Total: total, Limit: limit, Offset: offset})
	return nil
}

type postMessageRequest struct {
	Text string `json:"text"`
}

func (a *API) postMessage(w http.ResponseWriter, r *http.Request) error {
	var req postMessageRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return a.turn(w, r, chi.URLParam(r, "id"), req.Text)
}

// turn posts a message to a session the caller may see (the turn checks
// it as it reads the session) and answers the turn: 200 for a replayed
// Idempotency-Key, 201 for a new turn.
func (a *API) turn(w http.ResponseWriter, r *http.Request, sessionID, text string) error {
	user, all := owner(r)
	if err := a.checkQuota(r); err != nil {
		return err
	}
	turn, err := a.d.Sessions.Post(a.llmContext(r), session.PostInput{SessionID: sessionID, Text: text, Owner: user, AnyOwner: all,
		IdempotencyKey: r.Header.Get("Idempotency-Key")})
	if err != nil {
		return sessionError(err)
	}
	status := http.StatusCreated
	if turn.Replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, turn)
	return nil
}

type chatRequest struct {
	SessionID string            `json:"session_id"`
	Channel   string            `json:"channel"`
	UserID    string            `json:"user_id"`
	Metadata  map[string]string `json:"metadata"`
	Text      string            `json:"text"`
}

// chat posts a message to the session given, or to a new one.
func (a *API) chat(w http.ResponseWriter, r *http.Request) error {
	var req chatRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.SessionID != "" {
		return a.turn(w, r, req.SessionID, req.Text)
	}
	user, _ := owner(r)
	// A retried chat that created its session must not create a second.
	if t, ok, err := a.d.Sessions.Replay(r.Context(), user, r.Header.Get("Idempotency-Key")); err != nil || ok {
		if err != nil {
			return err
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, t)
		return nil
	}
	if err := a.d.Sessions.CheckText(req.Text); err != nil {
		return sessionError(err)
	}
	se, err := a.d.Sessions.Create(r.Context(), session.CreateInput{Channel: req.Channel, UserID: req.UserID, Metadata: req.Metadata, Owner: user})
	if err != nil {
		return sessionError(err)
	}
	return a.turn(w, r, se.ID, req.Text)
}

// llmContext names the caller's key as the account LLM usage under the
// request is counted against.
func (a *API) llmContext(r *http.Request) context.Context {
	if p := PrincipalFrom(r.Context()); p != nil {
		return llm.WithAccount(r.Context(), p.KeyID)
	}
	return r.Context()
}

// checkQuota refuses a caller whose key has spent its LLM token quota.
func (a *API) checkQuota(r *http.Request) error {
	p := PrincipalFrom(r.Context())
	if a.d.LLM == nil || p == nil {
		return nil
	}
	err := a.d.LLM.CheckQuota(r.Context(), p.KeyID)
	if errors.Is(err, llm.ErrQuotaExceeded) {
		return Errorf(http.StatusTooManyRequests, CodeQuotaExceeded, "%v", err)
	}
	return err
}
