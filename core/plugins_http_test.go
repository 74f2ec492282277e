package core_test

import (
	"bytes"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSkillsOverHTTP(t *testing.T) {
	t.Parallel()
	// A hostile plugin (an endless loop) beside the embedded echo.
	dir := t.TempDir()
	loop := filepath.Join(dir, "looper")
	os.MkdirAll(loop, 0o700)
	os.WriteFile(filepath.Join(loop, "plugin.toml"), []byte("name = \"looper\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"spin\"\ndescription = \"never answers\"\ninput_schema = '{\"type\":\"integer\"}'\n"), 0o600)
	wasm, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", "loop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(loop, "looper.wasm"), wasm, 0o600)
	g := start(t, small+"[[plugins]]\nname = \"looper\"\npath = \""+loop+"\"\ncall_timeout = \"100ms\"\n"+
		"[[plugins]]\nname = \"notes\"\ngrants = [\"kv\"]\n[[plugins]]\nname = \"audit\"\ngrants = [\"kv\"]\n")

	list := g.do(t, "GET", g.url+"/api/v1/skills", "").json(t)
	if list["total"] != 11.0 { // echo, spin, notes' four, audit_log, summarize, http_get, reverse, ask
		t.Fatalf("skills: %v", list)
	}
	r := g.do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":{"text":"hello"}}`)
	if r.status != 200 || get(r.json(t), "output.text") != "hello" || r.json(t)["plugin"] != "echo" {
		t.Fatalf("invoke echo: %d %s", r.status, r.body)
	}
	if d, ok := r.json(t)["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %#v, want a JSON number", r.json(t)["duration_ms"])
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/spin/invoke", `{"input":1}`); r.status != 504 || r.errCode(t) != "plugin_timeout" || !strings.Contains(string(r.body), "looper") {
		t.Errorf("looping skill: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/spin/invoke", `{"input":"one"}`); r.status != 400 || !strings.Contains(string(r.body), "schema") {
		t.Errorf("input against the schema: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":"still fine"}`); r.status != 200 {
		t.Errorf("echo after the loop: %d %s", r.status, r.body)
	}
	// The embedded notes plugin, granted kv by its table.
	if r := g.do(t, "POST", g.url+"/api/v1/skills/remember/invoke", `{"input":{"key":"k","text":"milk"}}`); r.status != 200 {
		t.Errorf("remember: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/recall/invoke", `{"input":{"key":"k"}}`); r.status != 200 || get(r.json(t), "output.text") != "milk" {
		t.Errorf("recall: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/recall/invoke", `{"input":{"key":"none"}}`); r.status != 400 || !strings.Contains(string(r.body), "no note") {
		t.Errorf("recall missing: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/remember/invoke", `{"input":{"key":"k"}}`); r.status != 400 {
		t.Errorf("remember without text (schema): %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/nope/invoke", `{}`); r.status != 404 {
		t.Errorf("unknown skill: %d", r.status)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"inputs":1}`); r.status != 400 {
		t.Errorf("unknown field: %d", r.status)
	}

	// A key scoped to another skill is refused, naming the skill.
	r = g.do(t, "POST", g.url+"/api/v1/keys", `{"name":"scoped","role":"user","scopes":["spin"]}`)
	scoped := r.json(t)["secret"].(string)
	if r := do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":1}`, "X-API-Key", scoped); r.status != 403 || !strings.Contains(string(r.body), `\"echo\"`) {
		t.Errorf("scoped key on another skill: %d %s", r.status, r.body)
	}
	if l := do(t, "GET", g.url+"/api/v1/skills", "", "X-API-Key", scoped).json(t); l["total"] != 1.0 {
		t.Errorf("scoped key sees %v skills", l["total"])
	}

	// Disable, enable, reload over the API.
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/echo/disable", ""); r.status != 200 || r.json(t)["status"] != "disabled" {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/echo/invoke", `{"input":1}`); r.status != 409 || r.errCode(t) != "plugin_disabled" {
		t.Errorf("disabled: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/echo/enable", ""); r.status != 200 || r.json(t)["status"] != "active" {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/echo/reload", ""); r.status != 200 {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/plugins/ghost/reload", ""); r.status != 404 {
		t.Errorf("reload unknown: %d", r.status)
	}
	info := g.do(t, "GET", g.url+"/api/v1/plugins/echo", "").json(t)
	if info["status"] != "active" || info["module_sha256"] == "" || get(info, "stats.calls") == nil {
		t.Errorf("plugin info: %v", info)
	}
	st := g.do(t, "GET", g.url+"/api/v1/status", "").json(t)
	if get(st, "plugins.total") != 13.0 || get(st, "plugins.active") != 13.0 { // the embedded twelve and looper
		t.Errorf("status plugins: %v", st["plugins"])
	}
	// The embedded audit hook saw the plugin events (disable, enable, reload).
	eventually(t, "the audit hook to record plugin.disabled", func() bool {
		r := g.do(t, "POST", g.url+"/api/v1/skills/audit_log/invoke", `{"input":{"limit":50}}`)
		return r.status == 200 && strings.Contains(string(r.body), "plugin.disabled")
	})
	if r := g.do(t, "POST", g.url+"/api/v1/skills/reverse/invoke", `{"input":"abc"}`); r.status != 200 || r.json(t)["output"] != "cba" {
		t.Errorf("reverse (WAT): %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/summarize/invoke", `{"input":{"text":"Short."}}`); r.status != 200 || get(r.json(t), "output.method") != "extractive" {
		t.Errorf("summarize: %d %s", r.status, r.body)
	}
	if n := g.do(t, "GET", g.url+"/api/v1/audit?action=plugin.disable", "").json(t)["total"]; n != 1.0 {
		t.Errorf("plugin.disable audited %v times", n)
	}
}

func TestInstallOverHTTP(t *testing.T) {
	t.Parallel()
	g := start(t, small)
	wasm, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", "ok.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	upload := func(manifest string, module []byte) response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("manifest", "plugin.toml")
		fw.Write([]byte(manifest))
		fw, _ = mw.CreateFormFile("module", "memo.wasm")
		fw.Write(module)
		mw.Close()
		return g.do(t, "POST", g.url+"/api/v1/plugins", body.String(), "Content-Type", mw.FormDataContentType())
	}
	manifest := "name = \"memo\"\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = \"memo\"\ndescription = \"n\"\n"
	if r := upload(manifest, []byte("garbage")); r.status != 400 || !strings.Contains(string(r.body), "WebAssembly") {
		t.Errorf("bad module: %d %s", r.status, r.body)
	}
	if r := upload(manifest, wasm); r.status != 201 || r.json(t)["status"] != "active" {
		t.Fatalf("install: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/memo/invoke", `{"input":"x"}`); r.status != 200 {
		t.Errorf("invoke installed: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/plugins", "{}", "Content-Type", "application/json"); r.status != 400 {
		t.Errorf("not multipart: %d", r.status)
	}
	if r := g.do(t, "DELETE", g.url+"/api/v1/plugins/echo", ""); r.status != 409 {
		t.Errorf("uninstall embedded: %d", r.status)
	}
	if r := g.do(t, "DELETE", g.url+"/api/v1/plugins/memo?purge=true", ""); r.status != 204 {
		t.Errorf("uninstall: %d %s", r.status, r.body)
	}
	if r := g.do(t, "POST", g.url+"/api/v1/skills/memo/invoke", `{}`); r.status != 404 {
		t.Errorf("uninstalled skill: %d", r.status)
	}
	g.do(t, "PATCH", g.url+"/api/v1/config", `{"plugin.max_upload_bytes":100}`)
	if r := upload(manifest, wasm); r.status != 413 || r.errCode(t) != "too_large" {
		t.Errorf("over the upload limit: %d %s", r.status, r.body)
	}
	if n := g.do(t, "GET", g.url+"/api/v1/audit?action=plugin.install", "").json(t)["total"]; n != 2.0 {
		t.Errorf("installs audited: %v", n)
	}
}
