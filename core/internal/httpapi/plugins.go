package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/plugin"
)

// Plugin error codes.
const (
	CodePluginDisabled    = "plugin_disabled"    // 409
	CodePluginUnavailable = "plugin_unavailable" // 503
	CodePluginError       = "plugin_error"       // 502
	CodePluginBusy        = "plugin_busy"        // 503
	CodePluginTimeout     = "plugin_timeout"     // 504
)

// pluginAnswers is the HTTP API's answer to each kind of failed plugin
// call: the one table of this surface (the embedding API, MCP and A2A
// have theirs; a test holds them to each other).
var pluginAnswers = map[plugin.Kind]struct {
	status int
	code   string
}{
	plugin.KindNotFound:    {http.StatusNotFound, CodeNotFound},
	plugin.KindBadInput:    {http.StatusBadRequest, CodeBadRequest},
	plugin.KindUnavailable: {http.StatusServiceUnavailable, CodePluginUnavailable}, // disabled: 409 plugin_disabled
	plugin.KindBusy:        {http.StatusServiceUnavailable, CodePluginBusy},
	plugin.KindTimeout:     {http.StatusGatewayTimeout, CodePluginTimeout},
	plugin.KindFailed:      {http.StatusBadGateway, CodePluginError},
	plugin.KindQuota:       {http.StatusTooManyRequests, CodeQuotaExceeded},
	plugin.KindDepth:       {http.StatusBadGateway, CodePluginError},
}

// PluginError turns a failed plugin call into the API's error, its kind in
// details.kind; an error of no kind (the client gone, say) is returned as
// it is.
func PluginError(err error) error {
	k := plugin.KindOf(err)
	ans, ok := pluginAnswers[k]
	if !ok {
		return err
	}
	if k == plugin.KindUnavailable && errors.Is(err, plugin.ErrDisabled) {
		ans.status, ans.code = http.StatusConflict, CodePluginDisabled
	}
	e := Errorf(ans.status, ans.code, "%v", err)
	e.Details = map[string]any{"kind": string(k)}
	return e
}

func (a *API) listPlugins(w http.ResponseWriter, r *http.Request) error {
	list := a.d.Plugins.List()
	writeJSON(w, http.StatusOK, map[string]any{"plugins": list, "total": len(list)})
	return nil
}

func (a *API) getPlugin(w http.ResponseWriter, r *http.Request) error {
	info, err := a.d.Plugins.Get(chi.URLParam(r, "name"))
	if err != nil {
		return PluginError(err)
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// pluginAction runs reload, disable or enable, audits it and answers the
// plugin's state afterwards.
func (a *API) pluginAction(action string, fn func(*plugin.Manager, context.Context, string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := chi.URLParam(r, "name")
		err := fn(a.d.Plugins, r.Context(), name)
		if errors.Is(err, plugin.ErrNotFound) {
			return PluginError(err)
		}
		e := audit.Entry{Actor: actor(r), Action: "plugin." + action, Target: name, Outcome: audit.Success}
		if err != nil {
			e.Outcome, e.Details = audit.Failure, map[string]any{"error": err.Error()}
		}
		a.record(r, e)
		if errors.Is(err, plugin.ErrConflict) {
			return Errorf(http.StatusConflict, CodeConflict, "%v", err)
		}
		if err != nil {
			return Errorf(http.StatusBadGateway, CodePluginError, "%v", err)
		}
		info, err := a.d.Plugins.Get(name)
		if err != nil {
			return PluginError(err)
		}
		writeJSON(w, http.StatusOK, info)
		return nil
	}
}

// installPlugin takes a multipart upload with the parts "manifest"
// (plugin.toml) and "module" (the .wasm).
func (a *API) installPlugin(w http.ResponseWriter, r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "send multipart/form-data with the parts \"manifest\" (plugin.toml) and \"module\" (.wasm): %v", err)
	}
	parts := map[string][]byte{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return badBody(err)
		}
		name := part.FormName()
		if name != "manifest" && name != "module" {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "unknown part %q; send \"manifest\" and \"module\"", name)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return badBody(err)
		}
		parts[name] = b
	}
	if parts["manifest"] == nil || parts["module"] == nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "both parts \"manifest\" and \"module\" are required")
	}
	info, err := a.d.Plugins.Install(r.Context(), parts["manifest"], parts["module"])
	e := audit.Entry{Actor: actor(r), Action: "plugin.install", Target: info.Name, Outcome: audit.Success,
		Details: map[string]any{"module_sha256": info.ModuleSHA256, "version": info.Version}}
	if err != nil {
		e.Outcome, e.Details = audit.Failure, map[string]any{"error": err.Error()}
	}
	a.record(r, e)
	switch {
	case errors.Is(err, plugin.ErrInvalid):
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	case errors.Is(err, plugin.ErrConflict):
		return Errorf(http.StatusConflict, CodeConflict, "%v", err)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusCreated, info)
	return nil
}

