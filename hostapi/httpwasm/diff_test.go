package httpwasm_test

import (
	"context"
	"encoding/binary"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/http-wasm/http-wasm-host-go/handler"
	refnethttp "github.com/http-wasm/http-wasm-host-go/handler/nethttp"
	"github.com/http-wasm/http-wasm-host-go/tck"
	"github.com/tetratelabs/wazero"

	"github.com/porticohq/portico/hostapi/httpwasm"
	"github.com/porticohq/portico/hostapi/httpwasm/nethttp"
)

// A differential test: the same guests through Portico's host and
// through the reference host's net/http middleware (http-wasm-host-go
// v0.7.0), comparing what a client sees of both phases: status, headers
// (the echo backend reflects the request the route received into X-Echo-*
// headers and the body) and body. The conformance kit only covers the
// request side; this covers the response side and the error guests too.

type diffRequest struct {
	method, path, body string
	header             http.Header
}

type diffCase struct {
	name    string
	wasm    []byte
	config  []byte
	goGuest bool // Go c-shared: the reference host must be told to run _initialize
	// failing guests must fail on both hosts (the reference answers 500
	// or aborts the connection; Portico calls OnError)
	failing  bool
	requests []diffRequest
	// known divergences: header -> why Portico differs from the reference
	diverges map[string]string
}

// framing headers differ by design: the reference host flushes a body the
// guest wrote (so it goes out chunked), Portico sends it whole with a
// Content-Length. Bodies are compared instead, and a Content-Length
// Portico sends must match its body.
var framing = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

type outcome struct {
	status int
	header http.Header
	body   string
	failed bool
}

func refWasm(t testing.TB, name string) []byte { return fixture(t, filepath.Join("httpwasm", name)) }

func goGuest(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "plugins", name, name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	refCacheOnce sync.Once
	refCache     wazero.CompilationCache
)

// referenceRuntime gives the reference host a runtime on the shared
// on-disk compilation cache (Go guests compile in seconds otherwise).
func referenceRuntime(t testing.TB) handler.Option {
	refCacheOnce.Do(func() {
		c, err := wazero.NewCompilationCacheWithDir(testCacheDir(t))
		if err != nil {
			t.Fatal(err)
		}
		refCache = c
	})
	return handler.Runtime(func(ctx context.Context) (wazero.Runtime, error) {
		return wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(refCache)), nil
	})
}

