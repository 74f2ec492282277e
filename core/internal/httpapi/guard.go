package httpapi

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/ratelimit"
)

const principalKey ctxKey = 1

// PrincipalFrom returns the authenticated caller of a request, or nil on a
// public route.
func PrincipalFrom(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey).(*auth.Principal)
	return p
}

// failureGroup is the one group of the failed-authentication limiter.
const failureGroup = "default"

// proxies holds the trusted proxy prefixes in force.
type proxies struct {
	p atomic.Pointer[[]netip.Prefix]
}

func (t *proxies) set(list []string) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	t.p.Store(&out)
}

func (t *proxies) trusted(a netip.Addr) bool {
	for _, p := range *t.p.Load() {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// clientIP is the peer's address, or, when the peer is a trusted proxy, the
// nearest address in X-Forwarded-For that is not a trusted proxy.
func (t *proxies) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !t.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !t.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

// setRates applies the ratelimit.* and auth.failures_per_minute keys.
func (a *API) setRates(c *config.Config) error {
	if err := a.d.Limits.SetRates(ratesOf(c)); err != nil {
		return err
	}
	n := float64(c.Auth.FailuresPerMinute)
	return a.d.Failures.SetRates(map[string]ratelimit.Rate{failureGroup: {PerSecond: n / 60, Burst: int(c.Auth.FailuresPerMinute)}})
}

// guard authenticates, authorizes and rate-limits one route, as its row in
// the route table says.
func (a *API) guard(rt route, next handlerFunc) handlerFunc {
	if rt.role == RolePublic {
		if rt.group == "" {
			return next // probes: never limited
		}
		return func(w http.ResponseWriter, r *http.Request) error {
			if err := a.limit(w, rt.group, "ip:"+a.proxies.clientIP(r)); err != nil {
				return err
			}
			return next(w, r)
		}
	}
	need := rt.role
	post := a.newChains(postAuthGroups, a.adapt(next))
	return func(w http.ResponseWriter, r *http.Request) error {
		ip := a.proxies.clientIP(r)
		if a.d.Failures.Exhausted(failureGroup, ip) {
			a.d.Metrics.RateLimited(authFailuresGroup)
			w.Header().Set("Retry-After", "60")
			return Errorf(http.StatusTooManyRequests, CodeRateLimited, "too many failed authentication attempts from %s; wait a minute", ip)
		}
		p, err := a.d.Auth.AuthenticateRequest(r)
		if err != nil {
			return a.authFailed(w, r, ip, err)
		}
		if p.Role < need {
			return Errorf(http.StatusForbidden, CodeForbidden, "%s %s needs the %s role; this credential has %s", r.Method, r.URL.Path, need, p.Role)
		}
		if err := a.limit(w, rt.group, p.KeyID); err != nil {
			return err
		}
		// The post_auth chain, built once per config and registry
		// snapshot, around the route's handler.
		post.handler(r).ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
		return nil
	}
}

// authFailed answers a request whose credential was refused (401) or
// absent. Only a refused credential counts toward the per-IP lockout
// (auth.failures_per_minute); a request with none is limited like any
// anonymous request, by the unauthenticated group, so anonymous traffic
// can never lock a valid key out of its address.
func (a *API) authFailed(w http.ResponseWriter, r *http.Request, ip string, err error) error {
	w.Header().Set("WWW-Authenticate", `Bearer realm="portico"`)
	if errors.Is(err, auth.ErrNoCredential) {
		if lerr := a.limit(w, "unauthenticated", "ip:"+ip); lerr != nil {
			return lerr
		}
		return Errorf(http.StatusUnauthorized, CodeUnauthorized, "%v", err)
	}
	d := a.d.Failures.Allow(failureGroup, ip)
	if !d.Allowed {
		a.d.Metrics.RateLimited(authFailuresGroup)
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(d.RetryAfter)))
		return Errorf(http.StatusTooManyRequests, CodeRateLimited, "too many failed authentication attempts from %s; retry in %ds", ip, ceilSeconds(d.RetryAfter))
	}
	reason := err.Error()
	if errors.Is(err, auth.ErrBadToken) {
		// The parser's reason helps an operator and may help an attacker:
		// the client and the audit trail get "invalid token", the log the
		// reason (never the token).
		a.d.Logger.DebugContext(r.Context(), "token refused", "reason", reason, "ip", ip, "request_id", RequestID(r.Context()))
		reason = auth.ErrBadToken.Error()
	}
	a.record(r, audit.Entry{Actor: "ip:" + ip, Action: "auth.failed", Target: r.Method + " " + r.URL.Path, Outcome: audit.Denied,
		Details: map[string]any{"reason": reason}})
	return Errorf(http.StatusUnauthorized, CodeUnauthorized, "%s", reason)
}

// limit takes a token from principal's bucket in group and sets the
// rate-limit headers; it returns 429 rate_limited when the bucket is empty.
func (a *API) limit(w http.ResponseWriter, group, principal string) error {
	d := a.d.Limits.Allow(group, principal)
	// Canonical keys written directly skip re-canonicalizing on every request.
	h := w.Header()
	h["X-Ratelimit-Limit"] = []string{strconv.Itoa(d.Limit)}
	h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(d.Remaining)}
	h["X-Ratelimit-Reset"] = []string{strconv.Itoa(ceilSeconds(d.Reset))}
	if !d.Allowed {
		a.d.Metrics.RateLimited(group)
		secs := max(1, ceilSeconds(d.RetryAfter))
		h.Set("Retry-After", strconv.Itoa(secs))
		return Errorf(http.StatusTooManyRequests, CodeRateLimited, "rate limit of group %s exceeded (%d requests burst); retry in %ds", group, d.Limit, secs)
	}
	return nil
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// record writes an audit entry, logging (not failing) when it cannot.
func (a *API) record(r *http.Request, e audit.Entry) {
	e.RequestID = RequestID(r.Context())
	if err := a.d.Audit.Record(context.WithoutCancel(r.Context()), e); err != nil {
		a.d.Logger.ErrorContext(r.Context(), "audit record failed", "action", e.Action, "error", err)
	}
}

// actor names the caller in the audit trail.
func actor(r *http.Request) string {
	if p := PrincipalFrom(r.Context()); p != nil {
		return p.KeyID
	}
	return "anonymous"
}

// ratesOf turns the ratelimit.* keys into the limiter's groups.
func ratesOf(c *config.Config) map[string]ratelimit.Rate {
	out := map[string]ratelimit.Rate{}
	for name, b := range c.RateLimit.Groups() {
		out[name] = ratelimit.Rate{PerSecond: b.Rate, Burst: int(b.Burst)}
	}
	return out
}
