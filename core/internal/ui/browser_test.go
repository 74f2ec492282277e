package ui_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/internal/testtool"

	"github.com/chromedp/chromedp"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/hostapi"
)

// browser finds Debian's chromium (or another Chrome), or skips the test
// (fails it in CI): see testtool.
func browser(t *testing.T) string {
	t.Helper()
	return testtool.Need(t, "apt-get install chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
}

// artifacts is where screenshots go: PORTICO_TEST_ARTIFACTS when set (CI
// keeps them), else the test's temporary directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PORTICO_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInBrowser drives the console in real headless Chromium
// against a real gateway: sign in, see the plugins, disable echo and see
// both the table and the API agree, enable it again, and watch a log line
// arrive in the live tail.
func TestConsoleInBrowser(t *testing.T) {
	exe := browser(t)
	if testing.Short() {
		t.Skip("starts a gateway and a browser; skipped in -short mode")
	}
	shots := artifacts(t)

	cache, err := hostapi.TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := auth.NewSecret()
	g, err := core.New(core.Options{
		Environ: []string{"PORTICO_ADMIN_KEY=" + key, "PORTICO_PLUGIN__CACHE_DIR=" + cache,
			"PORTICO_STORAGE__MEMTABLE_BYTES=1048576", "PORTICO_STORAGE__CACHE_BYTES=1048576"},
		Settings:  map[string]string{"data_dir": dir, "listen": "127.0.0.1:0"},
		LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	base := "http://" + g.Addr()

	// A session with a turn, so the sessions view has a transcript.
	if st, b := apiCall(t, base, key, "POST", "/api/v1/chat", `{"text":"/echo hello from the browser test"}`); st != http.StatusCreated {
		t.Fatalf("chat: %d %s", st, b)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	// One deadline for the whole browser session, so a stuck page fails
	// the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(ctx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			path := filepath.Join(shots, name)
			t.Logf("screenshot %s", path)
			return os.WriteFile(path, png, 0o644)
		})
	}
	run := func(step string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage text:\n%s", step, err, page)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	echo := `#plugins tr[data-name="echo"]`

	run("sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS(`#cards [data-card="Plugins active"]`)),
		// Request counts come from /metrics, parsed in the page.
		chromedp.WaitVisible(chromedp.Search(`//div[@data-card="Requests"][contains(., "since start")]`)),
		chromedp.WaitVisible(chromedp.CSS(`#cards [data-card="Server errors (5xx)"]`)),
		shot("console-overview.png"),
	)
	stored := eval(`sessionStorage.getItem('portico.key') + '|' + document.cookie + '|' + location.href`)
	if !strings.HasPrefix(stored, key+"|") || strings.Contains(strings.TrimPrefix(stored, key), key) {
		t.Errorf("the key should live in sessionStorage only, not in a cookie or the URL: %q", stored)
	}

	run("see the plugin list",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="plugins"]`)),
		chromedp.WaitVisible(chromedp.CSS(echo+`[data-status="active"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#plugins tr[data-name="reverse"]`)),
	)

	run("disable echo",
		chromedp.Click(chromedp.CSS(echo+` button[data-action="disable"]`)),
		chromedp.WaitVisible(chromedp.CSS(echo+`[data-status="disabled"] button[data-action="enable"]`)),
		shot("console-plugins.png"),
	)
	if st, b := apiCall(t, base, key, "POST", "/api/v1/skills/echo/invoke", `{"input":"x"}`); st != http.StatusConflict || !strings.Contains(string(b), "plugin_disabled") {
		t.Errorf("echo while disabled in the console: %d %s, want 409 plugin_disabled", st, b)
	}
	if st, b := apiCall(t, base, key, "GET", "/api/v1/plugins/echo", ""); st != http.StatusOK || !strings.Contains(string(b), `"status":"disabled"`) {
		t.Errorf("echo's status over the API: %d %s", st, b)
	}

	run("enable echo",
		chromedp.Click(chromedp.CSS(echo+` button[data-action="enable"]`)),
		chromedp.WaitVisible(chromedp.CSS(echo+`[data-status="active"] button[data-action="disable"]`)),
	)
	if st, b := apiCall(t, base, key, "POST", "/api/v1/skills/echo/invoke", `{"input":"x"}`); st != http.StatusOK {
		t.Errorf("echo after enabling in the console: %d %s", st, b)
	}

	run("read a transcript",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="sessions"]`)),
		chromedp.Click(chromedp.CSS(`#sessions tbody tr.clickable`)),
		chromedp.WaitVisible(chromedp.Search(`//ol[contains(@class,"messages")]/li[contains(., "hello from the browser test")]`)),
		shot("console-sessions.png"),
	)

	// The tail must be live before the marked request, so the line can only
	// arrive through the stream.
	run("open the live tail",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="logs"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#log-state[data-state="live"]`)),
	)
	var b [6]byte
	rand.Read(b[:])
	marker := "marker-" + hex.EncodeToString(b[:])
	if st, _ := apiCall(t, base, key, "GET", "/api/v1/plugins/"+marker, ""); st != http.StatusNotFound {
		t.Fatalf("marked request: %d", st)
	}
	run("watch the log line arrive",
		chromedp.WaitVisible(chromedp.Search(`//ol[@id="log-lines"]/li[contains(., "`+marker+`")]`)),
		shot("console-logs.png"),
	)

	run("config view",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="config"]`)),
		chromedp.WaitVisible(chromedp.Search(`//pre[@id="config-body"][contains(., "data_dir")]`)),
	)

	run("sign out",
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#key")),
	)
	if stored := eval(`String(sessionStorage.getItem('portico.key'))`); stored != "null" {
		t.Errorf("key left in sessionStorage after sign-out: %q", stored)
	}

	run("a wrong key is refused",
		chromedp.SendKeys(chromedp.CSS("#key"), auth.NewSecret()),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="flash"][contains(., "The key was refused")]`)),
	)
}

func apiCall(t *testing.T, base, key, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && !json.Valid(b) {
		t.Errorf("%s %s: invalid JSON %s", method, path, b)
	}
	return resp.StatusCode, b
}
