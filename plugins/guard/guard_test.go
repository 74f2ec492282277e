package main

import (
	"net/http"
	"testing"

	"github.com/porticohq/portico/sdk/middleware"
)

func serve(t *testing.T, config string, e *middleware.Exchange) bool {
	t.Helper()
	cfg, loadErr = nil, ""
	e.Config = []byte(config)
	return middleware.Serve(e, nil)
}

func TestGuard(t *testing.T) {
	const conf = `{"paths":"/admin/**, /debug/*","methods":"TRACE","cidrs":"203.0.113.0/24, 2001:db8::1","header.User-Agent":"(?i)badbot","status":"451","body":"gone"}`
	tests := []struct {
		name string
		e    middleware.Exchange
		pass bool
	}{
		{"plain", middleware.Exchange{URI: "/api/v1/chat"}, true},
		{"admin root", middleware.Exchange{URI: "/admin"}, false},
		{"admin below", middleware.Exchange{URI: "/admin/users?x=1"}, false},
		{"dot-dot into admin", middleware.Exchange{URI: "/api/../admin/x"}, false},
		{"adminx is not admin", middleware.Exchange{URI: "/adminx"}, true},
		{"debug one level", middleware.Exchange{URI: "/debug/pprof"}, false},
		{"debug two levels", middleware.Exchange{URI: "/debug/pprof/heap"}, true},
		{"method", middleware.Exchange{Method: "TRACE", URI: "/"}, false},
		{"cidr", middleware.Exchange{SourceAddr: "203.0.113.9:5555"}, false},
		{"ipv6 address", middleware.Exchange{SourceAddr: "[2001:db8::1]:5555"}, false},
		{"other client", middleware.Exchange{SourceAddr: "198.51.100.1:5555"}, true},
		{"header", middleware.Exchange{Header: http.Header{"User-Agent": {"x BadBot/2"}}}, false},
		{"good header", middleware.Exchange{Header: http.Header{"User-Agent": {"curl/8"}}}, true},
	}
	for _, tt := range tests {
		e := tt.e
		if pass := serve(t, conf, &e); pass != tt.pass {
			t.Errorf("%s: passed %v", tt.name, pass)
		} else if !pass && (e.Status != 451 || string(e.ResponseBody) != "gone") {
			t.Errorf("%s: answered %d %q", tt.name, e.Status, e.ResponseBody)
		}
	}
}

func TestGuardConfig(t *testing.T) {
	e := middleware.Exchange{URI: "/admin"}
	if serve(t, `{"paths":"/admin/**"}`, &e) || e.Status != 403 || e.ResponseHeader.Get("Content-Type") != "application/json" {
		t.Errorf("defaults: %d %v", e.Status, e.ResponseHeader)
	}
	for _, bad := range []string{`{"paths":"admin"}`, `{"cidrs":"10.0.0.0/33"}`, `{"header.X":"("}`, `{"status":"200"}`, `{"unknown":"1"}`, `[1]`} {
		e := middleware.Exchange{URI: "/fine"}
		if serve(t, bad, &e) || e.Status != 500 {
			t.Errorf("%s: passed or %d", bad, e.Status)
		}
	}
}
