package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/internal/atomicfile"
)

// globals are the flags every command shares.
type globals struct {
	configFile string
	dataDir    string
	listen     string
	cpuProfile string
	memProfile string
	env        []string
	cmd        *cobra.Command
}

// options turns the flags and environment into the gateway's options; a
// flag that was not given leaves lower layers alone.
func (g *globals) options() core.Options {
	flags := map[string]string{}
	if g.cmd.Flags().Changed("data-dir") {
		flags["data_dir"] = g.dataDir
	}
	if g.cmd.Flags().Changed("listen") {
		flags["listen"] = g.listen
	}
	return core.Options{ConfigFile: g.configFile, Environ: g.env, Settings: flags}
}

// config loads the configuration the flags and environment give.
func (g *globals) config() (*core.Config, error) { return core.LoadConfig(g.options()) }

func (g *globals) envValue(name string) string {
	for _, kv := range g.env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// errorText formats an error for the terminal: config problems one per line.
func errorText(err error) string {
	if errors.Is(err, core.ErrInvalidConfig) {
		return "invalid configuration:\n  " + strings.Join(core.Problems(err), "\n  ")
	}
	return err.Error()
}

func newRoot(stdout, stderr io.Writer, env []string) *cobra.Command {
	g := &globals{env: env}
	root := &cobra.Command{
		Use:           "portico",
		Short:         "Portico: a plugin-extensible gateway for AI agents",
		Long:          "Portico is a gateway for AI agents whose features are WebAssembly plugins.\nWith no subcommand it runs `portico serve`.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), g, stderr) },
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			g.cmd = cmd
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "config file (TOML, or YAML by extension); default: PORTICO_CONFIG, else <data-dir>/portico.toml if it exists")
	pf.StringVar(&g.dataDir, "data-dir", "", "data directory (config key data_dir; default ./portico-data)")
	pf.StringVar(&g.listen, "listen", "", "HOST:PORT to listen on (config key listen; default 127.0.0.1:3120)")

	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), g, stderr) },
	}
	for _, c := range []*cobra.Command{root, serveCmd} {
		c.Flags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for go tool pprof)")
		c.Flags().StringVar(&g.memProfile, "memprofile", "", "write an allocation profile to this file at shutdown (for go tool pprof)")
	}
	root.AddCommand(
		serveCmd,
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(stdout, "portico", core.VersionString()) },
		},
		configCmd(g, stdout),
		backupCmd(g, stdout),
		keysCmd(g, stdout),
		pluginCmd(stdout),
		restoreCmd(g, stdout),
		migrateCmd(g, stdout),
	)
	root.AddCommand(adminCmds(g, stdout, stderr)...)
	root.AddCommand(packCmd(g, stdout, stderr))
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// fail on an unknown subcommand, with suggestions, where cobra would print
// the help and exit 0 (`portico plugin list` is `portico plugins list`).
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c.Run != nil || c.RunE != nil || !c.HasSubCommands() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownSubcommand(cmd, args[0])
	}
}

func unknownSubcommand(cmd *cobra.Command, name string) error {
	var hints []string
	near := func(c *cobra.Command, typed string) []string {
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		return c.SuggestionsFor(typed)
	}
	// The subcommand under a sibling of a similar name: plugin vs plugins.
	if parent := cmd.Parent(); parent != nil {
		for _, sib := range near(parent, cmd.Name()) {
			if c, _, err := parent.Find([]string{sib, name}); err == nil && c.Name() == name {
				hints = append(hints, fmt.Sprintf("%q", c.CommandPath()))
			}
		}
	}
	for _, s := range near(cmd, name) {
		hints = append(hints, fmt.Sprintf("%q", cmd.CommandPath()+" "+s))
	}
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if len(hints) > 0 {
		msg += "; did you mean " + strings.Join(hints, " or ") + "?"
	}
	return errors.New(msg + " (run " + cmd.CommandPath() + " --help for its commands)")
}

