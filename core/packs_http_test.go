package core_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/porticohq/portico/core/pack"
)

// duoArchive builds the pack "duo" at version as a .tar.gz: plugins duo-a
// and duo-b, whose skills of the same names run testdata/wasm/<module>.wasm
// (v1 and v2 answer "v1" and "v2"). edit may change the files; key, when
// set, signs the pack.
func duoArchive(t *testing.T, version, module string, edit func(fstest.MapFS), key ed25519.PrivateKey) []byte {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", module+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"pack.toml": {Data: []byte(fmt.Sprintf("name = \"duo\"\nversion = %q\nabi = \"v1.0\"\n"+
		"[[plugins]]\nname = \"duo-a\"\n[[plugins]]\nname = \"duo-b\"\n", version))}}
	for _, name := range []string{"duo-a", "duo-b"} {
		fsys[name+"/plugin.toml"] = &fstest.MapFile{Data: []byte(fmt.Sprintf("name = %q\nversion = %q\nkinds = [\"skill\"]\n"+
			"[[skills]]\nname = %q\ndescription = \"answers its version\"\n", name, version, name))}
		fsys[name+"/"+name+".wasm"] = &fstest.MapFile{Data: wasm}
	}
	if edit != nil {
		edit(fsys)
	}
	p, err := pack.Parse(fsys, pack.Limits{})
	if err != nil {
		return rawArchive(t, fsys) // a broken pack, sent as it is
	}
	if key != nil {
		p.Sign(key)
	}
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawArchive writes files as a .tar.gz without checking them.
func rawArchive(t *testing.T, files fstest.MapFS) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.Data)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func packKey(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := pack.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pack.FormatPublicKey(pub)
}

// TestPacksOverHTTP: bad packs are refused with the error envelope and
// change nothing; an upgrade under load drops no request.
func TestPacksOverHTTP(t *testing.T) {
	t.Parallel()
	key, pub := packKey(t)
	other, _ := packKey(t)
	g := start(t, small+"[packs]\ntrusted_keys = [\""+pub+"\"]\n")
	post := func(body []byte) response {
		return g.do(t, "POST", g.url+"/api/v1/packs", string(body), "Content-Type", "application/gzip")
	}
	answer := func(skill string) string {
		r := g.do(t, "POST", g.url+"/api/v1/skills/"+skill+"/invoke", `{"input":{}}`)
		if r.status != 200 {
			t.Fatalf("invoke %s: %d %s", skill, r.status, r.body)
		}
		return fmt.Sprint(r.json(t)["output"])
	}
	if r := post(duoArchive(t, "1.0.0", "v1", nil, key)); r.status != 201 || r.json(t)["trusted"] != true {
		t.Fatalf("install v1: %d %s", r.status, r.body)
	}

	// Tampered: v1 modules under the signature of the v2 pack.
	signed, err := pack.Read(bytes.NewReader(duoArchive(t, "2.0.0", "v2", nil, key)), pack.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	swapped, _ := pack.Read(bytes.NewReader(duoArchive(t, "2.0.0", "v1", nil, nil)), pack.Limits{})
	swapped.Signature = signed.Signature
	var tampered bytes.Buffer
	swapped.WriteTo(&tampered)

	tests := []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"tampered", tampered.Bytes(), 400, "changed after signing"},
		{"wrong key", duoArchive(t, "2.0.0", "v2", nil, other), 400, "not among the trusted keys"},
		{"unsigned", duoArchive(t, "2.0.0", "v2", nil, nil), 400, "has no pack.sig"},
		{"missing plugin", duoArchive(t, "2.0.0", "v2", func(m fstest.MapFS) {
			delete(m, "duo-b/plugin.toml")
			delete(m, "duo-b/duo-b.wasm")
		}, key), 400, "is listed in pack.toml but duo-b/plugin.toml is missing"},
		{"ABI too new", duoArchive(t, "2.0.0", "v2", func(m fstest.MapFS) {
			m["pack.toml"].Data = bytes.Replace(m["pack.toml"].Data, []byte("v1.0"), []byte("v1.999"), 1)
		}, key), 400, "needs ABI v1.999"},
		{"not an archive", []byte("plugin.toml"), 400, "not a .tar.gz"},
	}
	for _, tt := range tests {
		r := post(tt.body)
		if r.status != tt.status || !strings.Contains(string(r.body), tt.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, r.status, r.body, tt.status, tt.msg)
			continue
		}
		r.errCode(t) // the error envelope
		for _, skill := range []string{"duo-a", "duo-b"} {
			if got := answer(skill); got != "v1" {
				t.Errorf("%s: %s answers %q after a refused upgrade", tt.name, skill, got)
			}
		}
	}
	if n := g.do(t, "GET", g.url+"/api/v1/audit?action=pack.install", "").json(t)["total"]; n != float64(1+len(tests)) {
		t.Errorf("pack installs audited %v times, want %d", n, 1+len(tests))
	}

	// Upgrade under load: callers keep invoking both skills over HTTP.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	failures := make(chan string, 16)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			skill := []string{"duo-a", "duo-b"}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := g.do(t, "POST", g.url+"/api/v1/skills/"+skill+"/invoke", `{"input":{}}`)
				calls.Add(1)
				if out := fmt.Sprint(r.json(t)["output"]); r.status != 200 || (out != "v1" && out != "v2") {
					failures <- fmt.Sprintf("%s: %d %s", skill, r.status, r.body)
					return
				}
			}
		}()
	}
	for calls.Load() < 50 {
		runtime.Gosched()
	}
	r := post(duoArchive(t, "2.0.0", "v2", nil, key))
	for start := calls.Load(); calls.Load() < start+50; {
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error("a call failed during the upgrade:", f)
	}
	if r.status != 200 || r.json(t)["previous_version"] != "1.0.0" {
		t.Fatalf("upgrade: %d %s", r.status, r.body)
	}
	for _, skill := range []string{"duo-a", "duo-b"} {
		if got := answer(skill); got != "v2" {
			t.Errorf("%s answers %q after the upgrade", skill, got)
		}
		if p := g.do(t, "GET", g.url+"/api/v1/plugins/"+skill, "").json(t)["pack"]; fmt.Sprint(p) != "map[name:duo version:2.0.0]" {
			t.Errorf("%s: pack = %v", skill, p)
		}
	}
	if r := g.do(t, "GET", g.url+"/api/v1/packs", ""); r.status != 200 || r.json(t)["total"] != 1.0 {
		t.Errorf("list packs: %d %s", r.status, r.body)
	}
	// The body limit is packs.max_upload_bytes.
	g.do(t, "PATCH", g.url+"/api/v1/config", `{"packs.max_upload_bytes":100}`)
	if r := post(duoArchive(t, "3.0.0", "v1", nil, key)); r.status != 413 || r.errCode(t) != "too_large" {
		t.Errorf("over the upload limit: %d %s", r.status, r.body)
	}
}
