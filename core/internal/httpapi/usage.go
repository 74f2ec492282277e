package httpapi

import (
	"math"
	"net/http"
	"slices"

	"github.com/porticohq/portico/core/internal/llm"
)

// getUsage answers the LLM token usage of a period: a user's own keys, or
// every key (optionally one) for operators and admins.
func (a *API) getUsage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	period := q.Get("period")
	if period == "" {
		period = "30d"
	}
	days, err := llm.ParsePeriod(period)
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	query := llm.Query{Days: days}
	keyID := q.Get("key_id")
	p := PrincipalFrom(r.Context())
	switch {
	case p == nil:
		query.Accounts = []string{}
	case p.Role < RoleOperator:
		own := a.ownKeys(p.KeyID, p.UserID)
		if keyID != "" {
			if !slices.Contains(own, keyID) {
				return Errorf(http.StatusForbidden, CodeForbidden, "key %q is not one of yours; a user sees the usage of its own keys", keyID)
			}
			own = []string{keyID}
		}
		query.Accounts = own
	case keyID != "":
		query.Accounts = []string{keyID}
	}
	if a.d.LLM == nil {
		writeJSON(w, http.StatusOK, llm.Report{Period: period, ByKey: []llm.KeyUsage{}, ByModel: []llm.ModelUsage{}})
		return nil
	}
	rep, err := a.d.LLM.Usage(r.Context(), query)
	if err != nil {
		return err
	}
	rep.Period = period
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// ownKeys lists the caller's key and every key of its user.
func (a *API) ownKeys(keyID, userID string) []string {
	out := []string{keyID}
	if userID == "" {
		return out
	}
	keys, _ := a.d.Auth.ListKeys(userID, math.MaxInt, 0)
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}
