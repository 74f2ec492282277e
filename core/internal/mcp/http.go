package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Caller is the authenticated caller of an MCP request, as the API's guard
// found it.
type Caller struct {
	KeyID  string
	Scopes []string // skill (or upstream server) names; empty allows all
}

func (c Caller) allows(name string) bool {
	return len(c.Scopes) == 0 || slices.Contains(c.Scopes, name)
}

// callerOf reads the caller Serve put in the request's token info.
func callerOf(extra *sdk.RequestExtra) Caller {
	if extra == nil || extra.TokenInfo == nil {
		return Caller{}
	}
	return Caller{KeyID: extra.TokenInfo.UserID, Scopes: extra.TokenInfo.Scopes}
}

// ServeHTTP serves /api/v1/mcp for an authenticated caller.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request, c Caller) {
	s.serve(w, r, c, s.handler)
}

// serve checks Origin, applies mcp.max_request_bytes, binds the MCP
// session to the caller's key (the SDK refuses a request on a session
// opened by another key: its token info's UserID is the key id) and turns
// the SDK's plain-text refusals into JSON-RPC errors.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, c Caller, h http.Handler) {
	cfg := s.d.Config()
	ew := &rpcErrorWriter{ResponseWriter: w}
	defer ew.finish()
	if o := r.Header.Get("Origin"); o != "" && !originAllowed(o, cfg.HTTP.CORS.AllowedOrigins) {
		// The MCP spec: an invalid Origin is answered 403 (DNS rebinding).
		writeRPCError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("origin %q is not allowed; add it to http.cors.allowed_origins", o))
		return
	}
	// An MCP stream outlives http.write_timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MCP.MaxRequestBytes)
	}
	// The SDK reads the caller from token info, which only its bearer-token
	// middleware can set; the "token" is the key id the guard found.
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+c.KeyID)
	r.Header.Del("X-API-Key")
	verify := func(_ context.Context, _ string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		return &sdkauth.TokenInfo{UserID: c.KeyID, Scopes: c.Scopes}, nil
	}
	sdkauth.RequireBearerToken(verify, &sdkauth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h).ServeHTTP(ew, r)
}

// originAllowed reports whether origin is one of the allowed origins
// ("*", an exact origin, or "https://*.example.com").
func originAllowed(origin string, allowed []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, a := range allowed {
		switch {
		case a == "*" || strings.EqualFold(a, origin):
			return true
		case strings.Contains(a, "://*."):
			scheme, suffix, _ := strings.Cut(a, "://*")
			if strings.EqualFold(u.Scheme, scheme) && strings.HasSuffix(strings.ToLower(u.Host), strings.ToLower(suffix)) {
				return true
			}
		}
	}
	return false
}

type rpcError struct {
	JSONRPC string         `json:"jsonrpc"`
	ID      any            `json:"id"`
	Error   *jsonrpc.Error `json:"error"`
}

// writeRPCError answers a JSON-RPC error without an id (the request was
// refused before it was read).
func writeRPCError(w http.ResponseWriter, status int, code int64, msg string) {
	b, _ := json.Marshal(rpcError{JSONRPC: "2.0", Error: &jsonrpc.Error{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// rpcErrorWriter catches the SDK's plain-text error answers (a wrong
// Content-Type, a malformed body, an unknown or foreign session, a body
// over the limit) and answers a JSON-RPC error instead, with the same
// status. Everything else passes through, flushes included.
type rpcErrorWriter struct {
	http.ResponseWriter
	status int // set when an error is being caught
	msg    bytes.Buffer
}

func (e *rpcErrorWriter) WriteHeader(code int) {
	if code >= 400 && strings.HasPrefix(e.Header().Get("Content-Type"), "text/plain") {
		e.status = code
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *rpcErrorWriter) Write(b []byte) (int, error) {
	if e.status != 0 {
		return e.msg.Write(b)
	}
	return e.ResponseWriter.Write(b)
}

func (e *rpcErrorWriter) Flush() {
	if e.status == 0 {
		http.NewResponseController(e.ResponseWriter).Flush()
	}
}

func (e *rpcErrorWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

func (e *rpcErrorWriter) finish() {
	if e.status == 0 {
		return
	}
	msg := strings.TrimSpace(e.msg.String())
	code := int64(jsonrpc.CodeInvalidRequest)
	switch {
	case strings.HasPrefix(msg, "malformed payload"):
		code = jsonrpc.CodeParseError
	case strings.HasPrefix(msg, "JSON RPC not handled"):
		code = jsonrpc.CodeMethodNotFound
	}
	e.Header().Del("X-Content-Type-Options")
	writeRPCError(e.ResponseWriter, e.status, code, msg)
}
