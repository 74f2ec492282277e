package middleware_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/porticohq/portico/sdk/middleware"
)

func TestServe(t *testing.T) {
	middleware.Handle(middleware.Handler{
		Features: middleware.BufferResponse,
		OnRequest: func(req middleware.Request, resp middleware.Response) bool {
			if req.Path() == "/admin" {
				resp.SetStatusCode(403)
				resp.SetHeader("Content-Type", "text/plain")
				resp.SetBody([]byte("no"))
				return false
			}
			req.SetHeader("X-Seen", req.Method()+" "+req.URI())
			req.AddHeader("X-Seen", "twice")
			req.RemoveHeader("Cookie")
			return true
		},
		OnResponse: func(req middleware.Request, resp middleware.Response, failed bool) {
			resp.SetHeader("X-Status", fmt.Sprint(resp.StatusCode()))
			resp.SetBody(append([]byte("<"), resp.Body()...))
			resp.SetBody([]byte(">"))
		},
	})
	e := &middleware.Exchange{Method: "POST", URI: "/v1/x?y=1", Header: http.Header{"Cookie": {"c"}}}
	ran := middleware.Serve(e, func(e *middleware.Exchange) {
		if got := e.Header.Values("X-Seen"); !slices.Equal(got, []string{"POST /v1/x?y=1", "twice"}) || e.Header.Get("Cookie") != "" {
			t.Errorf("route saw %v", e.Header)
		}
		e.Status, e.ResponseBody = 201, []byte("made")
	})
	if !ran || e.ResponseHeader.Get("X-Status") != "201" || string(e.ResponseBody) != "<made>" || e.Features&middleware.BufferResponse == 0 {
		t.Errorf("after: ran %v, %+v, body %q", ran, e.ResponseHeader, e.ResponseBody)
	}
	e = &middleware.Exchange{URI: "/admin"}
	if middleware.Serve(e, func(*middleware.Exchange) { t.Error("the route ran") }) || e.Status != 403 || string(e.ResponseBody) != "no" {
		t.Errorf("ended: %+v", e)
	}
}
