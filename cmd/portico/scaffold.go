package main

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
)

// sdkCopy is the SDK's source, carried in the binary so a scaffolded plugin
// builds anywhere, offline: the SDK is on no module proxy. A test keeps it
// identical to sdk/; `go generate ./cmd/portico` refreshes it.
//
//go:generate sh -c "rm -rf sdkcopy && mkdir sdkcopy && cd ../../sdk && for f in *.go go.mod internal/*/*.go; do case ${DOLLAR}f in *_test.go) ;; *) mkdir -p ../cmd/portico/sdkcopy/${DOLLAR}(dirname ${DOLLAR}f) && cp ${DOLLAR}f ../cmd/portico/sdkcopy/${DOLLAR}f.txt ;; esac; done"
//go:embed sdkcopy
var sdkCopy embed.FS

// sdkDir is where a scaffolded plugin keeps its copy of the SDK.
const sdkDir = "portico-sdk"

// scaffoldFiles are the files every scaffold has. go.work makes the folder
// its own workspace, so it also builds inside another one (such as a
// checkout of Portico, whose go.work does not list it).
var scaffoldFiles = map[string]string{
	"go.mod": `module {{name}}

go 1.26

require github.com/porticohq/portico/sdk v0.0.0

replace github.com/porticohq/portico/sdk => ./` + sdkDir + `
`,
	"go.work": `go 1.26

use .
`,
}

// scaffoldKinds are the files of each kind `portico plugin new` makes.
var scaffoldKinds = map[string]map[string]string{"skill": skillFiles, "hook": hookFiles, "channel": channelFiles}

var skillFiles = map[string]string{
	"main.go": `// Command {{name}} is a Portico skill plugin.
//
// Build and test it with: portico plugin test
package main

import (
	"strings"

	"github.com/porticohq/portico/sdk"
)

func init() {
	sdk.Skill("{{name}}", func(in sdk.Input) ([]byte, error) {
		text := string(in.Payload)
		if !strings.HasPrefix(text, "\"") {
			return nil, sdk.BadInput("want a JSON string")
		}
		return []byte(strings.ToUpper(text)), nil
	})
}

func main() {}
`,
	"main_test.go": `package main

import (
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestSkill(t *testing.T) {
	sdk.UseFake(sdk.NewFake())
	out, err := sdk.Invoke("{{name}}", []byte(` + "`" + `"hi"` + "`" + `))
	if err != nil || string(out) != ` + "`" + `"HI"` + "`" + ` {
		t.Fatalf("%s %v", out, err)
	}
}
`,
	"plugin.toml": `name = "{{name}}"
version = "0.1.0"
description = "A skill made with portico plugin new."
kinds = ["skill"]

[[skills]]
name = "{{name}}"
description = "Upper-cases a JSON string."
input_schema = '{"type":"string"}'
`,
	"tests.toml": `[[case]]
name = "upper-cases"
skill = "{{name}}"
input = '"hi"'
output = '"HI"'

[[case]]
name = "refuses a number"
skill = "{{name}}"
input = '42'
error = "bad_input"
`,
	"README.md": `# {{name}}

A Portico skill plugin.

    go test ./...                       # unit tests on the SDK's fake host
    portico plugin test                 # build, then run tests.toml on the runtime
    portico plugin inspect {{name}}.wasm

Install it into a running gateway:

    curl -H "X-API-Key: $KEY" -F manifest=@plugin.toml -F module=@{{name}}.wasm localhost:3120/api/v1/plugins
`,
}

