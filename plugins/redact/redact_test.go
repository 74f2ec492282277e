package main

import (
	"net/http"
	"testing"

	"github.com/porticohq/portico/sdk/middleware"
)

func serve(config string, e *middleware.Exchange, route func(*middleware.Exchange)) bool {
	cfg, loadErr = nil, ""
	e.Config = []byte(config)
	return middleware.Serve(e, route)
}

func TestRedactBodies(t *testing.T) {
	e := &middleware.Exchange{Method: "POST", Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"text":"mail ann@example.com or call +4712345678, (555) 123-4567; order 2026-11-23, id 1767312000, card 4111 1111 1111 1111"}`)}
	var seen string
	serve(`{"pattern.card":"\\b\\d{4}( ?\\d{4}){3}\\b"}`, e, func(e *middleware.Exchange) {
		seen = string(e.Body)
		e.ResponseHeader.Set("Content-Type", "text/plain; charset=utf-8")
		e.ResponseBody = []byte("reply to bob@example.org at 020 7946 0958")
	})
	want := `{"text":"mail [redacted] or call [redacted], [redacted]; order 2026-11-23, id 1767312000, card [redacted]"}`
	if seen != want {
		t.Errorf("the route saw\n%s\nwant\n%s", seen, want)
	}
	if string(e.ResponseBody) != "reply to [redacted] at [redacted]" {
		t.Errorf("response: %s", e.ResponseBody)
	}
}

func TestRedactOptions(t *testing.T) {
	// Binary bodies, disabled kinds and the mask.
	e := &middleware.Exchange{Header: http.Header{"Content-Type": {"image/png"}}, Body: []byte("a@b.co")}
	serve(`{"mask":"***","phones":"false","request":"true","response":"false"}`, e, func(e *middleware.Exchange) {
		if string(e.Body) != "a@b.co" {
			t.Errorf("a binary body was changed: %s", e.Body)
		}
		e.ResponseBody = []byte("x@y.io +4712345678")
	})
	if string(e.ResponseBody) != "x@y.io +4712345678" {
		t.Errorf("response redacted with response = false: %s", e.ResponseBody)
	}
	e = &middleware.Exchange{Body: []byte("x@y.io +4712345678")}
	var seen string
	serve(`{"mask":"***","phones":"false"}`, e, func(e *middleware.Exchange) { seen = string(e.Body) })
	if seen != "*** +4712345678" {
		t.Errorf("mask and phones off: %s", seen)
	}
	for _, bad := range []string{`{"pattern.x":"("}`, `{"emails":"yes"}`, `{"other":"1"}`} {
		e := &middleware.Exchange{}
		if serve(bad, e, nil) || e.Status != 500 {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestTextual(t *testing.T) {
	for ct, want := range map[string]bool{
		"": true, "text/plain": true, "TEXT/HTML; charset=utf-8": true, " application/json ": true,
		"application/problem+json": true, "Application/X-WWW-Form-Urlencoded": true, "application/xml": true,
		"image/svg+XML": true, "application/octet-stream": false, "image/png": false, "multipart/form-data; boundary=x": false,
		"tex": false, "json/whatever": false,
	} {
		if got := textual(ct); got != want {
			t.Errorf("textual(%q) = %v, want %v", ct, got, want)
		}
	}
}
