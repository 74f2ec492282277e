package main

import (
	"net/http"
	"testing"

	"github.com/porticohq/portico/sdk/middleware"
)

func reset() { ops, loaded, loadErr, removes = nil, false, "", false }

func TestHeaders(t *testing.T) {
	reset()
	e := &middleware.Exchange{
		Config: []byte(`{"request.set.X-Env":"prod","request.add.X-Via":"portico","request.remove.Cookie":"","response.set.X-Frame-Options":"DENY","response.remove.Server":""}`),
		Header: http.Header{"Cookie": {"secret"}, "X-Via": {"lb"}},
	}
	ran := middleware.Serve(e, func(e *middleware.Exchange) {
		if e.Header.Get("X-Env") != "prod" || len(e.Header.Values("X-Via")) != 2 || e.Header.Get("Cookie") != "" {
			t.Errorf("route saw %v", e.Header)
		}
		e.ResponseHeader.Set("Server", "upstream/1.0")
	})
	if !ran || e.ResponseHeader.Get("X-Frame-Options") != "DENY" || e.ResponseHeader.Get("Server") != "" || e.Features&middleware.BufferResponse == 0 {
		t.Errorf("response: %v %v", e.ResponseHeader, e.Features)
	}
}

func TestBadConfigFailsClosed(t *testing.T) {
	for _, cfg := range []string{`{"request.replace.X":"1"}`, `{"X":"1"}`, `not json`, `{"request.set.":"1"}`} {
		reset()
		e := &middleware.Exchange{Config: []byte(cfg)}
		if middleware.Serve(e, func(*middleware.Exchange) { t.Error("the route ran") }) || e.Status != 500 {
			t.Errorf("%s: status %d", cfg, e.Status)
		}
	}
}
