package plugin

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/hostapi"
)

func TestHTTPCapability(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("x", 2000)))
			return
		}
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello " + r.Header.Get("X-Test")))
	}))
	defer srv.Close()
	manifest := "[capabilities]\noptional = [\"http\"]\n"
	dir := pluginDir(t, "fetch", "fetch.wasm", manifest)
	call := func(t *testing.T, entry config.PluginEntry, req string) (int32, string) {
		t.Helper()
		f := newFixture(t, nil)
		c := cfg(entry)
		c.Plugin.HTTPMaxResponse = 1000
		f.m.LoadAll(ctx, c)
		out, _, err := f.m.Invoke(ctx, "fetch", []byte(req))
		if err != nil || len(out) < 4 {
			t.Fatalf("invoke: %v %v", out, err)
		}
		return int32(binary.LittleEndian.Uint32(out)), string(out[4:])
	}
	get := "GET " + srv.URL + "/hi\nX-Test: yes\n\n"
	base := config.PluginEntry{Name: "fetch", Path: dir}
	tests := []struct {
		name     string
		entry    func(config.PluginEntry) config.PluginEntry
		req      string
		code     int32
		contains string
	}{
		{"not granted", func(e config.PluginEntry) config.PluginEntry { return e }, get, hostapi.ResDenied, `plugin "fetch" is not granted the http capability; add "http" to grants`},
		{"host not allowed", func(e config.PluginEntry) config.PluginEntry {
			e.Grants = []string{"http"}
			return e
		}, get, hostapi.ResDenied, `host 127.0.0.1 is not on the http_allow list of plugin "fetch"`},
		{"loopback refused", func(e config.PluginEntry) config.PluginEntry {
			e.Grants, e.HTTPAllow = []string{"http"}, []string{"127.0.0.1"}
			return e
		}, get, hostapi.ResDenied, `host 127.0.0.1 is on the http_allow list, but its address 127.0.0.1 is loopback, private or link-local, which plugins may not reach; set http_private = true`},
		{"loopback when private is granted", func(e config.PluginEntry) config.PluginEntry {
			e.Grants, e.HTTPAllow, e.HTTPPrivate = []string{"http"}, []string{"127.0.0.1"}, true
			return e
		}, get, 200, "hello yes"},
		{"response over the limit", func(e config.PluginEntry) config.PluginEntry {
			e.Grants, e.HTTPAllow, e.HTTPPrivate = []string{"http"}, []string{"127.0.0.1"}, true
			return e
		}, "GET " + srv.URL + "/big\n\n", hostapi.ResTooLarge, "http_max_response_bytes"},
		{"redirect off the allow-list", func(e config.PluginEntry) config.PluginEntry {
			e.Grants, e.HTTPAllow, e.HTTPPrivate = []string{"http"}, []string{"127.0.0.1"}, true
			return e
		}, "GET " + srv.URL + "/redirect\n\n", hostapi.ResDenied, "redirect"},
		{"bad scheme", func(e config.PluginEntry) config.PluginEntry {
			e.Grants, e.HTTPAllow = []string{"http"}, []string{"x"}
			return e
		}, "GET file:///etc/passwd\n\n", hostapi.ResError, "scheme"},
		{"bad request line", func(e config.PluginEntry) config.PluginEntry {
			e.Grants = []string{"http"}
			return e
		}, "nonsense\n\n", hostapi.ResError, "METHOD URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, rest := call(t, tt.entry(base), tt.req)
			if code != tt.code || !strings.Contains(rest, tt.contains) {
				t.Errorf("code %d %q, want %d containing %q", code, rest, tt.code, tt.contains)
			}
		})
	}
}

func TestHTTPAllowList(t *testing.T) {
	p := newHTTPPolicy([]string{"api.example.com", "*.example.org"}, false, 0, 0)
	for host, want := range map[string]bool{
		"api.example.com": true, "API.example.com.": true, "evil.com": false, "api.example.com.evil.com": false,
		"a.example.org": true, "example.org": false, "x.badexample.org": false,
	} {
		if got := p.allowed(host); got != want {
			t.Errorf("allowed(%q) = %v, want %v", host, got, want)
		}
	}
	for addr, ok := range map[string]bool{"93.184.216.34:443": true, "127.0.0.1:80": false, "10.1.2.3:80": false, "[::1]:80": false,
		"169.254.169.254:80": false, "[fe80::1]:80": false, "100.64.0.1:80": false, "0.0.0.0:80": false, "[::ffff:127.0.0.1]:80": false} {
		if err := p.checkAddress("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("checkAddress(%s) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestLLMCapability(t *testing.T) {
	ctx := context.Background()
	dir := pluginDir(t, "asker", "llm.wasm", "[capabilities]\noptional = [\"llm\"]\n")
	run := func(grants []string, llm func(context.Context, string, []string, []byte) ([]byte, error)) (int32, string) {
		f := newFixture(t, nil)
		f.m.d.LLM = llm
		f.m.LoadAll(ctx, cfg(config.PluginEntry{Name: "asker", Path: dir, Grants: grants, LLMModels: []string{"small", "big"}}))
		out, _, err := f.m.Invoke(ctx, "asker", []byte(`{"prompt":"hi"}`))
		if err != nil || len(out) < 4 {
			t.Fatalf("invoke: %v %v", out, err)
		}
		return int32(binary.LittleEndian.Uint32(out)), string(out[4:])
	}
	if code, _ := run(nil, nil); code != hostapi.ResDenied {
		t.Errorf("ungranted: %d", code)
	}
	if code, msg := run([]string{"llm"}, nil); code != hostapi.ResError || !strings.Contains(msg, "no LLM provider") {
		t.Errorf("no provider: %d %q", code, msg)
	}
	code, msg := run([]string{"llm"}, func(_ context.Context, plugin string, models []string, req []byte) ([]byte, error) {
		return []byte(`{"text":"echo ` + plugin + ` ` + strings.Join(models, ",") + ` ` + string(req) + `"}`), nil
	})
	if code <= 0 || !strings.Contains(msg, `asker small,big {"prompt":"hi"}`) {
		t.Errorf("with a provider: %d %q", code, msg)
	}
	code, msg = run([]string{"llm"}, func(context.Context, string, []string, []byte) ([]byte, error) {
		return nil, fmt.Errorf("token quota exceeded (%w)", hostapi.ErrQuota)
	})
	if code != hostapi.ResTooLarge || !strings.Contains(msg, "quota") {
		t.Errorf("over a quota: %d %q", code, msg)
	}
}
