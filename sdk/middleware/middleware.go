// Package middleware writes HTTP middleware plugins in Go against the
// public http-wasm handler ABI (http-wasm.io: host module "http_handler",
// guest exports handle_request and handle_response), the ABI Portico,
// Traefik and Dapr run. A middleware sees each request before the route
// handles it and, if it asks, the response after:
//
//	func init() {
//		middleware.Handle(middleware.Handler{
//			OnRequest: func(req middleware.Request, resp middleware.Response) bool {
//				if req.Header("X-Debug") != "" {
//					resp.SetStatusCode(403) // end the request here
//					return false
//				}
//				req.SetHeader("X-Seen-By", "me")
//				return true // go on to the route
//			},
//		})
//	}
//
// It is its own package so that skill and hook plugins, which import only
// the sdk package, do not carry the http_handler imports. Outside
// WebAssembly (unit tests, Examples) calls go to an in-memory Exchange;
// see Serve.
package middleware

import (
	"errors"
	"strconv"
	"strings"

	"github.com/porticohq/portico/sdk/internal/jsonstr"
)

// Features a middleware asks the host for. Without BufferRequest the
// request body can be read only before the route runs (and is then gone
// for it unless written back); without BufferResponse the response is
// already sent when OnResponse runs, so its body and status cannot change.
// On streaming routes (WebSocket, server-sent events) the host declines
// both.
type Features uint32

// The http-wasm features.
const (
	BufferRequest Features = 1 << iota
	BufferResponse
	Trailers
)

// Log levels of the http-wasm ABI.
const (
	LevelDebug int32 = -1
	LevelInfo  int32 = 0
	LevelWarn  int32 = 1
	LevelError int32 = 2
)

// Handler is a middleware: OnRequest runs before the route and returns
// whether to go on to it (false: the middleware answered, with the status,
// headers and body it set on resp); OnResponse, if set, runs after the
// route when OnRequest returned true. failed reports that the host could
// not produce the response.
type Handler struct {
	Features   Features
	OnRequest  func(req Request, resp Response) (next bool)
	OnResponse func(req Request, resp Response, failed bool)
}

var handler *Handler

// Handle registers the middleware and asks for its features. Call it from
// an init function. OnRequest is required.
func Handle(h Handler) {
	if h.OnRequest == nil {
		panic("middleware: Handle needs OnRequest")
	}
	handler = &h
	if h.Features != 0 {
		be.enableFeatures(uint32(h.Features))
	}
}

// EnableFeatures asks for more features during a request and returns the
// features in force.
func EnableFeatures(f Features) Features { return Features(be.enableFeatures(uint32(f))) }

// Config returns the middleware's configuration as the host gives it:
// Portico passes the [plugins.config] table of the plugin as a JSON object
// of strings.
func Config() []byte { return be.config() }

// ConfigMap reads Config as Portico gives it, a JSON object of strings
// (the plugin's [plugins.config] table). An empty config is an empty map.
// It decodes without encoding/json, which would link reflect and fmt into
// the module (~1.3 MB of a 3 MB middleware).
func ConfigMap() (map[string]string, error) { return configMap(Config()) }

func configMap(b []byte) (map[string]string, error) {
	m := map[string]string{}
	i := ws(b, 0)
	if i == len(b) {
		return m, nil
	}
	fail := func(at int, what string) (map[string]string, error) {
		return nil, errors.New("middleware config: want a JSON object of strings: at offset " + strconv.Itoa(at) + ": expected " + what)
	}
	if b[i] != '{' {
		return fail(i, "'{'")
	}
	str := func() (string, error) {
		if i >= len(b) || b[i] != '"' {
			_, err := fail(i, "a string")
			return "", err
		}
		end, at, what := jsonstr.Check(b, i)
		if what != "" {
			_, err := fail(at, what)
			return "", err
		}
		s := string(jsonstr.Unescape(nil, b[i+1:end-1]))
		i = ws(b, end)
		return s, nil
	}
	if i = ws(b, i+1); i < len(b) && b[i] == '}' {
		return m, trailing(b, i+1)
	}
	for {
		k, err := str()
		if err != nil {
			return nil, err
		}
		if i >= len(b) || b[i] != ':' {
			return fail(i, "':'")
		}
		i = ws(b, i+1)
		v, err := str()
		if err != nil {
			return nil, err
		}
		m[k] = v
		switch {
		case i < len(b) && b[i] == ',':
			i = ws(b, i+1)
		case i < len(b) && b[i] == '}':
			return m, trailing(b, i+1)
		default:
			return fail(i, "',' or '}'")
		}
	}
}

