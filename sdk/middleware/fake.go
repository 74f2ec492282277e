//go:build !wasip1

package middleware

import (
	"net/http"
	"sort"
	"strings"
)

// Exchange is an in-memory request and response for running a middleware
// outside WebAssembly: its unit tests and Examples. Serve runs the
// registered Handler on it the way a host does.
type Exchange struct {
	Method     string
	URI        string
	Protocol   string
	SourceAddr string
	Header     http.Header
	Body       []byte

	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte

	// Config is what Config returns; Features the features in force.
	Config   []byte
	Features Features
	Logs     []string

	written [2]bool // a phase's first write_body replaces the body
}

// current is the exchange the calls go to while Serve runs.
type fakeBackend struct{ e *Exchange }

var be backend = &fakeBackend{e: &Exchange{}}

// Serve runs the registered middleware on e: OnRequest, then next (when
// OnRequest returns true; next plays the route and may set the response
// fields), then OnResponse. It reports whether next ran. Unset fields get
// a host's defaults (GET, "/", HTTP/1.1, status 200).
func Serve(e *Exchange, next func(e *Exchange)) bool {
	if e.Method == "" {
		e.Method = http.MethodGet
	}
	if e.URI == "" {
		e.URI = "/"
	}
	if e.Protocol == "" {
		e.Protocol = "HTTP/1.1"
	}
	if e.SourceAddr == "" {
		e.SourceAddr = "192.0.2.1:1234"
	}
	if e.Header == nil {
		e.Header = http.Header{}
	}
	if e.ResponseHeader == nil {
		e.ResponseHeader = http.Header{}
	}
	if e.Status == 0 {
		e.Status = http.StatusOK
	}
	f := be.(*fakeBackend)
	prev := f.e
	f.e = e
	defer func() { f.e = prev }()
	if handler != nil && handler.Features != 0 {
		e.Features |= handler.Features
	}
	e.written = [2]bool{}
	if handleRequest()&1 == 0 {
		return false
	}
	if next != nil {
		next(e)
	}
	e.written = [2]bool{}
	handleResponse(0, 0)
	return true
}

func (f *fakeBackend) headers(kind uint32) http.Header {
	if kind == kindRequest {
		return f.e.Header
	}
	return f.e.ResponseHeader
}

func (f *fakeBackend) enableFeatures(x uint32) uint32 {
	f.e.Features |= Features(x)
	return uint32(f.e.Features)
}

func (f *fakeBackend) config() []byte { return f.e.Config }

func (f *fakeBackend) log(level int32, msg string) { f.e.Logs = append(f.e.Logs, msg) }
func (f *fakeBackend) method() string              { return f.e.Method }
func (f *fakeBackend) setMethod(m string)          { f.e.Method = m }
func (f *fakeBackend) uri() string                 { return f.e.URI }
func (f *fakeBackend) setURI(u string)             { f.e.URI = u }
func (f *fakeBackend) protocol() string            { return f.e.Protocol }
func (f *fakeBackend) sourceAddr() string          { return f.e.SourceAddr }

func (f *fakeBackend) headerNames(kind uint32) []string {
	h := f.headers(kind)
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, strings.ToLower(k))
	}
	sort.Strings(out)
	return out
}

func (f *fakeBackend) headerValues(kind uint32, name string) []string {
	return append([]string(nil), f.headers(kind).Values(name)...)
}

func (f *fakeBackend) setHeader(kind uint32, name, value string) { f.headers(kind).Set(name, value) }
func (f *fakeBackend) addHeader(kind uint32, name, value string) { f.headers(kind).Add(name, value) }
func (f *fakeBackend) removeHeader(kind uint32, name string)     { f.headers(kind).Del(name) }

func (f *fakeBackend) readBody(kind uint32) []byte {
	if kind == kindRequest {
		return append([]byte(nil), f.e.Body...)
	}
	return append([]byte(nil), f.e.ResponseBody...)
}

func (f *fakeBackend) writeBody(kind uint32, b []byte) {
	body := &f.e.Body
	if kind == kindResponse {
		body = &f.e.ResponseBody
	}
	if !f.e.written[kind] {
		*body = nil
		f.e.written[kind] = true
	}
	*body = append(*body, b...)
}

func (f *fakeBackend) status() uint32        { return uint32(f.e.Status) }
func (f *fakeBackend) setStatus(code uint32) { f.e.Status = int(code) }
