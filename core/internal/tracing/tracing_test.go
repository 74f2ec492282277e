package tracing

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/porticohq/portico/core/internal/config"
)

func newTest(ratio float64) (*Tracer, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	return NewWithExporter(sdktrace.NewSimpleSpanProcessor(exp), ratio, "portico-test", "v0"), exp
}

func TestRequestSpanJoinsTheCallersTrace(t *testing.T) {
	tr, exp := newTest(1)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name, traceparent, route string
		status                   int
		wantName                 string
		wantErr                  bool
	}{
		{"joined", parent, "/api/v1/skills/{name}/invoke", 200, "POST /api/v1/skills/{name}/invoke", false},
		{"new trace, no route", "", "", 404, "POST", false},
		{"server error", "", "/api/v1/status", 503, "POST /api/v1/status", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp.Reset()
			r := httptest.NewRequest("POST", "/api/v1/skills/echo/invoke", nil)
			if tt.traceparent != "" {
				r.Header.Set("Traceparent", tt.traceparent)
			}
			r, end := tr.Request(r)
			_, endChild := tr.Plugin(r.Context(), "skill", "echo", "echo")
			endChild(errors.New("boom"))
			end(tt.route, tt.status)
			spans := exp.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("%d spans", len(spans))
			}
			child, req := spans[0], spans[1]
			if req.Name != tt.wantName || (req.Status.Code == codes.Error) != tt.wantErr {
				t.Errorf("request span %q status %v", req.Name, req.Status)
			}
			if tt.traceparent != "" && req.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("not joined to the caller's trace: %s", req.SpanContext.TraceID())
			}
			if child.Name != "skill echo" || child.Parent.SpanID() != req.SpanContext.SpanID() || child.Status.Code != codes.Error {
				t.Errorf("child %q parent %s status %v", child.Name, child.Parent.SpanID(), child.Status)
			}
		})
	}
}

func TestSampleRatioZeroRecordsNothing(t *testing.T) {
	tr, exp := newTest(0)
	r, end := tr.Request(httptest.NewRequest("GET", "/", nil))
	_ = r
	end("/", 200)
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans sampled at ratio 0", n)
	}
}

func TestOff(t *testing.T) {
	tr, err := New(config.Tracing{Enabled: false}, "v0")
	if tr != nil || err != nil {
		t.Fatalf("New with tracing off: %v, %v", tr, err)
	}
	ctx := context.Background()
	got, end := tr.Plugin(ctx, "skill", "echo", "echo")
	end(nil)
	if got != ctx || tr.Shutdown(ctx) != nil {
		t.Error("a nil tracer is not a no-op")
	}
	// On, the exporter is built without touching the network.
	on, err := New(config.Tracing{Enabled: true, Endpoint: "http://127.0.0.1:1/v1/traces", SampleRatio: 1, ServiceName: "p", Headers: []string{"X-Key: k"}}, "v0")
	if err != nil || on == nil {
		t.Fatalf("New: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	cancel() // nothing buffered; do not wait on the unreachable collector
	on.Shutdown(sctx)
}
