package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
)

// decodeJSON reads a JSON request body strictly into v: unknown fields and
// trailing data are errors, and an oversized body is 413.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return Errorf(http.StatusBadRequest, CodeBadRequest, "request body: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "request body: one JSON object expected, found more")
	}
	return nil
}

// paging reads limit (default 50, at most 1000) and offset.
func paging(r *http.Request) (limit, offset int, err error) {
	limit, offset = 50, 0
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, Errorf(http.StatusBadRequest, CodeBadRequest, "limit must be an integer from 1 to 1000, got %q", s)
		}
	}
	if s := q.Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return 0, 0, Errorf(http.StatusBadRequest, CodeBadRequest, "offset must be a non-negative integer, got %q", s)
		}
	}
	return limit, offset, nil
}

// authError maps auth's errors to API errors.
func authError(err error) error {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return Errorf(http.StatusNotFound, CodeNotFound, "%v", err)
	case errors.Is(err, auth.ErrConflict):
		return Errorf(http.StatusConflict, CodeConflict, "%v", err)
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrMalformed):
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	return err
}

type keyRequest struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	UserID    string     `json:"user_id"`
	ExpiresAt *time.Time `json:"expires_at"`
	ExpiresIn string     `json:"expires_in"` // a Go duration, instead of expires_at
	Scopes    []string   `json:"scopes"`
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	return a.keysOf(w, r, "")
}

func (a *API) listUserKeys(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if _, err := a.d.Auth.GetUser(id); err != nil {
		return authError(err)
	}
	return a.keysOf(w, r, id)
}

func (a *API) keysOf(w http.ResponseWriter, r *http.Request, userID string) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	keys, total := a.d.Auth.ListKeys(userID, limit, offset)
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys, "total": total, "limit": limit, "offset": offset})
	return nil
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) error {
	return a.newKey(w, r, "")
}

func (a *API) createUserKey(w http.ResponseWriter, r *http.Request) error {
	return a.newKey(w, r, chi.URLParam(r, "id"))
}

func (a *API) newKey(w http.ResponseWriter, r *http.Request, userID string) error {
	var req keyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	in := auth.KeyInput{Name: req.Name, Role: role, UserID: req.UserID, ExpiresAt: req.ExpiresAt, Scopes: req.Scopes}
	if userID != "" {
		if req.UserID != "" && req.UserID != userID {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "user_id %q in the body differs from %q in the path", req.UserID, userID)
		}
		in.UserID = userID
	}
	if in.UserID == "" {
		p := PrincipalFrom(r.Context())
		if p == nil || p.Via != "key" {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "user_id is required")
		}
		in.UserID = p.UserID
	}
	if req.ExpiresIn != "" {
		if req.ExpiresAt != nil {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "give expires_at or expires_in, not both")
		}
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "expires_in must be a positive duration such as \"720h\", got %q", req.ExpiresIn)
		}
		t := time.Now().Add(d).UTC()
		in.ExpiresAt = &t
	}
	k, secret, err := a.d.Auth.CreateKey(r.Context(), in)
	entry := audit.Entry{Actor: actor(r), Action: "key.create", Target: k.ID, Outcome: audit.Success,
		Details: map[string]any{"name": req.Name, "role": req.Role, "user_id": in.UserID}}
	if err != nil {
		entry.Outcome, entry.Details["error"] = audit.Failure, err.Error()
	}
	a.record(r, entry)
	if err != nil {
		return authError(err)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key": k, "secret": secret,
		"note": "the secret is shown this once; store it now"})
	return nil
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) error {
	return a.revoke(w, r, chi.URLParam(r, "id"), "")
}

func (a *API) revokeUserKey(w http.ResponseWriter, r *http.Request) error {
	return a.revoke(w, r, chi.URLParam(r, "key_id"), chi.URLParam(r, "id"))
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request, keyID, userID string) error {
	err := a.d.Auth.RevokeKey(r.Context(), keyID, userID)
	if errors.Is(err, auth.ErrNotFound) {
		return authError(err)
	}
	entry := audit.Entry{Actor: actor(r), Action: "key.revoke", Target: keyID, Outcome: audit.Success}
	if err != nil {
		entry.Outcome, entry.Details = audit.Failure, map[string]any{"error": err.Error()}
	}
	a.record(r, entry)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type userRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
}

func (u userRequest) input() (auth.UserInput, error) {
	role, err := auth.ParseRole(u.Role)
	if err != nil {
		return auth.UserInput{}, Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	return auth.UserInput{Email: u.Email, Name: u.Name, Role: role, Disabled: u.Disabled}, nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	users, total := a.d.Auth.ListUsers(limit, offset)
	writeJSON(w, http.StatusOK, map[string]any{"users": users, "total": total, "limit": limit, "offset": offset})
	return nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.d.Auth.GetUser(chi.URLParam(r, "id"))
	if err != nil {
		return authError(err)
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	return a.saveUser(w, r, "")
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	return a.saveUser(w, r, chi.URLParam(r, "id"))
}

// saveUser creates a user (id "") or replaces one's fields.
func (a *API) saveUser(w http.ResponseWriter, r *http.Request, id string) error {
	var req userRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	in, err := req.input()
	if err != nil {
		return err
	}
	action, status := "user.update", http.StatusOK
	var u auth.User
	if id == "" {
		action, status = "user.create", http.StatusCreated
		u, err = a.d.Auth.CreateUser(r.Context(), in)
		id = u.ID
	} else {
		u, err = a.d.Auth.UpdateUser(r.Context(), id, in)
	}
	a.recordUser(r, action, id, req, err)
	if err != nil {
		return authError(err)
	}
	writeJSON(w, status, u)
	return nil
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	err := a.d.Auth.DeleteUser(r.Context(), id)
	a.recordUser(r, "user.delete", id, nil, err)
	if err != nil {
		return authError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) recordUser(r *http.Request, action, id string, req any, err error) {
	if errors.Is(err, auth.ErrNotFound) {
		return
	}
	e := audit.Entry{Actor: actor(r), Action: action, Target: id, Outcome: audit.Success, Details: map[string]any{}}
	if req != nil {
		e.Details["request"] = req
	}
	if err != nil {
		e.Outcome, e.Details["error"] = audit.Failure, err.Error()
	}
	a.record(r, e)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	q := audit.Query{Actor: r.URL.Query().Get("actor"), Action: r.URL.Query().Get("action"), Limit: limit, Offset: offset}
	if s := r.URL.Query().Get("since"); s != "" {
		if q.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "since must be an RFC 3339 time such as 2026-11-23T10:00:00Z, got %q", s)
		}
	}
	entries, total, err := a.d.Audit.List(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "total": total, "limit": limit, "offset": offset})
	return nil
}
