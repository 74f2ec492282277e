package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
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

	"github.com/porticohq/portico/internal/testtool"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
)

// guideDocs are the pages TestGuide follows word for word: the README's
// tour (its section only; the gateway runs from the repository's root, as
// the set-up command starts it) and the plugin author's guide (the
// gateway runs in ~/portico-plugins, where the guide starts it).
var guideDocs = []struct {
	file, section, gatewayDir string
	want                      string // an output some block must print
}{
	{file: "README.md", section: "## A short tour", gatewayDir: ".", want: `"output":{"text":"hi"}`},
	{file: "docs/plugin-authoring.md", gatewayDir: "~/portico-plugins", want: `"output":"HELLO"`},
}

// guideBlock is one fenced block of a page.
type guideBlock struct {
	lang string
	line int // of the opening fence
	body string
}

// guidePath matches the first line of a block that names the file it is:
// "// ~/portico-plugins/shout/main.go", "# shout/plugin.toml".
var guidePath = regexp.MustCompile(`^(?://|#)\s*((?:~/)?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\.[a-z]+)\s*$`)

// parseGuide returns the fenced blocks of md; with a section heading, only
// those under it (up to the next heading of its level).
func parseGuide(md, section string) []guideBlock {
	var blocks []guideBlock
	var cur *guideBlock
	var body strings.Builder
	level, in := "", section == ""
	if section != "" {
		level = section[:strings.IndexByte(section, ' ')+1]
	}
	for i, l := range strings.Split(md, "\n") {
		switch {
		case cur == nil && section != "" && strings.HasPrefix(l, "#"):
			if l == section {
				in = true
			} else if in && strings.HasPrefix(l, level) {
				in = false
			}
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &guideBlock{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 1}
			body.Reset()
		case cur != nil && strings.TrimSpace(l) == "```":
			cur.body = body.String()
			if in {
				blocks = append(blocks, *cur)
			}
			cur = nil
		case cur != nil:
			body.WriteString(l + "\n")
		}
	}
	return blocks
}

// TestGuide follows the README's tour and docs/plugin-authoring.md as a
// new user would, each on a fresh copy of the repository (a git checkout
// of the working tree) with the module proxy off and a home of its own.
// The sh blocks run in order with bash in one shell session (the working
// directory and exported variables carry from block to block, as in a
// terminal), starting at the copy's root, with the copy's portico on
// PATH; go and toml blocks whose first line names a path are written
// there (relative to the session's directory, or to the home for ~/...).
// From the first block that uses curl a gateway runs where the page
// starts it, its URL in PORTICO_URL (which the pages read). A comment line
// right after a command is the output it must print (see checkExpected).
// Afterwards every embedded plugin must be active and git status clean:
// following the pages writes nothing into the repository.
func TestGuide(t *testing.T) {
	bin := buildBinary(t) // skips in -short mode
	testtool.Need(t, "apt-get install bash", "bash")
	testtool.Need(t, "apt-get install curl", "curl")
	testtool.Need(t, "apt-get install git", "git")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range guideDocs {
		t.Run(doc.file, func(t *testing.T) {
			md, err := os.ReadFile(filepath.Join(root, doc.file))
			if err != nil {
				t.Fatal(err)
			}
			s := newGuideSession(t, bin, copyCheckout(t, root), doc.file)
			ran, saw := 0, false
			for _, b := range parseGuide(string(md), doc.section) {
				first, _, _ := strings.Cut(b.body, "\n")
				switch {
				case (b.lang == "go" || b.lang == "toml") && guidePath.MatchString(first):
					path := s.resolve(guidePath.FindStringSubmatch(first)[1])
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(b.body), 0o644); err != nil {
						t.Fatal(err)
					}
					t.Logf("%s:%d: wrote %s", doc.file, b.line, path)
				case b.lang == "sh":
					if s.gateway == "" && strings.Contains(b.body, "curl") {
						s.startGateway(s.resolve(doc.gatewayDir))
					}
					start := time.Now()
					out := s.run(b)
					t.Logf("%s:%d: ran %q... in %v", doc.file, b.line, first, time.Since(start).Round(time.Millisecond))
					saw = saw || strings.Contains(out, doc.want)
					ran++
				}
			}
			if ran == 0 {
				t.Fatalf("%s has no sh blocks", doc.file)
			}
			if !saw {
				t.Errorf("no block of %s printed %s", doc.file, doc.want)
			}
			s.checkPluginsActive()
			s.checkClean()
		})
	}
}

// guideSession is one page's shell session: its copy of the repository,
// its home, and the state carried between blocks.
type guideSession struct {
	t                 *testing.T
	bin, work, home   string
	state             string // the session's directory and exports, saved by each block
	env               []string
	doc, gateway, key string
}

