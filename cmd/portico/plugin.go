package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/harness"
)

func pluginCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Build and inspect plugins"}
	var asJSON bool
	inspect := &cobra.Command{
		Use:   "inspect FILE.wasm",
		Short: "Show a module's ABI version, kinds, exports, imports and whether the gateway would load it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			name := strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			rep, err := hostapi.Inspect(cmd.Context(), name, wasm, hostapi.DenyAll{}, pluginCacheDir())
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			var man *core.Manifest
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(args[0]), core.ManifestFile)); err == nil {
				man, _ = core.ParseManifest(b)
			}
			if asJSON {
				out := map[string]any{"module": rep}
				if man != nil {
					out["manifest"] = man
				}
				b, _ := json.MarshalIndent(out, "", "  ")
				fmt.Fprintln(stdout, string(b))
				return nil
			}
			printReport(stdout, args[0], rep, man)
			return nil
		},
	}
	inspect.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	build := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a Go plugin reproducibly (wasip1, c-shared, -trimpath, stripped) and check it against its manifest",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			out, err := buildPlugin(cmd.Context(), dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "built %s\n", out)
			return nil
		},
	}
	var noBuild bool
	test := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Build the plugin and run its tests.toml cases on the test harness",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if !noBuild {
				if _, err := buildPlugin(cmd.Context(), dir); err != nil {
					return err
				}
			}
			_, failed, err := testPlugin(cmd.Context(), dir, stdout)
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d test case(s) failed", failed)
			}
			return nil
		},
	}
	test.Flags().BoolVar(&noBuild, "no-build", false, "test the module as it is, without building it first")
	cmd.AddCommand(inspect, build, test, newCmd(stdout))
	return cmd
}

func printReport(w io.Writer, file string, rep *hostapi.Report, man *core.Manifest) {
	fmt.Fprintf(w, "%s: %d bytes, ABI %s, start %s\n", file, rep.Size, orDash(rep.ABI), rep.Start)
	if man != nil {
		fmt.Fprintf(w, "kinds: %s (declared in %s)\n", strings.Join(man.Kinds, ", "), core.ManifestFile)
	} else {
		fmt.Fprintf(w, "kinds: no %s beside the module to declare them\n", core.ManifestFile)
	}
	fmt.Fprintf(w, "entry points exported for: %s\n", orDash(strings.Join(rep.ExportedKinds, ", ")))
	if rep.LoadError != "" {
		fmt.Fprintf(w, "the gateway would refuse it: %s\n", rep.LoadError)
	} else {
		fmt.Fprintf(w, "loads: yes (%d bytes of memory after start)\n", rep.MemoryUsed)
	}
	fmt.Fprintln(w, "exports:")
	for _, e := range rep.Exports {
		fmt.Fprintln(w, "  "+e)
	}
	fmt.Fprintln(w, "imports:")
	for _, i := range rep.Imports {
		fmt.Fprintln(w, "  "+i)
	}
	if man != nil {
		fmt.Fprintf(w, "manifest: %s %s, skills %d, capabilities required %v optional %v\n", man.Name, man.Version, len(man.Skills), man.Capabilities.Required, man.Capabilities.Optional)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// buildPlugin builds the Go plugin in dir and checks the module against
// the manifest beside it.
func buildPlugin(ctx context.Context, dir string) (string, error) {
	mb, err := os.ReadFile(filepath.Join(dir, core.ManifestFile))
	if err != nil {
		return "", fmt.Errorf("%s: %w (a plugin needs its manifest)", dir, err)
	}
	man, err := core.ParseManifest(mb)
	if err != nil {
		return "", err
	}
	if gofiles, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(gofiles) == 0 {
		return "", fmt.Errorf("%s has no Go source: build its module with its own toolchain (see its README), then run portico plugin test --no-build", dir)
	}
	out := filepath.Join(dir, man.Module)
	abs, _ := filepath.Abs(out)
	b := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-ldflags=-s -w", "-o", abs, ".")
	b.Dir = dir
	b.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	if o, err := b.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, o)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return "", err
	}
	rep, err := hostapi.Inspect(ctx, man.Name, wasm, hostapi.DenyAll{}, pluginCacheDir())
	if err != nil {
		return "", err
	}
	if rep.LoadError != "" {
		return "", fmt.Errorf("%s builds but the gateway would refuse it: %s", out, rep.LoadError)
	}
	for _, k := range man.Kinds {
		if !slices.Contains(rep.ExportedKinds, k) {
			return "", fmt.Errorf("the manifest declares kind %q but the module lacks its export; register it with the SDK", k)
		}
	}
	return out, nil
}

// pluginCacheDir is the compilation cache of the CLI's plugin commands,
// under the user's cache dir, so repeated runs skip compiling.
func pluginCacheDir() string {
	if harness.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			harness.CacheDir = filepath.Join(d, "portico", "wasm-cache")
		}
	}
	return harness.CacheDir
}