var hookFiles = map[string]string{
	"main.go": `// Command {{name}} is a Portico hook plugin: it counts the events it
// receives, per type, in its key-value store, and its skill {{name}}
// returns the counts. It needs the kv capability.
//
// Build and test it with: portico plugin test
package main

import (
	"encoding/json"
	"errors"

	"github.com/porticohq/portico/sdk"
)

// counts reads the counts, kept as one JSON object under one key.
func counts() (map[string]int, error) {
	c := map[string]int{}
	b, err := sdk.KVGet("counts")
	if errors.Is(err, sdk.ErrNotFound) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	return c, json.Unmarshal(b, &c)
}

func init() {
	// The hook: every event the manifest subscribes to, one at a time.
	sdk.OnEvent(func(ev sdk.Event) error {
		sdk.Log(sdk.LevelDebug, "event "+ev.Type)
		c, err := counts()
		if err != nil {
			return err
		}
		c[ev.Type]++
		b, _ := json.Marshal(c)
		return sdk.KVSet("counts", b)
	})
	sdk.Skill("{{name}}", func(sdk.Input) ([]byte, error) {
		c, err := counts()
		if err != nil {
			return nil, err
		}
		return json.Marshal(c)
	})
}

func main() {}
`,
	"main_test.go": `package main

import (
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestCounts(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	for _, typ := range []string{"config.reloaded", "plugin.loaded", "config.reloaded"} {
		if err := sdk.Deliver(sdk.Event{Type: typ, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := sdk.Invoke("{{name}}", nil)
	if err != nil || string(out) != ` + "`" + `{"config.reloaded":2,"plugin.loaded":1}` + "`" + ` {
		t.Fatalf("%s %v", out, err)
	}
	if len(f.Logs) != 3 {
		t.Errorf("logs: %q", f.Logs)
	}
	// Without the kv grant the hook fails, as in a gateway that did not grant it.
	sdk.UseFake(&sdk.Fake{Grants: []string{}})
	if err := sdk.Deliver(sdk.Event{Type: "config.reloaded", Data: []byte("{}")}); err == nil {
		t.Error("a hook without kv succeeded")
	}
}
`,
	"plugin.toml": `name = "{{name}}"
version = "0.1.0"
description = "A hook made with portico plugin new: counts the events it receives."
kinds = ["hook", "skill"]

# The events delivered to the hook: patterns such as "plugin.*" or
# "config.reloaded"; a final * takes the rest of the name.
[hooks]
events = ["plugin.*", "config.*", "message.*", "session.*"]

[[skills]]
name = "{{name}}"
description = "The number of events the hook received, per type."

[capabilities]
required = ["kv"]
`,
	"tests.toml": `[[case]]
name = "counts an event"
event = { type = "config.reloaded", data = '{"changed":["log.level"]}' }
kv_after = { counts = '{"config.reloaded":1}' }
logs_contain = ["event config.reloaded"]

[[case]]
name = "adds to the counts"
event = { type = "plugin.loaded", data = '{"plugin":"echo"}' }
kv = { counts = '{"config.reloaded":1,"plugin.loaded":4}' }
kv_after = { counts = '{"config.reloaded":1,"plugin.loaded":5}' }

[[case]]
name = "the skill reads the counts"
skill = "{{name}}"
input = 'null'
kv = { counts = '{"plugin.loaded":5}' }
output = '{"plugin.loaded":5}'

[[case]]
name = "without kv the hook fails"
event = { type = "config.reloaded", data = '{}' }
grants = []
error = "error"
`,
	"README.md": `# {{name}}

A Portico hook plugin: it counts the events it receives (` + "`[hooks] events`" + ` in
plugin.toml), per type, in its key-value store; its skill {{name}} returns
the counts.

    go test ./...                       # unit tests on the SDK's fake host
    portico plugin test                 # build, then run tests.toml on the runtime
    portico plugin inspect {{name}}.wasm

It requires the kv capability: grant it in the gateway's config file first
(without the grant the plugin does not start),

    [[plugins]]
    name = "{{name}}"
    grants = ["kv"]

then install it into the running gateway and read the counts:

    curl -H "X-API-Key: $KEY" -F manifest=@plugin.toml -F module=@{{name}}.wasm localhost:3120/api/v1/plugins
    curl -H "X-API-Key: $KEY" -X POST localhost:3120/api/v1/skills/{{name}}/invoke -d '{"input":null}'
`,
}