func newGuideSession(t *testing.T, bin, work, doc string) *guideSession {
	home, gobin, state := t.TempDir(), t.TempDir(), t.TempDir()
	s := &guideSession{t: t, bin: bin, work: work, home: home, state: state, doc: doc}
	s.env = guideEnv(gobin)
	// A home of its own (the pages write under ~), with Go's caches and the
	// user cache (compiled plugins) where they are, and go install
	// landing first on PATH.
	for _, kv := range goEnv(t, "GOPATH", "GOMODCACHE", "GOCACHE") {
		s.env = append(s.env, kv)
	}
	if dir, err := os.UserCacheDir(); err == nil {
		s.env = append(s.env, "XDG_CACHE_HOME="+dir)
	}
	s.env = append(s.env, "HOME="+home, "GOBIN="+gobin, "TMPDIR="+t.TempDir())
	if err := os.WriteFile(filepath.Join(state, "cwd"), []byte(work), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// goEnv returns NAME=value for Go's settings as this process sees them.
func goEnv(t *testing.T, names ...string) []string {
	out, err := exec.Command("go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var kv []string
	for i, v := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kv = append(kv, names[i]+"="+v)
	}
	return kv
}

// resolve makes a page's path absolute: ~/ is the session's home, else
// the session's current directory.
func (s *guideSession) resolve(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(s.home, filepath.FromSlash(rest))
	}
	cwd, err := os.ReadFile(filepath.Join(s.state, "cwd"))
	if err != nil {
		s.t.Fatal(err)
	}
	return filepath.Join(string(cwd), filepath.FromSlash(p))
}

// guideEnv is the environment of the guide's commands: this one, with
// binDir first on PATH, the module proxy off and no GOFLAGS (a -race there
// breaks wasip1 builds), GOWORK or Portico settings.
func guideEnv(binDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "GOFLAGS", name == "GOWORK", name == "GOPROXY", name == "HOME", name == "GOBIN", name == "TMPDIR",
			name == "XDG_CACHE_HOME", strings.HasPrefix(name, "PORTICO_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "GOPROXY=off", "GOFLAGS=")
}

// copyCheckout copies the repository's tracked files, as they are in the
// working tree, into a temporary directory and commits them there: a fresh
// clone whose git status tells what following a page changed. The
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
	git(t, work, "init", "-q")
	git(t, work, "add", "-A")
	git(t, work, "-c", "user.name=guide", "-c", "user.email=guide@example.com", "commit", "-q", "-m", "the working tree")
	return work
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// checkClean fails if following the page changed the checkout.
func (s *guideSession) checkClean() {
	if st := git(s.t, s.work, "status", "--porcelain"); st != "" {
		s.t.Errorf("following %s changed the checkout (git status --porcelain):\n%s%s", s.doc, st, git(s.t, s.work, "diff"))
	}
}

// checkPluginsActive fails unless every plugin the gateway lists is active.
func (s *guideSession) checkPluginsActive() {
	if s.gateway == "" {
		return
	}
	req, _ := http.NewRequest("GET", s.gateway+"/api/v1/plugins", nil)
	req.Header.Set("X-API-Key", s.key)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Plugins []struct{ Name, Status, LastError string } `json:"plugins"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Plugins) == 0 {
		s.t.Fatalf("GET /api/v1/plugins: %d %v", resp.StatusCode, err)
	}
	for _, p := range list.Plugins {
		if p.Status != "active" {
			s.t.Errorf("after %s, plugin %s is %s: %s", s.doc, p.Name, p.Status, p.LastError)
		}
	}
}

// startGateway runs `portico serve` in dir with its default data dir
// (./portico-data), on a free port, until the test ends, and records its
// URL and admin key once it is ready.
func (s *guideSession) startGateway(dir string) {
	t := s.t
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd := exec.Command(s.bin, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, s.env...), smallEnv...)
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
	data := filepath.Join(dir, "portico-data")
	for {
		select {
		case err := <-done:
			t.Fatalf("the gateway exited: %v; logs:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway was not ready within 60s; logs:\n%s", logs.String())
		}
		if url := core.LocalURL(data); url != "" {
			if resp, err := client.Get(url + "/api/v1/status/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					key, err := os.ReadFile(filepath.Join(data, "admin.key"))
					if err != nil {
						t.Fatal(err)
					}
					s.gateway, s.key = url, strings.TrimSpace(string(key))
					s.env = append(s.env, "PORTICO_URL="+url)
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs an sh block in the session and checks the outputs it shows; it
// fails the test, printing the block and its output, if a command fails
// or prints something else.
func (s *guideSession) run(b guideBlock) string {
	t := s.t
	t.Helper()
	script, expected := instrumentBlock(b.body)
	cwd, env := filepath.Join(s.state, "cwd"), filepath.Join(s.state, "env")
	pre := fmt.Sprintf("set -euo pipefail\ncd \"$(cat %q)\"\n[ -f %q ] && source %q\n", cwd, env, env)
	post := fmt.Sprintf("\npwd > %q\nexport -p > %q\n", cwd, env)
	cmd := exec.Command("bash", "-c", pre+script+post)
	cmd.Env = s.env
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s:%d: the block fails: %v\n--- block\n%s--- output\n%s", s.doc, b.line, err, b.body, strings.ReplaceAll(out.String(), guideMark+"\n", ""))
	}
	parts := strings.Split(out.String(), guideMark+"\n")
	for i, want := range expected {
		got := ""
		if 2*i+1 < len(parts) {
			got = parts[2*i+1]
		}
		if msg := checkExpected(want, got); msg != "" {
			t.Errorf("%s:%d: %s\n--- block\n%s--- output of %s\n%s", s.doc, b.line, msg, b.body, want.command, got)
		}
	}
	return strings.ReplaceAll(out.String(), guideMark+"\n", "")
}

// guideMark separates the output of the commands whose output the guide
// shows.
const guideMark = "@@portico-guide-output@@"

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
