package httpapi

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/webhook"
)

// hookError maps the webhook service's errors to API errors.
func hookError(err error) error {
	switch {
	case errors.Is(err, webhook.ErrNotFound):
		return Errorf(http.StatusNotFound, CodeNotFound, "%v", err)
	case errors.Is(err, webhook.ErrInvalid):
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	case errors.Is(err, webhook.ErrConflict):
		return Errorf(http.StatusConflict, CodeConflict, "%v", err)
	}
	return err
}

// recordHook audits a hook action; an unknown hook is not audited, like an
// unknown plugin.
func (a *API) recordHook(r *http.Request, action, target string, details map[string]any, err error) {
	if errors.Is(err, webhook.ErrNotFound) {
		return
	}
	e := audit.Entry{Actor: actor(r), Action: action, Target: target, Outcome: audit.Success, Details: details}
	if err != nil {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Outcome, e.Details["error"] = audit.Failure, err.Error()
	}
	a.record(r, e)
}

// hookWithSecret is a hook as create and rotate-secret answer it: the
// only time its secret is shown.
type hookWithSecret struct {
	webhook.Hook
	Secret string `json:"secret"`
}

func (a *API) listHooks(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	all := a.d.Hooks.List()
	page := all[min(offset, len(all)):min(offset+limit, len(all))]
	writeJSON(w, http.StatusOK, map[string]any{"hooks": page, "total": len(all), "limit": limit, "offset": offset})
	return nil
}

func (a *API) createHook(w http.ResponseWriter, r *http.Request) error {
	var in webhook.HookInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	h, secret, err := a.d.Hooks.Create(r.Context(), in)
	a.recordHook(r, "hook.create", h.ID, map[string]any{"url": in.URL, "events": in.Events}, err)
	if err != nil {
		return hookError(err)
	}
	writeJSON(w, http.StatusCreated, hookWithSecret{Hook: h, Secret: secret})
	return nil
}

func (a *API) getHook(w http.ResponseWriter, r *http.Request) error {
	h, err := a.d.Hooks.Get(chi.URLParam(r, "id"))
	if err != nil {
		return hookError(err)
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *API) deleteHook(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	h, err := a.d.Hooks.Get(id)
	if err == nil {
		err = a.d.Hooks.Delete(r.Context(), id)
	}
	a.recordHook(r, "hook.delete", id, map[string]any{"url": h.URL}, err)
	if err != nil {
		return hookError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) rotateHookSecret(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	h, secret, err := a.d.Hooks.RotateSecret(r.Context(), id)
	a.recordHook(r, "hook.rotate_secret", id, map[string]any{"previous_secret_expires_at": h.PreviousSecretExpiresAt}, err)
	if err != nil {
		return hookError(err)
	}
	writeJSON(w, http.StatusOK, hookWithSecret{Hook: h, Secret: secret})
	return nil
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	ds, total, err := a.d.Hooks.ListDeliveries(r.Context(), chi.URLParam(r, "id"), r.URL.Query().Get("status"), limit, offset)
	if err != nil {
		return hookError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds, "total": total, "limit": limit, "offset": offset})
	return nil
}

func (a *API) redeliver(w http.ResponseWriter, r *http.Request) error {
	id, delivery := chi.URLParam(r, "id"), chi.URLParam(r, "delivery")
	d, err := a.d.Hooks.Redeliver(r.Context(), id, delivery)
	a.recordHook(r, "hook.redeliver", id, map[string]any{"delivery": delivery}, err)
	if err != nil {
		return hookError(err)
	}
	writeJSON(w, http.StatusAccepted, d)
	return nil
}
