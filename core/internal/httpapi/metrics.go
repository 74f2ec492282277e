package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// metricsPath is the Prometheus scrape route.
const metricsPath = "/metrics"

// authFailuresGroup labels refusals by the failed-authentication limiter
// in the rate-limit metrics.
const authFailuresGroup = "auth_failures"

// serveMetrics serves GET /metrics in the Prometheus text format.
func (a *API) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	a.d.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

// scrapeToken lets a request bearing metrics.token through to /metrics
// without an API key (rate-limited as the principal "metrics-token");
// any other request goes through the route's guard.
func (a *API) scrapeToken(guarded handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token := a.d.Config.Config().Metrics.Token
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" || !ok || subtle.ConstantTimeCompare([]byte(bearer), []byte(token)) != 1 {
			return guarded(w, r)
		}
		if err := a.limit(w, "default", "metrics-token"); err != nil {
			return err
		}
		return a.serveMetrics(w, r)
	}
}

// getCert serves GET /cert: the served certificate's fingerprint and PEM,
// so clients can pin it.
func (a *API) getCert(w http.ResponseWriter, r *http.Request) error {
	if a.d.TLS == nil {
		return Errorf(http.StatusNotFound, CodeNotFound, "TLS is off (tls.enabled); there is no certificate to pin")
	}
	writeJSON(w, http.StatusOK, a.d.TLS.Info())
	return nil
}
