package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/porticohq/portico/internal/testtool"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
)

// guide is the plugin author's guide that TestGuide follows.
const guide = "docs/plugin-authoring.md"

// guideBlock is one fenced block of the guide.
type guideBlock struct {
	lang string
	line int // of the opening fence
	body string
}

// guidePath matches the first line of a block that names the file it is:
// "// plugins/shout/main.go", "# plugins/shout/plugin.toml".
var guidePath = regexp.MustCompile(`^(?://|#)\s*([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\.[a-z]+)\s*$`)

func parseGuide(md string) []guideBlock {
	var blocks []guideBlock
	var cur *guideBlock
	var body strings.Builder
	for i, l := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &guideBlock{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 1}
			body.Reset()
		case cur != nil && strings.TrimSpace(l) == "```":
			cur.body = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(l + "\n")
		}
	}
	return blocks
}

// TestGuide follows docs/plugin-authoring.md as a new author would, on a
// copy of the repository with the module proxy off: go and toml blocks
// whose first line names a path are written there, and sh blocks run in
// order with bash, from the copy's root, with a freshly built portico first
// on PATH and, from the first block that uses curl, a gateway running in
// the copy (its URL in PORTICO_URL, which the guide reads). A comment line
// right after a command is the output the command must print (see
// checkExpected).
func TestGuide(t *testing.T) {
	bin := buildBinary(t) // skips in -short mode
	testtool.Need(t, "apt-get install bash", "bash")
	testtool.Need(t, "apt-get install curl", "curl")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, guide))
	if err != nil {
		t.Fatal(err)
	}
	work := copyCheckout(t, root)

	env := guideEnv(filepath.Dir(bin))
	var gateway string // base URL, once started
	ran, sawHello := 0, false
	for _, b := range parseGuide(string(md)) {
		first, _, _ := strings.Cut(b.body, "\n")
		switch {
		case (b.lang == "go" || b.lang == "toml") && guidePath.MatchString(first):
			path := guidePath.FindStringSubmatch(first)[1]
			dst := filepath.Join(work, filepath.FromSlash(path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, []byte(b.body), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s:%d: wrote %s", guide, b.line, path)
		case b.lang == "sh":
			if gateway == "" && strings.Contains(b.body, "curl") {
				gateway = startGuideGateway(t, bin, work)
				env = append(env, "PORTICO_URL="+gateway)
			}
			start := time.Now()
			out := runGuideBlock(t, work, env, b)
			t.Logf("%s:%d: ran %q... in %v", guide, b.line, first, time.Since(start).Round(time.Millisecond))
			if strings.Contains(out, `"output":"HELLO"`) {
				sawHello = true
			}
			ran++
		}
	}
	if ran == 0 {
		t.Fatalf("%s has no sh blocks", guide)
	}
	if !sawHello {
		t.Errorf(`no block of %s answered "output":"HELLO" (the shout skill invoked through the gateway)`, guide)
	}
}

// guideEnv is the environment of the guide's commands: this one, with the
// built binary first on PATH, the module proxy off and no GOFLAGS (a -race
// there breaks wasip1 builds) or GOWORK.
func guideEnv(binDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "GOFLAGS", name == "GOWORK", name == "GOPROXY", strings.HasPrefix(name, "PORTICO_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "GOPROXY=off", "GOFLAGS=")
}

// copyCheckout copies the repository's tracked files, as they are in the
// working tree, into a temporary directory: a fresh clone, and the
// repository itself is never touched.
func copyCheckout(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	list, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout (git ls-files: %v)", err)
	}
	work := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, filepath.FromSlash(f))
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(work, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// startGuideGateway runs `portico serve` in dir with the default data dir,
// on a free port, until the test ends, and returns its URL once it is
// ready.
func startGuideGateway(t *testing.T, bin, dir string) string {
	t.Helper()
	var logs syncBuffer
	cmd := exec.Command(bin, "serve", "--data-dir", "portico-data", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(guideEnv(filepath.Dir(bin)), smallEnv...)
	if cache, err := hostapi.TestCacheDir(); err == nil {
		cmd.Env = append(cmd.Env, "PORTICO_PLUGIN__CACHE_DIR="+cache)
	}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway exit: %v; logs:\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("the gateway did not stop within 30s of SIGTERM; logs:\n%s", logs.String())
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("the gateway exited: %v; logs:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway was not ready within 60s; logs:\n%s", logs.String())
		}
		if url := core.LocalURL(filepath.Join(dir, "portico-data")); url != "" {
			if resp, err := client.Get(url + "/api/v1/status/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return url
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// guideMark separates the output of the commands whose output the guide
// shows.
const guideMark = "@@portico-guide-output@@"

// runGuideBlock runs an sh block with bash and checks the outputs it
// shows; it fails the test, printing the block and its output, if a
// command fails or prints something else.
func runGuideBlock(t *testing.T, dir string, env []string, b guideBlock) string {
	t.Helper()
	script, expected := instrumentBlock(b.body)
	cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s:%d: the block fails: %v\n--- block\n%s--- output\n%s", guide, b.line, err, b.body, strings.ReplaceAll(out.String(), guideMark+"\n", ""))
	}
	parts := strings.Split(out.String(), guideMark+"\n")
	for i, want := range expected {
		got := ""
		if 2*i+1 < len(parts) {
			got = parts[2*i+1]
		}
		if msg := checkExpected(want, got); msg != "" {
			t.Errorf("%s:%d: %s\n--- block\n%s--- output of %s\n%s", guide, b.line, msg, b.body, want.command, got)
		}
	}
	return strings.ReplaceAll(out.String(), guideMark+"\n", "")
}

// expectedOutput is what the guide shows a command printing.
type expectedOutput struct {
	command string
	lines   []string
}

// instrumentBlock marks the output of every command that is followed, with
// no blank line between, by comment lines: those lines are the output the
// command must print. Other comments (at the end of a command, or after a
// blank line) explain.
func instrumentBlock(body string) (string, []expectedOutput) {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	var script []string
	var expected []expectedOutput
	for i := 0; i < len(lines); i++ {
		start := i
		for i < len(lines)-1 && strings.HasSuffix(lines[i], `\`) {
			i++ // a command continued on the next line
		}
		command := lines[start : i+1]
		isCommand := strings.TrimSpace(command[0]) != "" && !strings.HasPrefix(strings.TrimSpace(command[0]), "#")
		var want []string
		for isCommand && i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "#") {
			i++
			want = append(want, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i]), "#")))
		}
		if len(want) == 0 {
			script = append(script, command...)
			continue
		}
		script = append(script, "echo "+guideMark)
		script = append(script, command...)
		script = append(script, "echo; echo "+guideMark)
		expected = append(expected, expectedOutput{command: strings.Join(command, "\n"), lines: want})
	}
	return strings.Join(script, "\n") + "\n", expected
}

// checkExpected reports how got misses the lines the guide shows, or "".
// Each shown line must match a line of the output, in order. A line of
// JSON matches JSON with the same keys and values, where a number, or a
// string that is a number, stands for any (a duration); in a line of text,
// "..." stands for anything.
func checkExpected(want expectedOutput, got string) string {
	var outLines []string
	sc := bufio.NewScanner(strings.NewReader(got))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			outLines = append(outLines, l)
		}
	}
	next := 0
	for _, w := range want.lines {
		found := false
		for next < len(outLines) && !found {
			found = lineMatches(w, outLines[next])
			next++
		}
		if !found {
			return fmt.Sprintf("the output has no line like %q (after the lines matched before it)", w)
		}
	}
	return ""
}

func lineMatches(want, got string) bool {
	var w, g any
	if strings.HasPrefix(want, "{") || strings.HasPrefix(want, "[") {
		if json.Unmarshal([]byte(want), &w) != nil {
			return textMatches(want, got)
		}
		return json.Unmarshal([]byte(got), &g) == nil && jsonMatches(w, g)
	}
	return textMatches(want, got)
}

// textMatches matches a line of text where "..." stands for anything.
func textMatches(want, got string) bool {
	pieces := strings.Split(want, "...")
	if len(pieces) == 1 {
		return want == got
	}
	if !strings.HasPrefix(got, pieces[0]) {
		return false
	}
	rest := got[len(pieces[0]):]
	for _, p := range pieces[1:] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return pieces[len(pieces)-1] == "" || strings.HasSuffix(got, pieces[len(pieces)-1])
}

func jsonMatches(want, got any) bool {
	isNumber := func(v any) bool {
		switch v := v.(type) {
		case float64:
			return true
		case string:
			_, err := strconv.ParseFloat(v, 64)
			return err == nil
		}
		return false
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if gv, ok := g[k]; !ok || !jsonMatches(v, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !jsonMatches(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	if isNumber(want) {
		return isNumber(got)
	}
	return want == got
}

func TestGuideOutputMatching(t *testing.T) {
	script, exp := instrumentBlock("A=1   # explains\ncurl x \\\n  y\n# {\"output\":\"HELLO\",\"duration_ms\":0.05}\n\n# a comment\nrun\n# PASS a\n# 1 passed...\n")
	if len(exp) != 2 || exp[0].command != "curl x \\\n  y" || exp[1].command != "run" || len(exp[1].lines) != 2 {
		t.Fatalf("expected outputs %q", exp)
	}
	if strings.Count(script, guideMark) != 4 || !strings.Contains(script, "# a comment\n") {
		t.Errorf("script:\n%s", script)
	}
	for _, c := range []struct {
		want, got string
		ok        bool
	}{
		{`{"output":"HELLO","duration_ms":0.05}`, `{"duration_ms":1.2,"output":"HELLO"}`, true},
		{`{"output":"HELLO","duration_ms":0.05}`, `{"output":"HELLO!","duration_ms":0.05}`, false},
		{`{"output":"HELLO","duration_ms":0.05}`, `{"output":"HELLO","duration_ms":0.05,"x":1}`, false},
		{`{"output":"HELLO"}`, `not json`, false},
		{`2 passed, 0 failed`, `2 passed, 0 failed`, true},
		{`2 passed, 0 failed`, `1 passed, 1 failed`, false},
		{`{"status":"healthy",...}`, `{"status":"healthy","uptime":"1s"}`, true},
		{`{"status":"healthy",...}`, `{"status":"starting"}`, false},
	} {
		if got := lineMatches(c.want, c.got); got != c.ok {
			t.Errorf("lineMatches(%s, %s) = %v", c.want, c.got, got)
		}
	}
	want := expectedOutput{lines: []string{"PASS a", "1 passed, 0 failed"}}
	if msg := checkExpected(want, "PASS a\nPASS b\n1 passed, 0 failed\n"); msg != "" {
		t.Error(msg)
	}
	if msg := checkExpected(want, "1 passed, 0 failed\nPASS a\n"); msg == "" {
		t.Error("lines out of order matched")
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
