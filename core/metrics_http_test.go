package core_test

import (
	"bytes"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics reads /metrics with the given header and parses it with
// Prometheus's own text parser.
func scrapeMetrics(t *testing.T, g *gw, hdr ...string) map[string]*dto.MetricFamily {
	t.Helper()
	r := do(t, "GET", g.url+"/metrics", "", hdr...)
	if r.status != 200 {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

// sample sums the samples of a family whose labels include want (counts
// for histograms).
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	const token = "scrape-token-0123456789"
	g := start(t, small+"[metrics]\ntoken = \""+token+"\"\n")
	admin := []string{"X-API-Key", g.key}
	before := scrapeMetrics(t, g, admin...)

	for range 3 {
		if r := g.do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":{"text":"hi"}}`); r.status != 200 {
			t.Fatalf("invoke: %d %s", r.status, r.body)
		}
	}
	if r := g.do(t, "PATCH", g.url+"/api/v1/config", `{"log.level":"debug"}`); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	invoke := map[string]string{"route": "/api/v1/skills/{name}/invoke", "method": "POST", "status": "200"}
	// The scrape token works alone, without an API key. A request is
	// counted once its response is written: poll for the last one.
	var after map[string]*dto.MetricFamily
	eventually(t, "the requests counted", func() bool {
		after = scrapeMetrics(t, g, "Authorization", "Bearer "+token)
		return sample(after, "portico_http_requests_total", invoke)-sample(before, "portico_http_requests_total", invoke) >= 3
	})
	tests := []struct {
		name   string
		family string
		labels map[string]string
		moved  float64
	}{
		{"requests by route and status", "portico_http_requests_total", invoke, 3},
		{"latency histogram", "portico_http_request_duration_seconds", map[string]string{"route": "/api/v1/skills/{name}/invoke"}, 3},
		{"plugin calls", "portico_plugin_calls_total", map[string]string{"plugin": "echo"}, 3},
		{"plugin call durations", "portico_plugin_call_duration_seconds", map[string]string{"plugin": "echo"}, 3},
		{"config reloads", "portico_config_reloads_total", map[string]string{"source": "api", "result": "applied"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := sample(after, tt.family, tt.labels) - sample(before, tt.family, tt.labels); d != tt.moved {
				t.Errorf("%s%v moved by %v, want %v", tt.family, tt.labels, d, tt.moved)
			}
		})
	}
	if sample(after, "portico_plugin_instances", map[string]string{"plugin": "echo"}) < 1 {
		t.Error("no instances in echo's pool")
	}
	if sample(after, "go_goroutines", nil) == 0 {
		t.Error("no Go runtime metrics")
	}

	// Without a credential, or with a wrong token, /metrics is refused.
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong-token"}} {
		if r := do(t, "GET", g.url+"/metrics", "", hdr...); r.status != 401 || r.errCode(t) != "unauthorized" {
			t.Errorf("%v: %d %s", hdr, r.status, r.body)
		}
	}
}