var channelFiles = map[string]string{
	"main.go": `// Command {{name}} is a Portico channel plugin: a chat platform posts
// {"user":"...","text":"..."} to /api/v1/channels/{{name}}/webhook with the
// shared secret in X-Secret; each message runs a turn in the user's
// session, and the reply is posted as {"user","text"} to reply_url. It
// needs the http capability, with reply_url's host allowed.
//
// Build and test it with: portico plugin test
package main

import (
	"crypto/subtle"
	"fmt"

	"github.com/porticohq/portico/sdk"
)

func config(key string) string {
	v, _ := sdk.Config(key)
	return v
}

func init() {
	sdk.Channel(sdk.ChannelHandler{
		Webhook: func(req sdk.WebhookRequest) (sdk.WebhookReply, error) {
			secret := config("secret")
			if secret == "" || subtle.ConstantTimeCompare([]byte(req.Header("X-Secret")), []byte(secret)) != 1 {
				return sdk.Refuse(401, "bad or missing X-Secret"), nil
			}
			v := sdk.JSON([]byte(req.Body))
			user, text := v.String("user"), v.String("text")
			if v.Err() != nil || user == "" || text == "" {
				return sdk.Refuse(400, "want {\"user\":\"...\",\"text\":\"...\"}"), nil
			}
			return sdk.WebhookReply{Messages: []sdk.IncomingMessage{{UserID: user, Text: text}}}, nil
		},
		Send: func(m sdk.Outgoing) error {
			url := config("reply_url")
			if url == "" {
				return fmt.Errorf("set reply_url in the plugin's config")
			}
			body := sdk.NewObject().Str("user", m.UserID).Str("text", m.Text).Bytes()
			status, _, err := sdk.HTTP(sdk.Request{Method: "POST", URL: url, Body: body,
				Header: map[string]string{"Content-Type": "application/json", "X-Secret": config("secret")}})
			if err == nil && (status < 200 || status > 299) {
				err = fmt.Errorf("reply_url answered %d", status)
			}
			return err
		},
		Health: func() (bool, string) {
			if config("secret") == "" || config("reply_url") == "" {
				return false, "set secret and reply_url in the plugin's config"
			}
			return true, ""
		},
	})
}

func main() {}
`,
	"main_test.go": `package main

import (
	"strings"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestChannel(t *testing.T) {
	f := sdk.UseFake(sdk.NewFake())
	f.Conf["secret"], f.Conf["reply_url"] = "s3cret", "https://chat.example.com/replies"
	out, err := sdk.CallChannel("webhook", []byte(` + "`" + `{"headers":{"x-secret":"s3cret"},"body":"{\"user\":\"ann\",\"text\":\"hi\"}"}` + "`" + `))
	if err != nil || !strings.Contains(string(out), ` + "`" + `"user_id":"ann","text":"hi"` + "`" + `) {
		t.Fatalf("webhook: %s %v", out, err)
	}
	out, _ = sdk.CallChannel("webhook", []byte(` + "`" + `{"headers":{"x-secret":"wrong"},"body":"{}"}` + "`" + `))
	if !strings.Contains(string(out), ` + "`" + `"status":401` + "`" + `) {
		t.Errorf("bad secret: %s", out)
	}
	var sent string
	f.HTTP = func(req string) (int, []byte, error) { sent = req; return 200, nil, nil }
	if _, err := sdk.CallChannel("send", []byte(` + "`" + `{"user_id":"ann","text":"hello"}` + "`" + `)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sent, "POST https://chat.example.com/replies\n") || !strings.HasSuffix(sent, ` + "`" + `{"user":"ann","text":"hello"}` + "`" + `) {
		t.Errorf("request:\n%s", sent)
	}
}
`,
	"plugin.toml": `name = "{{name}}"
version = "0.1.0"
description = "A channel made with portico plugin new."
kinds = ["channel"]

[capabilities]
optional = ["http"]
`,
	"tests.toml": `[[case]]
name = "a message with the secret"
channel = "webhook"
config = { secret = "s3cret" }
input = '{"headers":{"x-secret":"s3cret"},"body":"{\"user\":\"ann\",\"text\":\"hi\"}"}'
output = '{"messages":[{"user_id":"ann","text":"hi","metadata":{}}]}'

[[case]]
name = "refuses a wrong secret"
channel = "webhook"
config = { secret = "s3cret" }
input = '{"headers":{"x-secret":"nope"},"body":"{}"}'
output_contains = '"status":401'

[[case]]
name = "posts a reply"
channel = "send"
config = { secret = "s3cret", reply_url = "https://chat.example.com/replies" }
http = { "https://chat.example.com/replies" = { status = 200, body = "" } }
input = '{"user_id":"ann","text":"hello"}'
output = ""

[[case]]
name = "without the http grant a reply fails"
channel = "send"
grants = []
config = { secret = "s3cret", reply_url = "https://chat.example.com/replies" }
input = '{"user_id":"ann","text":"hello"}'
error = "error"
`,
	"README.md": `# {{name}}

A Portico channel plugin: a platform posts {"user","text"} with the shared
secret in X-Secret to /api/v1/channels/{{name}}/webhook; replies are
posted as {"user","text"} to reply_url.

    go test ./...                       # unit tests on the SDK's fake host
    portico plugin test                 # build, then run tests.toml on the runtime

Configure it in the gateway's config file (grants and allowed hosts are
the operator's), then install it:

    [[plugins]]
    name = "{{name}}"
    grants = ["http"]
    http_allow = ["chat.example.com"]
    [plugins.config]
    secret = "s3cret"
    reply_url = "https://chat.example.com/replies"

    curl -H "X-API-Key: $KEY" -F manifest=@plugin.toml -F module=@{{name}}.wasm localhost:3120/api/v1/plugins
`,
}

