package core

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/plugins"
)

func reverseTree(t testing.TB) fs.FS {
	t.Helper()
	manifest, err1 := fs.ReadFile(plugins.FS, "reverse/plugin.toml")
	module, err2 := fs.ReadFile(plugins.FS, "reverse/reverse.wasm")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"reverse/plugin.toml": {Data: manifest}, "reverse/reverse.wasm": {Data: module}}
}

func testOptions(t testing.TB) Options {
	return Options{
		Settings: map[string]string{"listen": "127.0.0.1:0", "data_dir": t.TempDir(), "plugin.embedded": "false"},
		Logger:   slog.New(slog.DiscardHandler),
	}
}

// closeCounter is a Store that counts Close calls.
type closeCounter struct {
	Store
	closed atomic.Int32
	sets   atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return c.Store.Close() }
func (c *closeCounter) Set(ctx context.Context, k, v []byte) error {
	c.sets.Add(1)
	return c.Store.Set(ctx, k, v)
}

func TestNewRefusesBadOptions(t *testing.T) {
	h := http.NotFoundHandler()
	fn := func(context.Context, []byte) ([]byte, error) { return nil, nil }
	tests := []struct {
		name string
		edit func(*Options)
		is   error
		want string
	}{
		{"route without role", func(o *Options) { o.Routes = []Route{{Prefix: "/acme", Handler: h}} }, ErrInvalidOption, "is not a role"},
		{"route nil handler", func(o *Options) { o.Routes = []Route{{Prefix: "/acme", Role: RoleUser}} }, ErrInvalidOption, "handler is nil"},
		{"route reserved", func(o *Options) { o.Routes = []Route{{Prefix: "/health/x", Role: RoleUser, Handler: h}} }, ErrInvalidOption, "/health is Portico's own"},
		{"route twice", func(o *Options) {
			o.Routes = []Route{{Prefix: "/acme", Role: RoleUser, Handler: h}, {Prefix: "/acme/v2", Role: RolePublic, Handler: h}}
		}, ErrInvalidOption, "already uses /acme"},
		{"route pattern", func(o *Options) { o.Routes = []Route{{Prefix: "/acme/{id}", Role: RoleUser, Handler: h}} }, ErrInvalidOption, "must look like"},
		{"route no slash", func(o *Options) { o.Routes = []Route{{Prefix: "acme", Role: RoleUser, Handler: h}} }, ErrInvalidOption, "must look like"},
		{"host func reserved", func(o *Options) {
			o.HostFuncs = []HostFunc{{Module: "wasi_snapshot_preview1", Name: "x", Capability: "a.x", Fn: fn}}
		}, ErrInvalidOption, "reserved"},
		{"host func twice", func(o *Options) {
			o.HostFuncs = []HostFunc{{Module: "a", Name: "x", Capability: "a.x", Fn: fn}, {Module: "a", Name: "x", Capability: "a.y", Fn: fn}}
		}, ErrInvalidOption, "defined twice"},
		{"nil plugin tree", func(o *Options) { o.Plugins = []fs.FS{nil} }, ErrInvalidOption, "Plugins[0] is nil"},
		{"empty plugin tree", func(o *Options) { o.Plugins = []fs.FS{fstest.MapFS{"x.txt": {}}} }, ErrInvalidOption, "neither pack.toml nor a plugin directory"},
		{"plugin twice", func(o *Options) { o.Plugins = []fs.FS{reverseTree(t), reverseTree(t)} }, ErrInvalidOption, `plugin "reverse" is also in Plugins[0]`},
		{"broken pack", func(o *Options) { o.Plugins = []fs.FS{fstest.MapFS{"pack.toml": {Data: []byte("name = 1")}}} }, ErrInvalidOption, "Plugins[0]"},
		{"bad admin key", func(o *Options) { o.AdminKey = "hunter2" }, ErrInvalidOption, "AdminKey"},
		{"bad config", func(o *Options) { o.Config = []byte("[log]\nlevel = \"loud\"\n") }, ErrInvalidConfig, "log.level (from base)"},
		{"bad setting", func(o *Options) { o.Settings["nope"] = "1" }, ErrInvalidConfig, "nope"},
		{"bad environment", func(o *Options) { o.Environ = []string{"PORTICO_NOPE=1"} }, ErrInvalidConfig, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(t)
			st := &closeCounter{Store: NewMemoryStore()}
			o.Store = st
			tt.edit(&o)
			gw, err := New(o)
			if gw != nil || !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want %v mentioning %q", gw, err, tt.is, tt.want)
			}
			if n := st.closed.Load(); n != 1 {
				t.Errorf("the Store was closed %d times, want once", n)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t)
	st := &closeCounter{Store: NewMemoryStore()}
	o.Store, o.Plugins = st, []fs.FS{reverseTree(t)}
	o.Routes = []Route{{Prefix: "/open", Role: RolePublic, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("open")) })}}
	gw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Invoke(ctx, "reverse", []byte(`"ab"`)); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Invoke before Start = %v, want ErrNotStarted", err)
	}
	if _, err := gw.Subscribe("plugin.*", 0); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Subscribe with buffer 0 = %v, want ErrInvalidOption", err)
	}
	if _, err := gw.Subscribe("plugin.**", 1); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Subscribe with a bad pattern = %v, want ErrInvalidOption", err)
	}
	sub, err := gw.Subscribe("*", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	if out, err := gw.Invoke(ctx, "reverse", []byte(`"ab"`)); err != nil || string(out) != `"ba"` {
		t.Errorf("Invoke = %s, %v", out, err)
	}
	rec := httptest.NewRecorder()
	gw.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/open/x", nil))
	if rec.Code != 200 || rec.Body.String() != "open" || rec.Header().Get("X-Ratelimit-Limit") == "" {
		t.Errorf("public route = %d %q (rate-limit header %q)", rec.Code, rec.Body, rec.Header().Get("X-Ratelimit-Limit"))
	}
	if st.sets.Load() == 0 {
		t.Error("the gateway wrote nothing to the Store it was given")
	}
	for e := range sub.Events() {
		if e.Type == "plugin.loaded" && strings.Contains(string(e.Data), `"plugin":"reverse"`) {
			break
		}
	}
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range sub.Events() { // ends: Shutdown closes the subscription
	}
	if err := gw.Shutdown(ctx); err != nil {
		t.Errorf("a second Shutdown = %v", err)
	}
	if st.closed.Load() != 1 {
		t.Errorf("the Store was closed %d times, want once", st.closed.Load())
	}
	if _, err := gw.Invoke(ctx, "reverse", []byte(`"ab"`)); !errors.Is(err, ErrStopped) {
		t.Errorf("Invoke after Shutdown = %v, want ErrStopped", err)
	}
	if err := gw.Start(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Shutdown = %v, want ErrStopped", err)
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	a := &storeAdapter{s: s}
	for _, kv := range [][2]string{{"a/1", "x"}, {"a/2", "y"}, {"a/3", "z"}, {"b/1", "w"}} {
		if err := a.Set(ctx, []byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(prefix string, opts store.ScanOptions, stopAt string) (string, error) {
		var got []string
		err := a.Scan(ctx, []byte(prefix), opts, func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			if string(k) == stopAt {
				return store.ErrStop
			}
			return nil
		})
		return strings.Join(got, ","), err
	}
	tests := []struct {
		name   string
		prefix string
		opts   store.ScanOptions
		stopAt string
		want   string
	}{
		{"prefix", "a/", store.ScanOptions{}, "", "a/1=x,a/2=y,a/3=z"},
		{"reverse", "a/", store.ScanOptions{Reverse: true}, "", "a/3=z,a/2=y,a/1=x"},
		{"keys only", "b/", store.ScanOptions{KeysOnly: true}, "", "b/1="},
		{"stopped", "a/", store.ScanOptions{}, "a/2", "a/1=x,a/2=y"},
		{"none", "c/", store.ScanOptions{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scan(tt.prefix, tt.opts, tt.stopAt)
			if err != nil || got != tt.want {
				t.Errorf("scan = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("write during scan", func(t *testing.T) {
		err := a.Scan(ctx, []byte("a/"), store.ScanOptions{}, func(k, v []byte) error { return a.Delete(ctx, k) })
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := scan("a/", store.ScanOptions{}, ""); got != "" {
			t.Errorf("left after deleting in a scan: %q", got)
		}
	})
	t.Run("update", func(t *testing.T) {
		boom := errors.New("boom")
		err := a.Update(ctx, func(tx store.Txn) error {
			tx.Set([]byte("u"), []byte("1"))
			if v, err := tx.Get([]byte("u")); err != nil || string(v) != "1" {
				t.Errorf("the transaction does not see its own write: %q %v", v, err)
			}
			tx.Delete([]byte("b/1"))
			if _, err := tx.Get([]byte("b/1")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the transaction still sees its own delete: %v", err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v", err)
		}
		if _, err := a.Get(ctx, []byte("u")); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed transaction's write is visible: %v", err)
		}
		if v, err := a.Get(ctx, []byte("b/1")); err != nil || string(v) != "w" {
			t.Errorf("a failed transaction's delete applied: %q %v", v, err)
		}
		if err := a.Update(ctx, func(tx store.Txn) error { return tx.Set([]byte("u"), []byte("2")) }); err != nil {
			t.Fatal(err)
		}
		if v, _ := a.Get(ctx, []byte("u")); string(v) != "2" {
			t.Errorf("a committed write reads %q", v)
		}
	})
	t.Run("copies", func(t *testing.T) {
		v := []byte("mine")
		a.Set(ctx, []byte("c"), v)
		v[0] = 'X'
		got, _ := a.Get(ctx, []byte("c"))
		got[1] = 'Y'
		if again, _ := a.Get(ctx, []byte("c")); string(again) != "mine" {
			t.Errorf("the store shares memory with its callers: %q", again)
		}
	})
	t.Run("closed", func(t *testing.T) {
		a.Close()
		if _, err := a.Get(ctx, []byte("c")); err == nil {
			t.Error("Get on a closed store succeeded")
		}
		if err := a.Set(ctx, []byte("c"), nil); err == nil {
			t.Error("Set on a closed store succeeded")
		}
	})
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RolePublic: "public", RoleUser: "user", RoleOperator: "operator", RoleAdmin: "admin", 0: "Role(0)", 9: "Role(9)"} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}
