// Command guard is a middleware plugin (http-wasm) that refuses requests
// by path pattern, method, header or client address before the route
// runs. Config:
//
//	[plugins.config]
//	paths = "/admin/**, /debug/*"            # path.Match globs; "/x/**" is /x and all below
//	methods = "TRACE, CONNECT"
//	cidrs = "203.0.113.0/24, 2001:db8::/32"  # client addresses to refuse
//	"header.User-Agent" = "(?i)badbot"       # refuse when the header matches (Go regexp)
//	status = "403"                           # default 403
//	body = "..."                             # default: the gateway's JSON error envelope
//	content_type = "application/json"
//
// A request matching any rule is answered with status and body and never
// reaches the route.
package main

import (
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/porticohq/portico/sdk/middleware"
)

type headerRule struct {
	name string
	re   *regexp.Regexp
}

type rules struct {
	paths       []string
	methods     map[string]bool
	cidrs       []netip.Prefix
	headers     []headerRule
	status      int
	body        []byte
	contentType string
}

var (
	cfg     *rules
	loadErr string
)

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func load() {
	if cfg != nil || loadErr != "" {
		return
	}
	m, err := middleware.ConfigMap()
	if err != nil {
		loadErr = err.Error()
		return
	}
	r := &rules{methods: map[string]bool{}, status: 403, contentType: "application/json",
		body: []byte(`{"error":{"code":"forbidden","message":"refused by the guard middleware","details":null}}`)}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch {
		case k == "paths":
			for _, p := range list(v) {
				if _, err := path.Match(strings.TrimSuffix(p, "/**"), "/"); err != nil || !strings.HasPrefix(p, "/") {
					loadErr = "paths: bad pattern " + strconv.Quote(p)
					return
				}
				r.paths = append(r.paths, p)
			}
		case k == "methods":
			for _, x := range list(v) {
				r.methods[strings.ToUpper(x)] = true
			}
		case k == "cidrs":
			for _, c := range list(v) {
				p, err := netip.ParsePrefix(c)
				if err != nil {
					a, aerr := netip.ParseAddr(c)
					if aerr != nil {
						loadErr = "cidrs: " + strconv.Quote(c) + " is not a CIDR or an address"
						return
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				r.cidrs = append(r.cidrs, p.Masked())
			}
		case strings.HasPrefix(k, "header."):
			re, err := regexp.Compile(v)
			if err != nil || len(k) == len("header.") {
				loadErr = k + ": want a header name and a Go regular expression"
				return
			}
			r.headers = append(r.headers, headerRule{name: k[len("header."):], re: re})
		case k == "status":
			n, err := strconv.Atoi(v)
			if err != nil || n < 400 || n > 599 {
				loadErr = "status must be 400 to 599"
				return
			}
			r.status = n
		case k == "body":
			r.body = []byte(v)
		case k == "content_type":
			r.contentType = v
		default:
			loadErr = "unknown config key " + strconv.Quote(k) + " (paths, methods, cidrs, header.NAME, status, body, content_type)"
			return
		}
	}
	cfg = r
}

func matchPath(pattern, p string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok { // "/x/**": /x, and /x/ and below
		return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// refused says which rule a request breaks, or "".
// Each part of the request is read only when a rule needs it: in a
// guest, every read (a host call and a string) costs.
func refused(req middleware.Request) string {
	if len(cfg.methods) > 0 {
		if m := req.Method(); cfg.methods[m] {
			return "method " + m
		}
	}
	if len(cfg.paths) > 0 {
		p := path.Clean(req.Path())
		for _, pat := range cfg.paths {
			if matchPath(pat, p) {
				return "path " + pat
			}
		}
	}
	if len(cfg.cidrs) > 0 {
		if ap, err := netip.ParseAddrPort(req.SourceAddr()); err == nil {
			for _, c := range cfg.cidrs {
				if c.Contains(ap.Addr().Unmap()) {
					return "client " + c.String()
				}
			}
		}
	}
	for _, h := range cfg.headers {
		for _, v := range req.Values(h.name) {
			if h.re.MatchString(v) {
				return "header " + h.name
			}
		}
	}
	return ""
}

func onRequest(req middleware.Request, resp middleware.Response) bool {
	load()
	if loadErr != "" {
		// Fail closed: a guard that cannot read its rules lets nothing by.
		middleware.Log(middleware.LevelError, "guard: "+loadErr)
		resp.SetStatusCode(500)
		resp.SetHeader("Content-Type", "application/json")
		resp.SetBody([]byte(`{"error":{"code":"plugin_error","message":"guard middleware is misconfigured","details":null}}`))
		return false
	}
	why := refused(req)
	if why == "" {
		return true
	}
	middleware.Log(middleware.LevelInfo, "guard refused "+req.Method()+" "+req.Path()+": "+why)
	resp.SetStatusCode(cfg.status)
	resp.SetHeader("Content-Type", cfg.contentType)
	resp.SetBody(cfg.body)
	return false
}

func init() { middleware.Handle(middleware.Handler{OnRequest: onRequest}) }

func main() {}
