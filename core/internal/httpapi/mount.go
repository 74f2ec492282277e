package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core/internal/auth"
)

// Mount is a route tree an embedding program adds: Handler serves every
// path under Prefix behind the core middleware chain and, unless Role is
// RolePublic, behind authentication (a credential of at least Role), the
// default rate-limit group and the post-auth middleware chain. Public
// mounts are limited per client IP in the unauthenticated group. Handler
// is mounted with chi's Mount, so a chi.Router sees paths relative to
// Prefix; any other handler sees the full path.
type Mount struct {
	Prefix  string
	Role    auth.Role
	Handler http.Handler
}

// ErrMount marks a Mount that CheckMounts refuses.
var ErrMount = errors.New("invalid route mount")

var mountPrefix = regexp.MustCompile(`^(/[a-zA-Z0-9][a-zA-Z0-9._~-]*)+$`)

// CheckMounts checks mounts against each other and the built-in routes:
// each needs a prefix such as "/acme" or "/acme/v1" whose first segment no
// built-in route uses and no other mount shares, a role and a handler.
func CheckMounts(mounts []Mount) error {
	reserved := map[string]bool{}
	for _, rt := range (&API{}).routes() {
		reserved[firstSegment(rt.pattern)] = true
	}
	taken := map[string]bool{}
	var errs []error
	for i, m := range mounts {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: route %d (%q): %s", ErrMount, i, m.Prefix, fmt.Sprintf(format, args...)))
		}
		seg := firstSegment(m.Prefix)
		switch {
		case !mountPrefix.MatchString(m.Prefix):
			bad("the prefix must look like /acme or /acme/v1 (no trailing slash, no patterns)")
		case reserved[seg]:
			bad("/%s is Portico's own; pick another first segment", seg)
		case taken[seg]:
			bad("another route already uses /%s", seg)
		}
		taken[seg] = true
		if m.Role < auth.RolePublic || m.Role > auth.RoleAdmin {
			bad("no role; use public, user, operator or admin")
		}
		if m.Handler == nil {
			bad("the handler is nil")
		}
	}
	return errors.Join(errs...)
}

func firstSegment(pattern string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
	return seg
}

// mount adds the Deps' mounts to the router; New has had them checked.
func (a *API) mount(r chi.Router) {
	for _, m := range a.d.Mounts {
		group := "default"
		if m.Role == auth.RolePublic {
			group = "unauthenticated"
		}
		h := m.Handler
		r.Mount(m.Prefix, a.adapt(a.guard(route{role: m.Role, group: group}, func(w http.ResponseWriter, r *http.Request) error {
			h.ServeHTTP(w, r)
			return nil
		})))
	}
}
