package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/harness"
	"github.com/porticohq/portico/plugins"
)

var smallEnv = []string{"PORTICO_STORAGE__MEMTABLE_BYTES=1048576", "PORTICO_STORAGE__CACHE_BYTES=1048576"}

// run executes the CLI in-process and returns its stdout and error.
func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut, append(append([]string{}, smallEnv...), env...))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestMain(m *testing.M) {
	if dir, err := hostapi.TestCacheDir(); err == nil {
		harness.CacheDir = dir
	}
	os.Exit(m.Run())
}

func TestVersion(t *testing.T) {
	out, err := run(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "portico ") {
		t.Errorf("version: %q, %v", out, err)
	}
}

func TestUnknownSubcommands(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" for success
	}{
		{[]string{"plugin", "list"}, `unknown command "list" for "portico plugin"; did you mean "portico plugins list"`},
		{[]string{"plugins", "new"}, `did you mean "portico plugin new"`},
		{[]string{"plugins", "lst"}, `did you mean "portico plugins list"`},
		{[]string{"config", "frobnicate"}, `unknown command "frobnicate" for "portico config"`},
		{[]string{"bogus"}, `unknown command "bogus" for "portico"`},
		{[]string{"plugin"}, ""}, // a group alone prints its help
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := run(t, nil, tt.args...)
			if tt.want == "" {
				if err != nil || !strings.Contains(out, "Available Commands") {
					t.Errorf("err %v, out %q", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestConfigValidateAndPrint(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(good, []byte("[log]\nlevel = \"warn\"\n"), 0o600)
	os.WriteFile(bad, []byte("[log]\nlevel = \"loud\"\nbogus = 1\n"), 0o600)

	if out, err := run(t, nil, "config", "validate", good); err != nil || !strings.Contains(out, "is valid") {
		t.Errorf("valid file: %q, %v", out, err)
	}
	_, err := run(t, nil, "config", "validate", bad)
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	msg := errorText(err)
	for _, want := range []string{"log.bogus", "unknown config key", "invalid configuration"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	out, err := run(t, []string{"PORTICO_HTTP__MAX_IN_FLIGHT=9"}, "--config", good, "config", "print")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "level = 'warn'") || !strings.Contains(out, "max_in_flight = 9") {
		t.Errorf("print misses file or env values:\n%s", out)
	}
	out, err = run(t, nil, "--config", good, "--listen", "127.0.0.1:4321", "config", "print", "--json")
	var m map[string]any
	if err != nil || json.Unmarshal([]byte(out), &m) != nil || m["listen"] != "127.0.0.1:4321" {
		t.Errorf("print --json: %v %v\n%s", m["listen"], err, out)
	}
	if _, err := run(t, []string{"PORTICO_LOG_LEVEL=debug"}, "config", "print"); err == nil || !strings.Contains(errorText(err), "PORTICO_LOG__LEVEL") {
		t.Errorf("env typo: %v", err)
	}
}

func TestBackupAndRestoreOffline(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	ctx := context.Background()
	bootstrap(t, src) // an admin user and key to back up

	file := filepath.Join(t.TempDir(), "b.backup")
	if out, err := run(t, nil, "--data-dir", src, "backup", file); err != nil || !strings.Contains(out, "from data dir") {
		t.Fatalf("backup: %q, %v", out, err)
	}
	if out, err := run(t, nil, "--data-dir", dst, "restore", file); err != nil || !strings.Contains(out, "restored") {
		t.Fatalf("restore: %q, %v", out, err)
	}
	// A second restore into the now non-empty dir is refused with a hint.
	if _, err := run(t, nil, "--data-dir", dst, "restore", file); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Errorf("restore into non-empty: %v", err)
	}
	if _, err := run(t, nil, "--data-dir", dst, "restore", "--replace", file); err != nil {
		t.Errorf("restore --replace: %v", err)
	}
	c, err := core.LoadConfig(core.Options{Settings: map[string]string{"data_dir": dst}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := core.OpenKeys(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if list, err := keys.List(); err != nil || len(list) != 1 || list[0].Name != "bootstrap admin key" {
		t.Errorf("restored keys %+v, %v", list, err)
	}
	// A failed backup leaves no file behind.
	missing := filepath.Join(t.TempDir(), "nope.backup")
	if _, err := run(t, []string{"PORTICO_URL=http://127.0.0.1:1"}, "--data-dir", src, "backup", missing); err == nil {
		t.Error("backup from an unreachable gateway succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("failed backup left a file: %v", err)
	}
}

// buildBinary compiles portico once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "portico")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServeProcess runs the real binary: it answers /health, refuses a
// second process on its data dir, serves an online backup, and exits
// cleanly on SIGTERM.
func TestServeProcess(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var logs syncBuffer
	cmd := exec.Command(bin, "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), smallEnv...)
	// The shared compilation cache: a cold compile of every embedded
	// plugin takes tens of seconds while the race run loads both cores.
	if cache, err := hostapi.TestCacheDir(); err == nil {
		cmd.Env = append(cmd.Env, "PORTICO_PLUGIN__CACHE_DIR="+cache)
	}
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
	}()

	var url string
	deadline := time.Now().Add(30 * time.Second)
	for url == "" {
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not record its address; logs:\n%s", logs.String())
		}
		url = core.LocalURL(dir)
		time.Sleep(20 * time.Millisecond)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]any
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health["status"] != "healthy" {
		t.Errorf("health = %v", health)
	}

	second := exec.Command(bin, "--data-dir", dir, "--listen", "127.0.0.1:0")
	second.Env = cmd.Env
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another Portico process") {
		t.Errorf("second process on the same data dir: err %v, output %q", err, out)
	}

	file := filepath.Join(t.TempDir(), "live.backup")
	backup := exec.Command(bin, "--data-dir", dir, "backup", file)
	backup.Env = cmd.Env
	if out, err := backup.CombinedOutput(); err != nil || !strings.Contains(string(out), "from the gateway at "+url) {
		t.Errorf("online backup: %v %s", err, out)
	}

	// Key management goes through the running gateway, with the bootstrap
	// admin key from the data dir.
	keys := exec.Command(bin, "--data-dir", dir, "keys", "create", "--name", "live", "--role", "user")
	keys.Env = cmd.Env
	if out, err := keys.CombinedOutput(); err != nil || !strings.Contains(string(out), "created key") {
		t.Errorf("keys create online: %v %s", err, out)
	}
	resp, err = client.Get(url + "/api/v1/status")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status without a key: %d, want 401", resp.StatusCode)
		}
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	if !strings.Contains(logs.String(), "portico stopped") {
		t.Errorf("no clean stop in the logs:\n%s", logs.String())
	}
	if core.LocalURL(dir) != "" {
		t.Error("address file left behind after shutdown")
	}
}

// bootstrap makes dir a data dir with its first admin user and key, as a
// gateway's first start does, and leaves no gateway holding it.
func bootstrap(t *testing.T, dir string) {
	t.Helper()
	g, err := core.New(core.Options{Settings: map[string]string{"data_dir": dir, "plugin.embedded": "false", "log.level": "error"}, Environ: smallEnv, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestKeysOffline(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, nil, "--data-dir", dir, "keys", "create", "--name", "ci"); err == nil || !strings.Contains(err.Error(), "no admin user") {
		t.Fatalf("create on an empty data dir: %v", err)
	}
	bootstrap(t, dir)

	out, err := run(t, nil, "--data-dir", dir, "keys", "create", "--name", "ci", "--role", "operator", "--expires-in", "24h", "--scopes", "echo,tldr")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "pk_") || len(lines[1]) < 40 {
		t.Fatalf("create output has no secret on line 2:\n%s", out)
	}
	id := strings.Fields(lines[0])[2]
	out, err = run(t, nil, "--data-dir", dir, "keys", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "operator") || strings.Contains(out, lines[1]) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := run(t, nil, "--data-dir", dir, "keys", "create", "--name", "x", "--role", "root"); err == nil {
		t.Error("bad role accepted")
	}
	if out, err := run(t, nil, "--data-dir", dir, "keys", "revoke", id); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if out, _ := run(t, nil, "--data-dir", dir, "keys", "list"); strings.Contains(out, id) {
		t.Errorf("revoked key still listed:\n%s", out)
	}
	if _, err := run(t, nil, "--data-dir", dir, "keys", "revoke", id); err == nil {
		t.Error("revoking twice succeeded")
	}
}

// TestTaskfileParses keeps `go tool task` usable: a YAML error in the
// Taskfile would break every chore.
func TestTaskfileParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Taskfile.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		t.Fatalf("Taskfile.yml: %v", err)
	}
	tasks, _ := m["tasks"].(map[string]any)
	for _, name := range []string{"test", "bench", "check", "plugins"} {
		if _, ok := tasks[name]; !ok {
			t.Errorf("Taskfile.yml has no %q task", name)
		}
	}
}

func TestPluginInspect(t *testing.T) {
	out, err := run(t, nil, "plugin", "inspect", "../../plugins/echo/echo.wasm")
	if err != nil || !strings.Contains(out, "ABI v1.0") || !strings.Contains(out, "loads: yes") || !strings.Contains(out, "portico_skill (i32) -> (i32)") ||
		!strings.Contains(out, "manifest: echo 1.0.0") {
		t.Errorf("inspect echo: %v\n%s", err, out)
	}
	// What the manifest declares and what the SDK-built module exports are
	// shown apart: echo is a skill, though it exports every entry point.
	if !strings.Contains(out, "kinds: skill (declared in plugin.toml)\n") || !strings.Contains(out, "entry points exported for: channel, hook, skill\n") {
		t.Errorf("inspect echo mixes declared and exported kinds:\n%s", out)
	}
	out, err = run(t, nil, "plugin", "inspect", "../../testdata/wasm/newminor.wasm")
	if err != nil || !strings.Contains(out, "would refuse it") || !strings.Contains(out, "v1.5") {
		t.Errorf("inspect newminor: %v\n%s", err, out)
	}
	if _, err := run(t, nil, "plugin", "inspect", "../../testdata/wasm/notwasm.bin"); err == nil {
		t.Error("a file that is not WebAssembly was inspected")
	}
}

// TestPluginBuild builds a copy of the echo plugin with `portico plugin
// build` (inside the module, where the SDK resolves) and checks the result.
func TestPluginBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest; skipped in -short mode")
	}
	dir, err := os.MkdirTemp("../../plugins", "_buildtest-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, f := range []string{"main.go", "plugin.toml"} {
		b, err := os.ReadFile(filepath.Join("../../plugins/echo", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	out, err := run(t, nil, "plugin", "build", dir)
	if err != nil || !strings.Contains(out, "built ") {
		t.Fatalf("build: %v %s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "echo.wasm")); err != nil || fi.Size() == 0 {
		t.Errorf("no module: %v", err)
	}
	out, err = run(t, nil, "plugin", "inspect", filepath.Join(dir, "echo.wasm"))
	if err != nil || !strings.Contains(out, "loads: yes") {
		t.Errorf("inspect the built module: %v\n%s", err, out)
	}
	if _, err := run(t, nil, "plugin", "build", t.TempDir()); err == nil {
		t.Error("a directory without a manifest was built")
	}
}

func TestPluginTestCommand(t *testing.T) {
	for _, p := range plugins.Names {
		out, err := run(t, nil, "plugin", "test", "--no-build", "../../plugins/"+p)
		if err != nil || !strings.Contains(out, " passed, 0 failed") {
			t.Errorf("%s: %v\n%s", p, err, out)
		}
	}
	// A case that does not hold fails the command, naming the case.
	dir := t.TempDir()
	for _, f := range []string{"plugin.toml", "echo.wasm"} {
		b, _ := os.ReadFile(filepath.Join("../../plugins/echo", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	os.WriteFile(filepath.Join(dir, "tests.toml"), []byte("[[case]]\nname = \"wrong\"\nskill = \"echo\"\ninput = '1'\noutput = '2'\n"), 0o600)
	out, err := run(t, nil, "plugin", "test", "--no-build", dir)
	if err == nil || !strings.Contains(out, "FAIL wrong") || !strings.Contains(out, "0 passed, 1 failed") {
		t.Errorf("failing case: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "tests.toml"), []byte("[[case]]\nname = \"x\"\nskil = \"echo\"\n"), 0o600)
	if _, err := run(t, nil, "plugin", "test", "--no-build", dir); err == nil {
		t.Error("a tests.toml with an unknown key was accepted")
	}
	os.WriteFile(filepath.Join(dir, "tests.toml"), []byte("[[case]]\nname = \"both\"\nskill = \"echo\"\nevent = { type = \"a.b\" }\n\n[[case]]\nname = \"neither\"\n"), 0o600)
	if out, err := run(t, nil, "plugin", "test", "--no-build", dir); err == nil || !strings.Contains(out, "FAIL both: set one of skill, event and channel") || !strings.Contains(out, "FAIL neither: set skill") {
		t.Errorf("a case with both or neither of skill and event: %v\n%s", err, out)
	}
}

// TestPluginTestEvents runs event cases (delivered to the hook) against
// the audit plugin, checking its store and a hook's failure.
func TestPluginTestEvents(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"plugin.toml", "audit.wasm"} {
		b, _ := os.ReadFile(filepath.Join("../../plugins/audit", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	os.WriteFile(filepath.Join(dir, "tests.toml"), []byte(`[[case]]
name = "keeps an event"
event = { type = "message.received", data = '{"text":"hi"}' }
kv_after = { seq = "1", "event/0" = '{"seq":0,"type":"message.received","data":{"text":"hi"}}' }

[[case]]
name = "data defaults to null"
event = { type = "config.reloaded" }
kv = { seq = "7" }
kv_after = { seq = "8", "event/7" = '{"seq":7,"type":"config.reloaded","data":null}' }

[[case]]
name = "without kv the hook fails"
event = { type = "config.reloaded" }
grants = []
error = "error"
`), 0o600)
	out, err := run(t, nil, "plugin", "test", "--no-build", dir)
	if err != nil || !strings.Contains(out, "3 passed, 0 failed") {
		t.Errorf("event cases: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "tests.toml"), []byte(`[[case]]
name = "a missing key"
event = { type = "config.reloaded" }
kv_after = { nope = "1" }

[[case]]
name = "a hook that fails"
event = { type = "config.reloaded" }
grants = []
`), 0o600)
	out, err = run(t, nil, "plugin", "test", "--no-build", dir)
	if err == nil || !strings.Contains(out, `FAIL a missing key: kv_after: no key "nope"`) || !strings.Contains(out, "FAIL a hook that fails") {
		t.Errorf("failing event cases: %v\n%s", err, out)
	}
}

// TestSDKCopyInSync keeps the SDK the binary carries identical to sdk/.
func TestSDKCopyInSync(t *testing.T) {
	want := map[string][]byte{}
	files, _ := filepath.Glob("../../sdk/*")
	internal, _ := filepath.Glob("../../sdk/internal/*/*")
	for _, f := range append(files, internal...) {
		b, _ := filepath.Rel("../../sdk", f)
		if (strings.HasSuffix(b, ".go") && !strings.HasSuffix(b, "_test.go")) || b == "go.mod" {
			want[filepath.ToSlash(b)+".txt"], _ = os.ReadFile(f)
		}
	}
	got := map[string]bool{}
	err := fs.WalkDir(sdkCopy, "sdkcopy", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimPrefix(path, "sdkcopy/")
		got[name] = true
		b, _ := sdkCopy.ReadFile(path)
		if w, ok := want[name]; !ok || !bytes.Equal(b, w) {
			t.Errorf("sdkcopy/%s differs from sdk/ (or is not there); run go generate ./cmd/portico", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if !got[name] {
			t.Errorf("sdk/%s is missing from sdkcopy; run go generate ./cmd/portico", strings.TrimSuffix(name, ".txt"))
		}
	}
}

// TestPluginNew scaffolds a plugin outside the repository and builds and
// tests it with the module proxy off, as a new author would.
func TestPluginNew(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest; skipped in -short mode")
	}
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	dir := filepath.Join(t.TempDir(), "hello")
	if out, err := run(t, nil, "plugin", "new", "skill", "hello", "--dir", dir); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("new: %v %s", err, out)
	}
	cmd := exec.Command("go", "test", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test in the scaffold: %v\n%s", err, out)
	}
	out, err := run(t, nil, "plugin", "test", dir)
	if err != nil || !strings.Contains(out, "2 passed, 0 failed") {
		t.Fatalf("plugin test: %v\n%s", err, out)
	}
	if _, err := run(t, nil, "plugin", "new", "skill", "hello", "--dir", dir); err == nil {
		t.Error("scaffolding over an existing directory succeeded")
	}
	if _, err := run(t, nil, "plugin", "new", "skill", "Bad Name"); err == nil {
		t.Error("a bad name was accepted")
	}
	if _, err := run(t, nil, "plugin", "new", "middleware", "x", "--dir", filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "supported kinds: channel, hook, skill") {
		t.Errorf("an unknown kind: %v", err)
	}
}

// TestPluginNewHook scaffolds a hook plugin and builds and tests it offline,
// its tests.toml delivering events through the harness.
func TestPluginNewHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest; skipped in -short mode")
	}
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	dir := filepath.Join(t.TempDir(), "counter")
	if out, err := run(t, nil, "plugin", "new", "hook", "counter", "--dir", dir); err != nil || !strings.Contains(out, "created hook") {
		t.Fatalf("new: %v %s", err, out)
	}
	man, err := os.ReadFile(filepath.Join(dir, "plugin.toml"))
	if err != nil || !strings.Contains(string(man), `kinds = ["hook", "skill"]`) {
		t.Fatalf("manifest: %v\n%s", err, man)
	}
	cmd := exec.Command("go", "test", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test in the scaffold: %v\n%s", err, out)
	}
	out, err := run(t, nil, "plugin", "test", dir)
	if err != nil || !strings.Contains(out, "4 passed, 0 failed") {
		t.Fatalf("plugin test: %v\n%s", err, out)
	}
	// Cases that do not hold fail, saying why.
	os.WriteFile(filepath.Join(dir, "tests.toml"), []byte(`[[case]]
name = "wrong count"
event = { type = "config.reloaded" }
kv_after = { counts = '{"config.reloaded":2}' }

[[case]]
name = "wrong log"
event = { type = "config.reloaded" }
logs_contain = ["event plugin.loaded"]

[[case]]
name = "a hook has no reply"
event = { type = "config.reloaded" }
output = '1'
`), 0o600)
	out, err = run(t, nil, "plugin", "test", "--no-build", dir)
	for _, want := range []string{`FAIL wrong count: kv_after: "counts" = {"config.reloaded":1}`, `FAIL wrong log: no log line contains "event plugin.loaded"`, "FAIL a hook has no reply", "0 passed, 3 failed"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("failing hook cases: want %q; %v\n%s", want, err, out)
		}
	}
}

// TestPluginNewChannel scaffolds a channel outside the repository and runs
// its unit tests and tests.toml offline.
func TestPluginNewChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest; skipped in -short mode")
	}
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	dir := filepath.Join(t.TempDir(), "chatx")
	if out, err := run(t, nil, "plugin", "new", "channel", "chatx", "--dir", dir); err != nil || !strings.Contains(out, "created channel") {
		t.Fatalf("new: %v %s", err, out)
	}
	cmd := exec.Command("go", "test", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test in the scaffold: %v\n%s", err, out)
	}
	out, err := run(t, nil, "plugin", "test", dir)
	if err != nil || !strings.Contains(out, "4 passed, 0 failed") {
		t.Fatalf("plugin test: %v\n%s", err, out)
	}
	rep, err := run(t, nil, "plugin", "inspect", filepath.Join(dir, "chatx.wasm"))
	if err != nil || !strings.Contains(rep, "ABI v1.1") {
		t.Errorf("inspect: %v\n%s", err, rep)
	}
}