// trailing fails unless only whitespace follows the object.
func trailing(b []byte, i int) error {
	if i = ws(b, i); i != len(b) {
		return errors.New("middleware config: want a JSON object of strings: at offset " + strconv.Itoa(i) + ": text after the object")
	}
	return nil
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Log writes a line to the host's log.
func Log(level int32, msg string) { be.log(level, msg) }

// header kinds and body kinds of the ABI
const (
	kindRequest  uint32 = 0
	kindResponse uint32 = 1
)

// Request is the request being handled. Header names are case-insensitive.
type Request struct{}

// Method returns the request method, e.g. "GET".
func (Request) Method() string { return be.method() }

// SetMethod changes the method the route sees.
func (Request) SetMethod(m string) { be.setMethod(m) }

// URI returns the request's path and query, e.g. "/v1/hello?name=x".
func (Request) URI() string { return be.uri() }

// Path returns the URI without its query.
func (r Request) Path() string {
	p, _, _ := strings.Cut(r.URI(), "?")
	return p
}

// SetURI changes the path and query the route sees.
func (Request) SetURI(u string) { be.setURI(u) }

// Protocol returns the HTTP version, e.g. "HTTP/1.1".
func (Request) Protocol() string { return be.protocol() }

// SourceAddr returns the client's address, "IP:port".
func (Request) SourceAddr() string { return be.sourceAddr() }

// Header returns the first value of a request header, or "".
func (Request) Header(name string) string { return first(be.headerValues(kindRequest, name)) }

// Values returns every value of a request header.
func (Request) Values(name string) []string { return be.headerValues(kindRequest, name) }

// HeaderNames returns the request's header names, lower-cased.
func (Request) HeaderNames() []string { return be.headerNames(kindRequest) }

// SetHeader replaces a request header's values with one.
func (Request) SetHeader(name, value string) { be.setHeader(kindRequest, name, value) }

// AddHeader adds a value to a request header.
func (Request) AddHeader(name, value string) { be.addHeader(kindRequest, name, value) }

// RemoveHeader removes a request header.
func (Request) RemoveHeader(name string) { be.removeHeader(kindRequest, name) }

// Body reads the whole request body (the host keeps it for the route only
// with BufferRequest).
func (Request) Body() []byte { return be.readBody(kindRequest) }

// SetBody replaces the request body the route reads.
func (Request) SetBody(b []byte) { be.writeBody(kindRequest, b) }

// Response is the response: to set before ending a request in OnRequest,
// or to inspect and change in OnResponse (with BufferResponse).
type Response struct{}

// StatusCode returns the response status.
func (Response) StatusCode() int { return int(be.status()) }

// SetStatusCode sets the response status.
func (Response) SetStatusCode(code int) { be.setStatus(uint32(code)) }

// Header returns the first value of a response header, or "".
func (Response) Header(name string) string { return first(be.headerValues(kindResponse, name)) }

// Values returns every value of a response header.
func (Response) Values(name string) []string { return be.headerValues(kindResponse, name) }

// HeaderNames returns the response's header names, lower-cased.
func (Response) HeaderNames() []string { return be.headerNames(kindResponse) }

// SetHeader replaces a response header's values with one.
func (Response) SetHeader(name, value string) { be.setHeader(kindResponse, name, value) }

// AddHeader adds a value to a response header.
func (Response) AddHeader(name, value string) { be.addHeader(kindResponse, name, value) }

// RemoveHeader removes a response header.
func (Response) RemoveHeader(name string) { be.removeHeader(kindResponse, name) }

// Body reads the response body (in OnResponse, with BufferResponse).
func (Response) Body() []byte { return be.readBody(kindResponse) }

// SetBody replaces the response body.
func (Response) SetBody(b []byte) { be.writeBody(kindResponse, b) }

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// backend is the http_handler host module: the real imports inside
// WebAssembly, an Exchange elsewhere.
type backend interface {
	enableFeatures(f uint32) uint32
	config() []byte
	log(level int32, msg string)
	method() string
	setMethod(string)
	uri() string
	setURI(string)
	protocol() string
	sourceAddr() string
	headerNames(kind uint32) []string
	headerValues(kind uint32, name string) []string
	setHeader(kind uint32, name, value string)
	addHeader(kind uint32, name, value string)
	removeHeader(kind uint32, name string)
	readBody(kind uint32) []byte
	writeBody(kind uint32, b []byte)
	status() uint32
	setStatus(uint32)
}

// handleRequest runs OnRequest; the ABI's result is ctx<<32 | next.
func handleRequest() uint64 {
	if handler == nil {
		return 1 // nothing registered: pass through
	}
	if handler.OnRequest(Request{}, Response{}) {
		return 1
	}
	return 0
}

func handleResponse(reqCtx uint32, isError uint32) {
	if handler != nil && handler.OnResponse != nil {
		handler.OnResponse(Request{}, Response{}, isError != 0)
	}
}

// splitNUL splits the ABI's NUL-terminated list.
func splitNUL(b []byte, count int) []string {
	out := make([]string, 0, count)
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		out = append(out, string(b[:i]))
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}
