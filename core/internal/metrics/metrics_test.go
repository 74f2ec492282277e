package metrics

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/webhook"
	"github.com/porticohq/portico/hostapi"
)

// scrape serves the metrics and parses them as Prometheus would.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatalf("not Prometheus text: %v\n%s", err, w.Body)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestRouteSeries(t *testing.T) {
	m := New()
	tests := []struct {
		method, pattern, wantMethod, wantRoute string
		status                                 int
	}{
		{"GET", "/api/v1/status", "GET", "/api/v1/status", 200},
		{"GET", "/api/v1/status", "GET", "/api/v1/status", 200},
		{"POST", "/api/v1/skills/{name}/invoke", "POST", "/api/v1/skills/{name}/invoke", 409},
		{"GET", "", "GET", Unmatched, 404},
		{"BREW", "", "OTHER", Unmatched, 404},
	}
	for _, tt := range tests {
		m.Route(tt.method, tt.pattern).Observe(tt.status, time.Millisecond)
	}
	fams := scrape(t, m)
	checks := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"route": "/api/v1/status", "method": "GET", "status": "200"}, 2},
		{map[string]string{"route": "/api/v1/skills/{name}/invoke", "status": "409"}, 1},
		{map[string]string{"route": Unmatched, "method": "OTHER", "status": "404"}, 1},
	}
	for _, c := range checks {
		if v, ok := value(fams, "portico_http_requests_total", c.labels); !ok || v != c.want {
			t.Errorf("requests %v = %v (found %v), want %v", c.labels, v, ok, c.want)
		}
	}
	if v, _ := value(fams, "portico_http_request_duration_seconds", map[string]string{"route": "/api/v1/status"}); v != 2 {
		t.Errorf("latency histogram count %v, want 2", v)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// Observing a request on a route seen before allocates nothing.
func TestObserveAllocs(t *testing.T) {
	m := New()
	m.Route("GET", "/x").Observe(200, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { m.Route("GET", "/x").Observe(200, time.Millisecond) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}

type fakePlugins []plugin.Info

func (f fakePlugins) List() []plugin.Info                { return f }
func (f fakePlugins) LogLinesDropped() map[string]uint64 { return map[string]uint64{"echo": 7} }

type fakeHooks webhook.Counters

func (f fakeHooks) Counters() webhook.Counters { return webhook.Counters(f) }

type fakeStore store.Size

func (f fakeStore) Size() store.Size { return store.Size(f) }

func TestCollectors(t *testing.T) {
	m := New()
	var lat hostapi.Histogram
	lat.Counts[3], lat.Counts[5], lat.Sum = 2, 1, 30*time.Microsecond
	m.Register(NewPluginCollector(fakePlugins{{Name: "echo", Version: "1.0.0", Status: plugin.Active,
		Stats: hostapi.Stats{Calls: 3, Errors: 1, Instances: 2, Latency: lat}, Hooks: &plugin.HookStats{Delivered: 4}}}),
		NewWebhookCollector(fakeHooks{Attempts: 6, Delivered: 3, Retries: 2, Dead: 1}),
		NewStorageCollector(fakeStore{LSMBytes: 10, VlogBytes: 20, BlockCacheBytes: 30, IndexCacheBytes: 40}))
	m.RateLimited("default")
	m.ConfigReload("file", false)
	fams := scrape(t, m)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"portico_plugin_info", map[string]string{"plugin": "echo", "status": "active", "version": "1.0.0"}, 1},
		{"portico_plugin_calls_total", map[string]string{"plugin": "echo"}, 3},
		{"portico_plugin_errors_total", map[string]string{"plugin": "echo"}, 1},
		{"portico_plugin_instances", map[string]string{"plugin": "echo"}, 2},
		{"portico_plugin_call_duration_seconds", map[string]string{"plugin": "echo"}, 3},
		{"portico_plugin_log_lines_dropped_total", map[string]string{"plugin": "echo"}, 7},
		{"portico_plugin_hook_events_total", map[string]string{"plugin": "echo", "outcome": "delivered"}, 4},
		{"portico_webhook_attempts_total", map[string]string{"outcome": "delivered"}, 3},
		{"portico_webhook_attempts_total", map[string]string{"outcome": "retry"}, 2},
		{"portico_webhook_attempts_total", map[string]string{"outcome": "dead"}, 1},
		{"portico_webhook_attempts_total", map[string]string{"outcome": "other"}, 0},
		{"portico_storage_disk_bytes", map[string]string{"part": "lsm"}, 10},
		{"portico_storage_disk_bytes", map[string]string{"part": "vlog"}, 20},
		{"portico_storage_cache_bytes", map[string]string{"cache": "block"}, 30},
		{"portico_storage_cache_bytes", map[string]string{"cache": "index"}, 40},
		{"portico_ratelimit_refusals_total", map[string]string{"group": "default"}, 1},
		{"portico_config_reloads_total", map[string]string{"source": "file", "result": "rejected"}, 1},
	}
	for _, tt := range tests {
		if v, ok := value(fams, tt.name, tt.labels); !ok || v != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, v, ok, tt.want)
		}
	}
	// The plugin histogram's buckets are cumulative: 2 calls under 8 µs.
	for _, b := range fams["portico_plugin_call_duration_seconds"].Metric[0].Histogram.Bucket {
		if b.GetUpperBound() == 8e-6 && b.GetCumulativeCount() != 2 {
			t.Errorf("bucket le=8µs holds %d, want 2", b.GetCumulativeCount())
		}
	}
}
