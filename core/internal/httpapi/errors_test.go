package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/porticohq/portico/core/internal/session"
	"github.com/porticohq/portico/core/internal/store"
)

// TestStoreErrorsAnswer: the store's and the session service's refusals
// reach clients as their own status and code, wrapped or not.
func TestStoreErrorsAnswer(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{"store unavailable", fmt.Errorf("storing message: %w", fmt.Errorf("%w: dial tcp: connection refused", store.ErrUnavailable)), 503, CodeStoreUnavailable, true},
		{"session busy", sessionError(fmt.Errorf("%w: another node held it", session.ErrBusy)), 409, CodeSessionBusy, false},
		{"anything else", errors.New("boom"), 500, CodeInternal, false},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, httptest.NewRequest(http.MethodPost, "/api/v1/sessions/x/messages", nil), log, tt.err)
			if w.Code != tt.status || code(t, w.Body.Bytes()) != tt.code || (w.Header().Get("Retry-After") != "") != tt.retryAfter {
				t.Fatalf("%d %s (Retry-After %q), want %d %s", w.Code, w.Body, w.Header().Get("Retry-After"), tt.status, tt.code)
			}
		})
	}
}
