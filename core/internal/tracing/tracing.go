// Package tracing is the gateway's optional OpenTelemetry tracing: a
// tracer provider exporting over OTLP/HTTP, a span per HTTP request (joined
// to the caller's trace by a traceparent header) and spans around plugin
// calls. A nil *Tracer is tracing off: every method is a cheap no-op.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/porticohq/portico/core/internal/config"
)

// Tracer makes the gateway's spans.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

// New returns the tracer the config asks for: nil when tracing is off,
// else one exporting over OTLP/HTTP in batches. Nothing is sent until a
// span ends; an unreachable collector never fails a request.
func New(c config.Tracing, version string) (*Tracer, error) {
	if !c.Enabled {
		return nil, nil
	}
	headers := map[string]string{}
	for _, h := range c.Headers {
		name, value, _ := strings.Cut(h, ":")
		headers[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(c.Endpoint), otlptracehttp.WithHeaders(headers))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return NewWithExporter(sdktrace.NewBatchSpanProcessor(exp), c.SampleRatio, c.ServiceName, version), nil
}

// NewWithExporter returns a tracer whose spans go to sp (tests pass a
// synchronous processor over an in-memory exporter).
func NewWithExporter(sp sdktrace.SpanProcessor, ratio float64, service, version string) *Tracer {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(sp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service), semconv.ServiceVersion(version))),
	)
	return &Tracer{tp: tp, t: tp.Tracer("github.com/porticohq/portico"), prop: propagation.TraceContext{}}
}

// Shutdown sends the spans still buffered, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Start starts a span below ctx's and returns a function that ends it,
// recording err when not nil.
func (t *Tracer) Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if t == nil {
		return ctx, func(error) {}
	}
	ctx, span := t.t.Start(ctx, name, trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// Plugin starts a span of a call into a plugin: "skill echo",
// "hook audit", "middleware headers".
func (t *Tracer) Plugin(ctx context.Context, kind, name, plugin string) (context.Context, func(err error)) {
	if t == nil {
		return ctx, func(error) {}
	}
	return t.Start(ctx, kind+" "+name, attribute.String("portico.plugin", plugin), attribute.String("portico.plugin.kind", kind))
}

// Request starts the span of an HTTP request, joined to the trace of the
// caller's traceparent header; end names it after the route pattern and
// records the status.
func (t *Tracer) Request(r *http.Request) (*http.Request, func(route string, status int)) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.t.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
	return r.WithContext(ctx), func(route string, status int) {
		if route != "" {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}
