package httpapi

import (
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/porticohq/portico/core/internal/tracing"
)

// With tracing on, every request is a span named after its route pattern.
func TestRequestSpans(t *testing.T) {
	a := newAPI(t, generous)
	exp := tracetest.NewInMemoryExporter()
	a.d.Tracer = tracing.NewWithExporter(sdktrace.NewSimpleSpanProcessor(exp), 1, "test", "v0")
	a.handler = a.router()
	tests := []struct{ path, want string }{
		{"/api/v1/status/health", "GET /api/v1/status/health"},
		{"/api/v1/plugins/echo", "GET /api/v1/plugins/{name}"},
		{"/nowhere", "GET"},
	}
	for _, tt := range tests {
		exp.Reset()
		r := httptest.NewRequest("GET", tt.path, nil)
		r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		a.ServeHTTP(httptest.NewRecorder(), r)
		spans := exp.GetSpans()
		if len(spans) != 1 || spans[0].Name != tt.want || spans[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("%s: spans %+v", tt.path, spans)
		}
	}
}
