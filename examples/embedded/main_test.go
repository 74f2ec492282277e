package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porticohq/portico/internal/testtool"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
)

// start runs the example's gateway in-process on a loopback port with a
// temporary data dir, as main does, and returns it with an admin key.
func start(t *testing.T, settings map[string]string) (*core.Gateway, string) {
	t.Helper()
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"listen": "127.0.0.1:0", "data_dir": t.TempDir(), "plugin.cache_dir": cache}
	for k, v := range settings {
		all[k] = v
	}
	opts, err := options(NewInventory(), all, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts.Environ = nil // the test's environment must not change the gateway
	opts.AdminKey = core.NewKey()
	gw, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return gw, opts.AdminKey
}

func call(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEmbeddedGateway(t *testing.T) {
	gw, key := start(t, nil)
	base := "http://" + gw.Addr()

	t.Run("skill over HTTP", func(t *testing.T) {
		tests := []struct {
			input string
			code  int
			want  string
		}{
			{`"apples"`, 200, `{"item":"apples","count":12}`},
			{`"pears"`, 200, `{"item":"pears","count":0}`},
			{`"kiwis"`, 502, `no item \"kiwis\": not found`}, // the host function's error, through the guest
			{`42`, 400, "input"},                             // the skill's input schema
		}
		for _, tt := range tests {
			code, body := call(t, "POST", base+"/api/v1/skills/stock/invoke", key, `{"input":`+tt.input+`}`)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("invoke %s = %d %s, want %d containing %s", tt.input, code, body, tt.code, tt.want)
			}
		}
	})

	t.Run("skill from Go", func(t *testing.T) {
		tests := []struct {
			input   string
			want    string
			wantErr error
		}{
			{`"plums"`, `{"item":"plums","count":40}`, nil},
			{`"kiwis"`, "", core.ErrSkillFailed},
			{`7`, "", core.ErrBadInput},
			{`not json`, "", core.ErrBadInput},
		}
		for _, tt := range tests {
			out, err := gw.Invoke(context.Background(), "stock", []byte(tt.input))
			if !errors.Is(err, tt.wantErr) || string(out) != tt.want {
				t.Errorf("Invoke(%s) = %s, %v; want %s, %v", tt.input, out, err, tt.want, tt.wantErr)
			}
		}
		if _, err := gw.Invoke(context.Background(), "nope", []byte(`""`)); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("Invoke of an unknown skill = %v, want ErrNotFound", err)
		}
	})

	t.Run("custom route", func(t *testing.T) {
		tests := []struct {
			path, key string
			code      int
			want      string
		}{
			{"/acme/stock/apples", key, 200, `{"item":"apples","count":12}`},
			{"/acme/stock/kiwis", key, 404, "no item"},
			{"/acme/stock/apples", "", 401, "unauthorized"},
		}
		for _, tt := range tests {
			code, body := call(t, "GET", base+tt.path, tt.key, "")
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("GET %s = %d %s, want %d containing %s", tt.path, code, body, tt.code, tt.want)
			}
		}
	})

	t.Run("pack listed", func(t *testing.T) {
		code, body := call(t, "GET", base+"/api/v1/plugins/inventory", key, "")
		if code != 200 || !strings.Contains(body, `"status":"active"`) || !strings.Contains(body, `"pack":{"name":"acme","version":"1.0.0"}`) {
			t.Errorf("GET /api/v1/plugins/inventory = %d %s", code, body)
		}
	})
}

// TestHostFuncNeedsGrant: without the grant the plugin does not load (the
// manifest requires acme.stock), so the skill is unavailable.
func TestHostFuncNeedsGrant(t *testing.T) {
	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := options(NewInventory(), map[string]string{"listen": "127.0.0.1:0", "data_dir": t.TempDir(), "plugin.cache_dir": cache}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts.Environ = nil
	opts.Config = bytes.Replace(opts.Config, []byte(`grants = ["acme.stock"]`), []byte(`grants = []`), 1)
	gw, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())
	err = gw.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `capability "acme.stock" is required but not granted`) {
		t.Fatalf("Start = %v, want the pack refused for the missing grant", err)
	}
}

// TestWATModuleMatchesSource rebuilds the pack's module with wat2wasm
// (Debian's wabt), which CI installs; elsewhere the test skips unless
// PORTICO_TEST_REQUIRE_TOOLS is set.
func TestWATModuleMatchesSource(t *testing.T) {
	testtool.Need(t, "Debian's wabt", "wat2wasm")
	out := filepath.Join(t.TempDir(), "inventory.wasm")
	if b, err := exec.Command("wat2wasm", "inventory.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	fresh, _ := os.ReadFile(out)
	committed, _ := packFiles.ReadFile("pack/inventory/inventory.wasm")
	if !bytes.Equal(fresh, committed) {
		t.Error("pack/inventory/inventory.wasm differs from a fresh build of inventory.wat; run wat2wasm inventory.wat -o pack/inventory/inventory.wasm")
	}
}

// TestHostFuncReply checks the host function alone, as the guest sees it.
func TestHostFuncReply(t *testing.T) {
	inv := NewInventory()
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{`"apples"`, `{"item":"apples","count":12}`, nil},
		{`"kiwis"`, "", core.ErrNotFound},
	}
	for _, tt := range tests {
		out, err := inv.stockFunc(context.Background(), []byte(tt.in))
		if !errors.Is(err, tt.wantErr) || string(out) != tt.want {
			t.Errorf("stock(%s) = %s, %v; want %s, %v", tt.in, out, err, tt.want, tt.wantErr)
		}
	}
	if _, err := inv.stockFunc(context.Background(), []byte(`{`)); err == nil {
		t.Error("stock({) succeeded; want an error for input that is not a JSON string")
	}
	var r stockReply
	out, _ := inv.stockFunc(context.Background(), []byte(`"plums"`))
	if err := json.Unmarshal(out, &r); err != nil || r.Count != 40 {
		t.Errorf("stock reply %s does not decode to plums 40: %v", out, err)
	}
}
