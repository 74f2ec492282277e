// Package metrics is the gateway's Prometheus instrumentation: one
// registry with the HTTP request series, rate-limit refusals and config
// reloads counted as they happen, plus collectors that read the plugin
// and webhook counters when scraped, and the Go runtime and process
// collectors. Handler serves it in the text exposition format.
//
// The request path stays cheap: each route's series are resolved once and
// kept in copy-on-write maps, so observing a request allocates nothing.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "portico"

// Metrics holds the registry and the series the gateway updates.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	reloads     *prometheus.CounterVec

	mu     sync.Mutex // serializes additions to routes
	routes atomic.Pointer[map[routeKey]*Route]
}

type routeKey struct{ method, pattern string }

// New returns the gateway's metrics with the Go runtime and process
// collectors registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code.",
	}, []string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to answer an HTTP request (until the handler returned; streams count their whole life), by route pattern and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "ratelimit", Name: "refusals_total",
		Help: "Requests refused with 429 rate_limited, by rate-limit group (auth_failures: too many failed authentications from one IP).",
	}, []string{"group"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "config", Name: "reloads_total",
		Help: "Configuration changes, by source (file, api) and result (applied, rejected).",
	}, []string{"source", "result"})
	m.reg.MustRegister(m.requests, m.duration, m.rateLimited, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.routes.Store(&map[routeKey]*Route{})
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return m
}

// Register adds collectors (the plugin and webhook collectors). Series
// that clash are a programming error: it panics, like the route table.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Gatherer returns the registry, for tests and embedding.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler { return m.handler }

// GaugeFunc registers a gauge read from f at scrape time.
func (m *Metrics) GaugeFunc(subsystem, name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}, f))
}

// RateLimited counts one refusal in group.
func (m *Metrics) RateLimited(group string) { m.rateLimited.WithLabelValues(group).Inc() }

// ConfigReload counts one configuration change from source.
func (m *Metrics) ConfigReload(source string, applied bool) {
	result := "applied"
	if !applied {
		result = "rejected"
	}
	m.reloads.WithLabelValues(source, result).Inc()
}

// Route is one route's series, resolved once.
type Route struct {
	m        *Metrics
	method   string
	pattern  string
	duration prometheus.Observer
	mu       sync.Mutex
	byStatus atomic.Pointer[map[int]prometheus.Counter]
}

// Unmatched is the route label of requests no route matched.
const Unmatched = "unmatched"

// Route returns the series of one route pattern and method. pattern ""
// is Unmatched; a method outside the standard ones is "OTHER", so
// clients cannot grow the label set.
func (m *Metrics) Route(method, pattern string) *Route {
	if pattern == "" {
		pattern = Unmatched
	}
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
	default:
		method = "OTHER"
	}
	k := routeKey{method, pattern}
	if r, ok := (*m.routes.Load())[k]; ok {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.routes.Load()
	if r, ok := old[k]; ok {
		return r
	}
	r := &Route{m: m, method: method, pattern: pattern, duration: m.duration.WithLabelValues(pattern, method)}
	r.byStatus.Store(&map[int]prometheus.Counter{})
	next := make(map[routeKey]*Route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = r
	m.routes.Store(&next)
	return r
}

// Observe counts one answered request.
func (r *Route) Observe(status int, d time.Duration) {
	r.duration.Observe(d.Seconds())
	c, ok := (*r.byStatus.Load())[status]
	if !ok {
		c = r.counter(status)
	}
	c.Inc()
}

func (r *Route) counter(status int) prometheus.Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.byStatus.Load()
	if c, ok := old[status]; ok {
		return c
	}
	c := r.m.requests.WithLabelValues(r.pattern, r.method, strconv.Itoa(status))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[status] = c
	r.byStatus.Store(&next)
	return c
}
