package main

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core/plugin"
)

// sdkCopy is the SDK's source, carried in the binary so a scaffolded plugin
// builds anywhere, offline: the SDK is on no module proxy. A test keeps it
// identical to sdk/; `go generate ./cmd/portico` refreshes it.
//
//go:generate sh -c "rm -f sdkcopy/*.txt && for f in ../../sdk/*.go ../../sdk/go.mod; do case ${DOLLAR}f in *_test.go) ;; *) cp ${DOLLAR}f sdkcopy/${DOLLAR}(basename ${DOLLAR}f).txt ;; esac; done"
//go:embed sdkcopy
var sdkCopy embed.FS

// sdkDir is where a scaffolded plugin keeps its copy of the SDK.
const sdkDir = "portico-sdk"

var scaffoldFiles = map[string]string{
	"go.mod": `module {{name}}

go 1.26

require github.com/porticohq/portico/sdk v0.0.0

replace github.com/porticohq/portico/sdk => ./` + sdkDir + `
`,
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

func newCmd(stdout io.Writer) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "new skill NAME",
		Short: "Scaffold a skill plugin that builds and passes its tests as it is, offline",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "skill" {
				return fmt.Errorf("kind %q: only skill plugins can be scaffolded so far", args[0])
			}
			name := args[1]
			if !plugin.PluginName.MatchString(name) || !plugin.SkillName.MatchString(name) {
				return fmt.Errorf("name %q must be 1 to 64 lower-case letters, digits, _ or -", name)
			}
			if dir == "" {
				dir = name
			}
			if _, err := os.Stat(dir); err == nil {
				return fmt.Errorf("%s already exists; choose another --dir", dir)
			}
			if err := scaffold(dir, name); err != nil {
				os.RemoveAll(dir)
				return err
			}
			fmt.Fprintf(stdout, "created %s: cd %s && portico plugin test\n", dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default: the name)")
	return cmd
}

func scaffold(dir, name string) error {
	if err := os.MkdirAll(filepath.Join(dir, sdkDir), 0o755); err != nil {
		return err
	}
	for file, body := range scaffoldFiles {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(strings.ReplaceAll(body, "{{name}}", name)), 0o644); err != nil {
			return err
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
		return os.WriteFile(filepath.Join(dir, sdkDir, strings.TrimSuffix(filepath.Base(path), ".txt")), b, 0o644)
	})
}
