package core_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing/fstest"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/plugins"
)

// examplePlugins is a tree of plugin directories, as a program would carry
// it with go:embed: here the first-party WAT skill "reverse".
func examplePlugins() fs.FS {
	sub, _ := fs.Sub(plugins.FS, "reverse")
	manifest, _ := fs.ReadFile(sub, "plugin.toml")
	module, _ := fs.ReadFile(sub, "reverse.wasm")
	return fstest.MapFS{
		"reverse/plugin.toml":  {Data: manifest},
		"reverse/reverse.wasm": {Data: module},
	}
}

// exampleSettings are what every example sets: a free loopback port, a
// fresh data dir and no first-party plugins.
func exampleSettings(dataDir string) map[string]string {
	return map[string]string{"listen": "127.0.0.1:0", "data_dir": dataDir, "plugin.embedded": "false"}
}

// A gateway carrying its own plugin, started, called from Go and stopped.
func Example() {
	dir, _ := os.MkdirTemp("", "portico-example")
	defer os.RemoveAll(dir)

	gw, err := core.New(core.Options{
		Config:   []byte("[log]\nlevel = \"warn\"\n"),
		Settings: exampleSettings(dir),
		Logger:   slog.New(slog.DiscardHandler),
		Plugins:  []fs.FS{examplePlugins()},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := gw.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer gw.Shutdown(ctx)

	reply, err := gw.Invoke(ctx, "reverse", []byte(`"stressed"`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	// Output: "desserts"
}

// A host function of the program's own, called by a plugin granted its
// capability. The guest (testdata/wasm/ext.wat) answers with the host
// function's result code and reply.
func ExampleHostFunc() {
	dir, _ := os.MkdirTemp("", "portico-example")
	defer os.RemoveAll(dir)
	module, err := os.ReadFile("../testdata/wasm/ext.wasm")
	if err != nil {
		log.Fatal(err)
	}
	tree := fstest.MapFS{
		"ext/plugin.toml": {Data: []byte(`name = "ext"
version = "1.0.0"
description = "Calls test.lookup."
kinds = ["skill"]
[capabilities]
required = ["test.lookup"]
[[skills]]
name = "lookup"
description = "Looks its input up."
`)},
		"ext/ext.wasm": {Data: module},
	}
	gw, err := core.New(core.Options{
		Config:   []byte("[[plugins]]\nname = \"ext\"\ngrants = [\"test.lookup\"]\n"),
		Settings: exampleSettings(dir),
		Logger:   slog.New(slog.DiscardHandler),
		Plugins:  []fs.FS{tree},
		HostFuncs: []core.HostFunc{{
			Module: "test", Name: "lookup", Capability: "test.lookup",
			Fn: func(ctx context.Context, in []byte) ([]byte, error) {
				return []byte("looked up " + string(in)), nil
			},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := gw.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer gw.Shutdown(ctx)
	reply, err := gw.Invoke(ctx, "lookup", []byte(`"apples"`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", reply[4:]) // after the 4-byte result code
	// Output: looked up "apples"
}

// Events arrive on a channel; here the plugin loads of the start.
func ExampleGateway_Subscribe() {
	dir, _ := os.MkdirTemp("", "portico-example")
	defer os.RemoveAll(dir)
	gw, err := core.New(core.Options{Settings: exampleSettings(dir), Logger: slog.New(slog.DiscardHandler), Plugins: []fs.FS{examplePlugins()}})
	if err != nil {
		log.Fatal(err)
	}
	sub, err := gw.Subscribe("plugin.loaded", 16)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := gw.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer gw.Shutdown(ctx)
	// The default configuration also names the first-party plugins notes
	// and audit (turned off here, so they fail): wait for ours.
	for e := range sub.Events() {
		var data struct {
			Plugin string `json:"plugin"`
			State  string `json:"state"`
		}
		json.Unmarshal(e.Data, &data)
		if data.Plugin == "reverse" {
			fmt.Println(e.Type, data.Plugin, data.State)
			break
		}
	}
	sub.Close()
	// Output: plugin.loaded reverse active
}

// A route of the program's own, behind Portico's authentication.
func ExampleRoute() {
	dir, _ := os.MkdirTemp("", "portico-example")
	defer os.RemoveAll(dir)
	key := core.NewKey()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from", r.URL.Path)
	})
	gw, err := core.New(core.Options{
		Settings: exampleSettings(dir),
		Logger:   slog.New(slog.DiscardHandler),
		AdminKey: key,
		Routes:   []core.Route{{Prefix: "/acme", Role: core.RoleOperator, Handler: hello}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Shutdown(context.Background())

	for _, k := range []string{"", key} {
		req := httptest.NewRequest("GET", "/acme/hello", nil)
		if k != "" {
			req.Header.Set("X-API-Key", k)
		}
		rec := httptest.NewRecorder()
		gw.Handler().ServeHTTP(rec, req)
		body := strings.TrimSpace(rec.Body.String())
		fmt.Println(rec.Code, body[:min(len(body), 30)])
	}
	// Output:
	// 401 {"error":{"code":"unauthorized
	// 200 hello from /acme/hello
}

// Bad options are all reported at once, each matching ErrInvalidOption.
func ExampleNew_invalidOptions() {
	_, err := core.New(core.Options{
		Routes:    []core.Route{{Prefix: "/api", Role: core.RoleUser, Handler: http.NotFoundHandler()}},
		HostFuncs: []core.HostFunc{{Module: "portico", Name: "lookup", Capability: "kv"}},
	})
	fmt.Println(errors.Is(err, core.ErrInvalidOption))
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Println(line)
	}
	// Output:
	// true
	// invalid option: invalid route mount: route 0 ("/api"): /api is Portico's own; pick another first segment
	// invalid option: invalid host function: host function 0 (portico.lookup): module "portico" is reserved; pick your own, e.g. your company's name
	// invalid host function: host function 0 (portico.lookup): capability "kv" must be a dotted name such as "portico.lookup" (it must not clash with the built-in ones)
	// invalid host function: host function 0 (portico.lookup): Fn is nil
}

// The in-memory Store, through the interface a backend implements.
func ExampleNewMemoryStore() {
	ctx := context.Background()
	s := core.NewMemoryStore()
	defer s.Close()
	s.Set(ctx, []byte("fruit/apples"), []byte("12"))
	s.Set(ctx, []byte("fruit/plums"), []byte("40"))
	s.Set(ctx, []byte("veg/leeks"), []byte("3"))
	s.Update(ctx, func(tx core.Txn) error {
		v, err := tx.Get([]byte("fruit/apples"))
		if err != nil {
			return err
		}
		return tx.Set([]byte("fruit/apples"), append(v, '0'))
	})
	s.Scan(ctx, []byte("fruit/"), true, func(k, v []byte) error {
		fmt.Printf("%s=%s\n", k, v)
		return nil
	})
	_, err := s.Get(ctx, []byte("fruit/kiwis"))
	fmt.Println(errors.Is(err, core.ErrNotFound))
	// Output:
	// fruit/plums=40
	// fruit/apples=120
	// true
}

// A webhook receiver checks a delivery's signature: HMAC-SHA256 of
// "<timestamp>.<body>" under the hook's secret, sent as "v1=<hex>".
func ExampleVerifyWebhook() {
	secret, ts, body := "whsec_example", "1767225600", []byte(`{"type":"plugin.loaded"}`)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	header := "v1=" + hex.EncodeToString(m.Sum(nil))
	fmt.Println(core.VerifyWebhook(secret, ts, header, body))
	fmt.Println(core.VerifyWebhook(secret, ts, header, []byte(`{"type":"forged"}`)))
	// Output:
	// true
	// false
}
