package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/porticohq/portico/core/internal/store"
)

// Error is an API error: an HTTP status, a stable machine-readable code and a
// message for people. Handlers return it (or any error) and one place, write,
// turns it into the envelope {"error":{"code","message","details"}}.
type Error struct {
	Status  int
	Code    string
	Message string
	Details any
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf builds an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Codes used across the API, with the status each goes with.
const (
	CodeBadRequest    = "bad_request"        // 400
	CodeUnauthorized  = "unauthorized"       // 401
	CodeForbidden     = "forbidden"          // 403
	CodeNotFound      = "not_found"          // 404
	CodeMethod        = "method_not_allowed" // 405
	CodeConflict      = "conflict"           // 409
	CodeTooLarge      = "too_large"          // 413
	CodeRateLimited   = "rate_limited"       // 429
	CodeQuotaExceeded = "quota_exceeded"     // 429: the key spent its LLM token quota
	CodeInternal      = "internal_error"     // 500
	CodeNotReady      = "not_ready"          // 503
	CodeOverloaded    = "overloaded"         // 503
	// CodeStoreUnavailable: the store (PostgreSQL) cannot be reached;
	// the transaction that failed wrote nothing.
	CodeStoreUnavailable = "store_unavailable" // 503
)

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details"`
}

// WriteError writes err as the JSON error envelope. An error that is not an
// *Error (or a body-size error) is logged and answered 500 without leaking
// its text.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ae *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &mbe):
		ae = Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than the limit of %d bytes (http.max_body_bytes, or plugin.max_upload_bytes and packs.max_upload_bytes for uploads)", mbe.Limit)
	case errors.Is(err, store.ErrUnavailable):
		log.WarnContext(r.Context(), "store unavailable", "error", err, "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
		w.Header().Set("Retry-After", "1")
		ae = &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Message: "the store cannot be reached now; what failed was not written; retry shortly (request id " + RequestID(r.Context()) + ")"}
	default:
		log.ErrorContext(r.Context(), "request failed", "error", err, "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
		ae = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; the server log has the details (request id " + RequestID(r.Context()) + ")"}
	}
	writeJSON(w, ae.Status, envelope{Error: envelopeBody{Code: ae.Code, Message: ae.Message, Details: ae.Details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal_error","message":"response could not be encoded","details":null}}`)
	}
	writeRaw(w, status, append(b, '\n'))
}

// writeRaw writes an already encoded JSON answer.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}
