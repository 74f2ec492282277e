package httpapi

import (
	"net/http"

	"github.com/porticohq/portico/core/internal/ui"
)

// console serves the web console's files (GET /ui/*). They are public: the
// page signs in with a key the browser keeps and sends on each API call.
func (a *API) console(w http.ResponseWriter, r *http.Request) error {
	if !ui.Serve(w, r) {
		return Errorf(http.StatusNotFound, CodeNotFound, "the console has no file %s", r.URL.Path)
	}
	return nil
}

// consoleRoot sends GET /ui to /ui/, so the page's relative links resolve.
func (a *API) consoleRoot(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, ui.Prefix, http.StatusMovedPermanently)
	return nil
}