func serve(ctx context.Context, g *globals, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opts := g.options()
	opts.LogOutput = stderr
	gw, err := core.New(opts)
	if err != nil {
		return err
	}
	if g.cpuProfile != "" {
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if g.memProfile != "" {
		defer func() {
			f, err := os.Create(g.memProfile)
			if err != nil {
				fmt.Fprintln(stderr, "portico: memory profile:", err)
				return
			}
			defer f.Close()
			pprof.Lookup("allocs").WriteTo(f, 0)
		}()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	return gw.Run(ctx)
}

func configCmd(g *globals, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check and show configuration (print, validate: offline; get, set: on the running gateway)"}
	var asJSON bool
	printCmd := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (defaults < file < env < flags), secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			var b []byte
			if asJSON {
				b, err = json.MarshalIndent(c.Redacted(), "", "  ")
				b = append(b, '\n')
			} else {
				b, err = toml.Parser().Marshal(c.Redacted())
			}
			if err != nil {
				return err
			}
			_, err = stdout.Write(b)
			return err
		},
	}
	printCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of TOML")
	validateCmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file (with the environment and flags on top) without starting anything",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := g.options()
			o.ConfigFile = args[0]
			if _, err := core.LoadConfig(o); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s is valid\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(printCmd, validateCmd)
	cmd.AddCommand(configRemoteCmds(g, stdout)...)
	return cmd
}

func backupCmd(g *globals, stdout io.Writer) *cobra.Command {
	var url, key string
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a backup of the data: from the running gateway if one holds the data dir, else from the data dir itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			if url == "" {
				url = g.envValue("PORTICO_URL")
			}
			ctx := cmd.Context()
			how := ""
			// A failed backup never leaves a truncated file that looks like a good one.
			err = atomicfile.Write(args[0], 0o600, func(w io.Writer) error {
				if url == "" {
					err := core.BackupDataDir(ctx, c, w)
					if !errors.Is(err, core.ErrGatewayRunning) {
						how = "from data dir " + c.DataDir()
						return err
					}
					url = c.GatewayURL()
				}
				how = "from the gateway at " + url
				k, err := g.apiKey(key, c)
				if err != nil {
					return fmt.Errorf("the gateway at %s needs an API key for a backup and %w", url, err)
				}
				_, err = core.FetchBackup(ctx, c.Client(0), url, k, w)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "backup written to %s (%s)\n", args[0], how)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "base URL of a running gateway (default: PORTICO_URL, else the data dir, else the configured listen address)")
	cmd.Flags().StringVar(&key, "key", "", "admin API key for the gateway (default: PORTICO_KEY, else <data-dir>/admin.key)")
	return cmd
}

func migrateCmd(g *globals, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Show the PostgreSQL schema's migrations (a gateway applies them itself at start)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List every migration this build knows and whether the database has it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			ms, err := core.Migrations(cmd.Context(), c)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
			newer := 0
			for _, m := range ms {
				at := "pending (applied at the next start)"
				if m.AppliedAt != nil {
					at = m.AppliedAt.UTC().Format(time.RFC3339)
				}
				name := m.Name
				if !m.Known {
					name += " (unknown to this build)"
					newer++
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, name, at)
			}
			tw.Flush()
			if newer > 0 {
				return fmt.Errorf("the database has %d migration(s) newer than this build; a gateway of this build refuses to start on it", newer)
			}
			return nil
		},
	})
	return cmd
}

func restoreCmd(g *globals, stdout io.Writer) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Load a backup into the data dir of a stopped gateway",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if err := core.RestoreDataDir(cmd.Context(), c, f, replace); err != nil {
				if errors.Is(err, core.ErrDataDirNotEmpty) {
					return fmt.Errorf("%w (pass --replace to drop the data in %s first)", err, c.DataDir())
				}
				return err
			}
			fmt.Fprintf(stdout, "restored %s into %s\n", args[0], c.DataDir())
			return nil
		},
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "drop the data dir's current data before loading the backup")
	return cmd
}