func newCmd(stdout io.Writer) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "new KIND NAME",
		Short: "Scaffold a plugin (kind skill, hook or channel) that builds and passes its tests as it is, offline",
		Long: `Scaffold a plugin that builds and passes its tests as it is, offline:
  skill  a skill that upper-cases a JSON string
  hook     a hook that counts the events it receives in its kv store, and a skill that reads the counts
  channel  a channel: messages in with a shared secret, replies out to a configured URL`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name := args[0], args[1]
			if _, ok := scaffoldKinds[kind]; !ok {
				return fmt.Errorf("kind %q cannot be scaffolded; supported kinds: %s", kind, strings.Join(slices.Sorted(maps.Keys(scaffoldKinds)), ", "))
			}
			if !core.ValidPluginName(name) || !core.ValidSkillName(name) {
				return fmt.Errorf("name %q must be 1 to 64 lower-case letters, digits, _ or -", name)
			}
			if dir == "" {
				dir = name
			}
			if _, err := os.Stat(dir); err == nil {
				return fmt.Errorf("%s already exists; choose another --dir", dir)
			}
			if err := scaffold(dir, kind, name); err != nil {
				os.RemoveAll(dir)
				return err
			}
			fmt.Fprintf(stdout, "created %s %s: cd %s && portico plugin test\n", kind, dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default: the name)")
	return cmd
}

func scaffold(dir, kind, name string) error {
	if err := os.MkdirAll(filepath.Join(dir, sdkDir), 0o755); err != nil {
		return err
	}
	for _, files := range []map[string]string{scaffoldFiles, scaffoldKinds[kind]} {
		for file, body := range files {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(strings.ReplaceAll(body, "{{name}}", name)), 0o644); err != nil {
				return err
			}
		}
	}
	return fs.WalkDir(sdkCopy, "sdkcopy", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := sdkCopy.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, sdkDir, filepath.FromSlash(strings.TrimSuffix(strings.TrimPrefix(path, "sdkcopy/"), ".txt")))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
