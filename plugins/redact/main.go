// Command redact is a middleware plugin (http-wasm) that masks e-mail
// addresses, phone numbers and configured patterns in request and
// response bodies. Config:
//
//	[plugins.config]
//	mask = "[redacted]"                  # the replacement (default)
//	emails = "true"                      # default true
//	phones = "true"                      # default true: +4712345678, (555) 123-4567, 020 7946 0958
//	"pattern.card" = '\b\d{4}( ?\d{4}){3}\b'   # more Go regular expressions
//	request = "true"                     # redact request bodies (default true)
//	response = "true"                    # redact response bodies (default true)
//
// Only text bodies are touched (text/*, JSON, form data, or no content
// type). Bodies are buffered to be rewritten, so streaming routes (never
// buffered) pass unchanged; phone numbers are matched by shape (digits
// with separators, or + and 8 to 15 digits), so some other numbers in that
// shape are masked too.
package main

import (
	"bytes"
	"regexp"
	"sort"
	"strings"

	"github.com/porticohq/portico/sdk/middleware"
)

var (
	email = `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`
	phone = `\+\d{8,15}\b|(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\b\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b`
)

// rule is one pattern with a cheap test a body must pass before the
// regular expression runs (in WebAssembly, Go's regexp costs tens of
// microseconds even on a short body that cannot match).
type rule struct {
	re   *regexp.Regexp
	need func([]byte) bool // nil: always run
}

type settings struct {
	rules             []rule // configured patterns first, then e-mails, then phones
	mask              []byte
	request, response bool
}

func hasAt(b []byte) bool { return bytes.IndexByte(b, '@') >= 0 }

// hasDigits reports whether b holds at least 8 digits, the fewest a phone
// number pattern matches.
func hasDigits(b []byte) bool {
	n := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			if n++; n == 8 {
				return true
			}
		}
	}
	return false
}

var (
	cfg     *settings
	loadErr string
)

func load() {
	if cfg != nil || loadErr != "" {
		return
	}
	m, err := middleware.ConfigMap()
	if err != nil {
		loadErr = err.Error()
		return
	}
	s := &settings{mask: []byte("[redacted]"), request: true, response: true}
	// Configured patterns come first: they are the specific ones (a card
	// number must not be half-masked as a phone number).
	var pats, builtin []rule
	flag := func(k string, def bool) bool {
		v, ok := m[k]
		if !ok {
			return def
		}
		if v != "true" && v != "false" {
			loadErr = k + " must be true or false"
		}
		return v == "true"
	}
	if flag("emails", true) {
		builtin = append(builtin, rule{regexp.MustCompile(email), hasAt})
	}
	if flag("phones", true) {
		builtin = append(builtin, rule{regexp.MustCompile(phone), hasDigits})
	}
	s.request, s.response = flag("request", true), flag("response", true)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == "mask":
			s.mask = []byte(m[k])
		case strings.HasPrefix(k, "pattern."):
			re, err := regexp.Compile(m[k])
			if err != nil {
				loadErr = k + ": " + err.Error()
				return
			}
			pats = append(pats, rule{re: re})
		case k == "emails" || k == "phones" || k == "request" || k == "response":
		default:
			loadErr = "unknown config key " + k + " (mask, emails, phones, request, response, pattern.NAME)"
			return
		}
	}
	if loadErr != "" {
		return
	}
	s.rules = append(pats, builtin...)
	cfg = s
}

// textual reports whether a body of this content type is text. It
// allocates nothing: in a guest, splitting and lower-casing the header
// cost more than the rest of a request's work.
func textual(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	return ct == "" || hasPrefixFold(ct, "text/") || hasSuffixFold(ct, "json") || strings.EqualFold(ct, "application/x-www-form-urlencoded") ||
		hasSuffixFold(ct, "+xml") || strings.EqualFold(ct, "application/xml")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func redact(b []byte) ([]byte, bool) {
	changed := false
	for _, r := range cfg.rules {
		if len(b) == 0 || (r.need != nil && !r.need(b)) || !r.re.Match(b) {
			continue
		}
		b, changed = r.re.ReplaceAllLiteral(b, cfg.mask), true
	}
	return b, changed
}

func onRequest(req middleware.Request, resp middleware.Response) bool {
	load()
	if loadErr != "" {
		middleware.Log(middleware.LevelError, "redact: "+loadErr)
		resp.SetStatusCode(500)
		resp.SetHeader("Content-Type", "application/json")
		resp.SetBody([]byte(`{"error":{"code":"plugin_error","message":"redact middleware is misconfigured","details":null}}`))
		return false
	}
	var want middleware.Features
	if cfg.request {
		want |= middleware.BufferRequest
	}
	if cfg.response {
		want |= middleware.BufferResponse
	}
	features = middleware.EnableFeatures(want)
	if cfg.request && features&middleware.BufferRequest != 0 {
		// The body first: most requests have none, or nothing a rule could
		// match, and then the content type is never read (in a guest each
		// host call and each string costs).
		if b := req.Body(); mayMatch(b) && textual(req.Header("Content-Type")) {
			if out, changed := redact(b); changed {
				req.SetBody(out)
			}
		}
	}
	return true
}

func onResponse(req middleware.Request, resp middleware.Response, failed bool) {
	if failed || cfg == nil || !cfg.response || features&middleware.BufferResponse == 0 {
		return
	}
	if b := resp.Body(); mayMatch(b) && textual(resp.Header("Content-Type")) {
		if out, changed := redact(b); changed {
			resp.SetBody(out)
		}
	}
}

// features are what the host granted this request in onRequest (an
// instance serves one request at a time, both of its phases).
var features middleware.Features

// mayMatch reports whether a rule could match b: a configured pattern
// always could; an e-mail needs an '@', a phone number 8 digits.
func mayMatch(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, r := range cfg.rules {
		if r.need == nil || r.need(b) {
			return true
		}
	}
	return false
}

func init() { middleware.Handle(middleware.Handler{OnRequest: onRequest, OnResponse: onResponse}) }

func main() {}
