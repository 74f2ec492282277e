package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/pack"
)

// installPack takes a pack archive (.tar.gz) as the body and installs or
// upgrades it, all or nothing (docs/packs.md).
func (a *API) installPack(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body) // bounded by packs.max_upload_bytes
	if err != nil {
		return badBody(err)
	}
	var info plugin.PackInfo
	p, err := pack.Read(bytes.NewReader(body), plugin.PackLimits(a.d.Config.Config().Packs))
	if err == nil {
		info, err = a.d.Plugins.InstallPack(r.Context(), p)
	}
	e := audit.Entry{Actor: actor(r), Action: "pack.install", Target: info.Name, Outcome: audit.Success,
		Details: map[string]any{"version": info.Version, "digest": info.Digest, "trusted": info.Trusted, "plugins": info.Plugins}}
	if info.Previous != "" {
		e.Details["previous_version"] = info.Previous
	}
	if err != nil {
		e.Outcome, e.Details = audit.Failure, map[string]any{"error": err.Error()}
		if p != nil {
			e.Target, e.Details["version"] = p.Manifest.Name, p.Manifest.Version
		}
	}
	a.record(r, e)
	switch {
	case errors.Is(err, pack.ErrTooLarge):
		return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "pack not installed: %v", err)
	case errors.Is(err, plugin.ErrConflict):
		return Errorf(http.StatusConflict, CodeConflict, "pack not installed: %v", err)
	case errors.Is(err, pack.ErrInvalid), errors.Is(err, pack.ErrABI), errors.Is(err, plugin.ErrInvalid),
		errors.Is(err, pack.ErrUnsigned), errors.Is(err, pack.ErrSignature), errors.Is(err, pack.ErrUntrusted):
		return Errorf(http.StatusBadRequest, CodeBadRequest, "pack not installed: %v", err)
	case err != nil:
		return err
	}
	status := http.StatusCreated
	if info.Previous != "" {
		status = http.StatusOK
	}
	writeJSON(w, status, info)
	return nil
}

func (a *API) listPacks(w http.ResponseWriter, r *http.Request) error {
	list := a.d.Plugins.Packs()
	writeJSON(w, http.StatusOK, map[string]any{"packs": list, "total": len(list)})
	return nil
}