func diffCases(t *testing.T) []diffCase {
	get := func(path string, kv ...string) diffRequest {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return diffRequest{method: "GET", path: path, header: h}
	}
	post := func(path, body string) diffRequest {
		return diffRequest{method: "POST", path: path, body: body, header: http.Header{}}
	}
	tckReq := func(id, method string, kv ...string) diffRequest {
		r := get("/", append([]string{"x-httpwasm-tck-testid", id}, kv...)...)
		r.method = method
		return r
	}
	features := make([]byte, 8)
	binary.LittleEndian.PutUint64(features, 3) // buffer_request | buffer_response
	return []diffCase{
		// the reference module's end-to-end guests
		{name: "e2e/protocol_version", wasm: refWasm(t, "e2e_protocol_version.wasm"), requests: []diffRequest{get("/")}},
		{name: "e2e/method", wasm: refWasm(t, "e2e_method.wasm"), requests: []diffRequest{get("/"), {method: "DELETE", path: "/x", header: http.Header{}}}},
		{name: "e2e/uri", wasm: refWasm(t, "e2e_uri.wasm"), requests: []diffRequest{get("/v1.0/hi?name=panda"), get("/")}},
		{name: "e2e/header_value", wasm: refWasm(t, "e2e_header_value.wasm"), requests: []diffRequest{get("/"), get("/", "Content-Type", "application/json")}},
		{name: "e2e/handle_response", wasm: refWasm(t, "e2e_handle_response.wasm"), requests: []diffRequest{get("/"), get("/")}},
		{name: "e2e/header_names", wasm: refWasm(t, "e2e_header_names.wasm"), requests: []diffRequest{get("/", "A", "1", "B", "2", "B", "3")}},
		// its examples
		{name: "example/auth", wasm: refWasm(t, "example_auth.wasm"), requests: []diffRequest{
			get("/"), get("/", "Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), get("/", "Authorization", "Basic d3Jvbmc6d3Jvbmc="),
			get("/", "Authorization", "a", "Authorization", "b")}},
		{name: "example/config", wasm: refWasm(t, "example_config.wasm"), config: features, requests: []diffRequest{post("/", `{"hello":"panda"}`)}},
		{name: "example/log", wasm: refWasm(t, "example_log.wasm"), requests: []diffRequest{get("/")}},
		{name: "example/redact", wasm: refWasm(t, "example_redact.wasm"), config: []byte("open sesame"), requests: []diffRequest{
			post("/", "the password is open sesame, really"), post("/", "nothing to hide")}},
		{name: "example/router", wasm: refWasm(t, "example_router.wasm"), requests: []diffRequest{get("/"), get("/host/hello?name=panda")}},
		{name: "example/wasi", wasm: refWasm(t, "example_wasi.wasm"), requests: []diffRequest{post("/v1.0/hi?name=panda", `{"hello": "panda"}`)}},
		// its error guests
		{name: "error/panic_on_handle_request", wasm: refWasm(t, "error_panic_on_handle_request.wasm"), failing: true, requests: []diffRequest{get("/")}},
		{name: "error/panic_on_handle_response", wasm: refWasm(t, "error_panic_on_handle_response.wasm"), failing: true, requests: []diffRequest{get("/")}},
		{name: "error/set_request_header_after_next", wasm: refWasm(t, "error_set_request_header_after_next.wasm"), failing: true, requests: []diffRequest{get("/")}},
		// the conformance kit's guest, beyond what tck.Run checks
		{name: "tck", wasm: tck.GuestWASM, requests: []diffRequest{
			tckReq("set_method", "GET"), tckReq("set_uri/query", "GET"), {method: "GET", path: "/animal?name=panda", header: http.Header{"X-Httpwasm-Tck-Testid": {"get_uri/query"}}},
			tckReq("add_header_value/request/existing", "GET", "existing-header", "bear"),
			tckReq("remove_header/request/existing", "GET", "existing-header", "bear")}},
		// Portico's WAT guests
		{name: "mw_headers", wasm: fixture(t, "mw_headers.wasm"), requests: []diffRequest{get("/"), post("/p", "x")}},
		{name: "mw_deny", wasm: fixture(t, "mw_deny.wasm"), requests: []diffRequest{get("/"), post("/p", "x")}},
		{name: "mw_rewrite", wasm: fixture(t, "mw_rewrite.wasm"), requests: []diffRequest{get("/a?b=c"), post("/p", "make me loud")}},
		// Go guests built with the SDK (sdk/middleware): the first-party
		// headers and guard plugins
		{name: "sdk/headers", wasm: goGuest(t, "headers"), goGuest: true,
			config:   []byte(`{"request.set.X-Env":"prod","request.add.X-Via":"portico","request.remove.Cookie":"","response.set.X-Frame-Options":"DENY","response.remove.Server":""}`),
			requests: []diffRequest{get("/", "Cookie", "a=b", "X-Via", "lb"), post("/p", "body")}},
		{name: "sdk/guard", wasm: goGuest(t, "guard"), goGuest: true,
			config:   []byte(`{"paths":"/admin/**","methods":"TRACE","status":"403","body":"no","content_type":"text/plain"}`),
			requests: []diffRequest{get("/"), get("/admin/users"), {method: "TRACE", path: "/", header: http.Header{}}},
			diverges: map[string]string{"Content-Type": "the SDK sets the status before the headers; the reference host sends the status at once " +
				"and drops the guest's Content-Type (net/http then sniffs one), Portico sends the guest's response when handle_request returns"}},
	}
}

func TestMiddlewareDifferential(t *testing.T) {
	r := newRuntime(t)
	for _, tc := range diffCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			refOpts := []handler.Option{handler.GuestConfig(tc.config), referenceRuntime(t)}
			if tc.goGuest {
				refOpts = append(refOpts, handler.ModuleConfig(wazero.NewModuleConfig().WithStartFunctions("_initialize")))
			}
			ref, err := refnethttp.NewMiddleware(ctx, tc.wasm, refOpts...)
			if err != nil {
				t.Fatalf("reference host: %v", err)
			}
			defer ref.Close(ctx)
			ours, err := httpwasm.Load(ctx, r, tc.wasm, httpwasm.Options{Name: tc.name, GuestConfig: tc.config})
			if err != nil {
				t.Fatalf("portico: %v", err)
			}
			defer ours.Close(ctx)
			var errs errorLog
			quiet := log.New(io.Discard, "", 0) // the reference host panics on some error guests
			refSrv := httptest.NewUnstartedServer(ref.NewHandler(ctx, echoBackend))
			refSrv.Config.ErrorLog = quiet
			refSrv.Start()
			defer refSrv.Close()
			ourSrv := httptest.NewServer(nethttp.Handler(ours, echoBackend, nethttp.Options{OnError: errs.onError}))
			defer ourSrv.Close()

			for i, dr := range tc.requests {
				before := len(errs.all())
				want := fetch(t, refSrv, dr)
				got := fetch(t, ourSrv, dr)
				got.failed = got.failed || len(errs.all()) > before
				if tc.failing {
					if !want.failed || !got.failed {
						t.Errorf("request %d: the error guest must fail on both hosts: reference %+v, portico %+v", i, want, got)
					}
					continue
				}
				if want.failed || got.failed {
					t.Fatalf("request %d failed: reference %+v, portico %+v (errors %v)", i, want, got, errs.all())
				}
				if want.status != got.status || want.body != got.body {
					t.Errorf("request %d %s %s: reference %d %q, portico %d %q", i, dr.method, dr.path, want.status, want.body, got.status, got.body)
				}
				if cl := got.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(got.body)) {
					t.Errorf("request %d: Content-Length %s for a body of %d bytes", i, cl, len(got.body))
				}
				for _, k := range union(want.header, got.header) {
					if _, known := tc.diverges[k]; known || framing[k] {
						continue
					}
					if !slices.Equal(want.header[k], got.header[k]) {
						t.Errorf("request %d %s %s: header %s: reference %q, portico %q", i, dr.method, dr.path, k, want.header[k], got.header[k])
					}
				}
			}
		})
	}
}

func fetch(t *testing.T, srv *httptest.Server, dr diffRequest) outcome {
	req, err := http.NewRequest(dr.method, srv.URL+dr.path, strings.NewReader(dr.body))
	if err != nil {
		t.Fatal(err)
	}
	if dr.body == "" {
		req.Body = nil
	}
	for k, vs := range dr.header {
		req.Header[k] = vs
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return outcome{failed: true}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{failed: true}
	}
	resp.Header.Del("Date")
	return outcome{status: resp.StatusCode, header: resp.Header, body: string(b), failed: resp.StatusCode >= 500}
}

func union(a, b http.Header) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
