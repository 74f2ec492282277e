package main

import (
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestHTTPGet(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	f.HTTP = func(req string) (int, []byte, error) {
		if !strings.HasPrefix(req, "GET https://example.com/a\n") {
			t.Errorf("request %q", req)
		}
		return 200, []byte(`<html><head><title>Hello &amp; welcome</title><style>x{}</style></head><body><h1>Hi</h1><script>bad()</script><p>there</p></body></html>`), nil
	}
	out, err := sdk.Invoke("http_get", []byte(`{"url":"https://example.com/a"}`))
	want := `{"status":200,"text":"Hi there","title":"Hello \u0026 welcome","url":"https://example.com/a"}`
	if err != nil || string(out) != want {
		t.Errorf("got %s %v\nwant %s", out, err, want)
	}
	f.HTTP = nil // not on the allow-list
	if _, err := sdk.Invoke("http_get", []byte(`{"url":"https://example.com/a"}`)); err == nil || !strings.Contains(err.Error(), "http_allow") {
		t.Errorf("refused: %v", err)
	}
}