// badBody keeps a body-size error as it is (413) and calls anything else
// a bad request.
func badBody(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return Errorf(http.StatusBadRequest, CodeBadRequest, "reading the upload: %v", err)
}

func (a *API) uninstallPlugin(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	purge := r.URL.Query().Get("purge") == "true"
	err := a.d.Plugins.Uninstall(r.Context(), name, purge)
	if errors.Is(err, plugin.ErrNotFound) {
		return PluginError(err)
	}
	e := audit.Entry{Actor: actor(r), Action: "plugin.uninstall", Target: name, Outcome: audit.Success, Details: map[string]any{"purge": purge}}
	if err != nil {
		e.Outcome, e.Details["error"] = audit.Failure, err.Error()
	}
	a.record(r, e)
	if errors.Is(err, plugin.ErrConflict) {
		return Errorf(http.StatusConflict, CodeConflict, "%v", err)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listSkills(w http.ResponseWriter, r *http.Request) error {
	p := PrincipalFrom(r.Context())
	if p == nil || len(p.Scopes) == 0 {
		if b := a.d.Plugins.SkillsJSON(); b != nil {
			writeRaw(w, http.StatusOK, b)
			return nil
		}
	}
	out := []plugin.SkillInfo{}
	for _, s := range a.d.Plugins.Skills() {
		if p == nil || p.Allows(s.Name) {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, skillsResponse{Skills: out, Total: len(out)})
	return nil
}

type invokeRequest struct {
	Input json.RawMessage `json:"input"`
}

func (a *API) invokeSkill(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if p := PrincipalFrom(r.Context()); p != nil && !p.Allows(name) {
		return Errorf(http.StatusForbidden, CodeForbidden, "this key may not invoke skill %q (its scopes: %v)", name, p.Scopes)
	}
	var req invokeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Input) == 0 {
		req.Input = json.RawMessage("null")
	}
	ctx := r.Context()
	if p := PrincipalFrom(ctx); p != nil {
		// The key pays for the skill's LLM calls; a refusal of its quota
		// inside the call comes back as the call's kind (429).
		ctx = llm.WithAccount(ctx, p.KeyID)
	}
	start := time.Now()
	out, plug, err := a.d.Plugins.Invoke(ctx, name, req.Input)
	if err != nil {
		return PluginError(err)
	}
	var output any = json.RawMessage(out)
	if !json.Valid(out) {
		output = string(out)
	}
	// A struct, not a map: encoding it needs no key sorting.
	writeJSON(w, http.StatusOK, invokeResponse{Skill: name, Plugin: plug, Output: output,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000})
	return nil
}

type skillsResponse struct {
	Skills []plugin.SkillInfo `json:"skills"`
	Total  int                `json:"total"`
}

type invokeResponse struct {
	Skill      string  `json:"skill"`
	Plugin     string  `json:"plugin"`
	Output     any     `json:"output"`
	DurationMS float64 `json:"duration_ms"` // a number, to microseconds: what people graph`
}
