package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
)

// apiError is an error answer of the gateway, with the message of its
// error envelope.
type apiError struct {
	URL     string
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return fmt.Sprintf("the key was refused by the gateway at %s: %s (pass a valid key with --key or PORTICO_KEY)", e.URL, e.Message)
	}
	if e.Code == "" {
		return fmt.Sprintf("the gateway at %s answered %s", e.URL, e.Message)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// send makes one request to the gateway. A transport failure becomes
// "cannot reach the gateway", an answer of 300 or more an *apiError; on
// success the caller closes the body.
func (r remote) send(ctx context.Context, client *http.Client, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.url, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("gateway URL %q: %w", r.url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the gateway at %s: %w (is it running? pass --url or PORTICO_URL)", r.url, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized && r.key == "" && r.noKey != nil {
		return nil, fmt.Errorf("the gateway at %s needs an API key and %w", r.url, r.noKey)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &apiError{URL: r.url, Status: resp.StatusCode, Message: resp.Status}
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	}
	return nil, e
}

// adminOpts are the flags every admin command shares.
type adminOpts struct {
	url, key string
	json     bool
	timeout  time.Duration
}

func addAdminFlags(cmd *cobra.Command, o *adminOpts) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.url, "url", "", "base URL of the running gateway (default: PORTICO_URL, else the address in <data-dir>/portico.addr, else the configured listen address)")
	pf.StringVar(&o.key, "key", "", "API key (default: PORTICO_KEY, else <data-dir>/admin.key)")
	pf.BoolVar(&o.json, "json", false, "print the gateway's JSON answer instead of a table, for scripts")
	pf.DurationVar(&o.timeout, "timeout", time.Minute, "give up on a request after this long (0: never; streams are never cut)")
}

// remote finds the gateway an admin command talks to: --url, PORTICO_URL,
// the data dir's address file, or the configured listen address.
func (g *globals) remote(o *adminOpts) (*remote, error) {
	c, err := g.config()
	if err != nil {
		return nil, err
	}
	u := o.url
	if u == "" {
		u = g.envValue("PORTICO_URL")
	}
	if u == "" {
		u = c.GatewayURL()
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("--timeout must not be negative, got %s", o.timeout)
	}
	return (&remote{url: u, client: c.Client(o.timeout)}).withKey(g, o.key, c), nil
}

// get fetches path; with --json it prints the answer as it came and
// returns false, else it decodes it into out and returns true.
func (r *remote) get(ctx context.Context, o *adminOpts, stdout io.Writer, path string, out any) (bool, error) {
	var raw json.RawMessage
	if err := r.call(ctx, "GET", path, nil, &raw); err != nil {
		return false, err
	}
	if o.json {
		return false, printJSON(stdout, raw)
	}
	return true, json.Unmarshal(raw, out)
}

func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("the gateway's answer is not JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// adminCmds are the commands that manage a running gateway.
func adminCmds(g *globals, stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{statusCmd(g, stdout), pluginsCmd(g, stdout, stderr), sessionsCmd(g, stdout), logsCmd(g, stdout)}
}

type statusAnswer struct {
	Version string  `json:"version"`
	Uptime  float64 `json:"uptime_seconds"`
	Ready   bool    `json:"ready"`
	Config  struct {
		Generation     uint64   `json:"generation"`
		File           string   `json:"file"`
		LastError      string   `json:"last_error"`
		ReloadRequired []string `json:"reload_required"`
	} `json:"config"`
	Storage struct {
		LSM  int64 `json:"lsm_bytes"`
		VLog int64 `json:"vlog_bytes"`
	} `json:"storage"`
	Plugins map[string]int `json:"plugins"`
	HTTP    struct {
		InFlight int64 `json:"in_flight"`
	} `json:"http"`
	Runtime struct {
		Goroutines int    `json:"goroutines"`
		Heap       uint64 `json:"heap_alloc_bytes"`
	} `json:"runtime"`
}

func statusCmd(g *globals, stdout io.Writer) *cobra.Command {
	o := &adminOpts{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running gateway's version, uptime, readiness, plugins and config state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			var s statusAnswer
			if ok, err := r.get(cmd.Context(), o, stdout, "/api/v1/status", &s); !ok {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "gateway\t%s\n", r.url)
			fmt.Fprintf(tw, "version\t%s\n", s.Version)
			fmt.Fprintf(tw, "uptime\t%s\n", (time.Duration(s.Uptime) * time.Second).String())
			fmt.Fprintf(tw, "ready\t%s\n", yesNo(s.Ready))
			fmt.Fprintf(tw, "plugins\t%s\n", pluginCounts(s.Plugins))
			fmt.Fprintf(tw, "config\tgeneration %d, file %s\n", s.Config.Generation, orDash(s.Config.File))
			if s.Config.LastError != "" {
				fmt.Fprintf(tw, "config error\t%s\n", s.Config.LastError)
			}
			if len(s.Config.ReloadRequired) > 0 {
				fmt.Fprintf(tw, "restart needed for\t%s\n", strings.Join(s.Config.ReloadRequired, ", "))
			}
			fmt.Fprintf(tw, "in flight\t%d\n", s.HTTP.InFlight)
			fmt.Fprintf(tw, "storage\t%s (lsm %s, vlog %s)\n", size(s.Storage.LSM+s.Storage.VLog), size(s.Storage.LSM), size(s.Storage.VLog))
			fmt.Fprintf(tw, "memory\t%s heap, %d goroutines\n", size(int64(s.Runtime.Heap)), s.Runtime.Goroutines)
			return tw.Flush()
		},
	}
	addAdminFlags(cmd, o)
	return cmd
}

func pluginCounts(m map[string]int) string {
	var parts []string
	for _, st := range []string{"active", "loading", "disabled", "failed"} {
		if m[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[st], st))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprint(m["total"])
	}
	return fmt.Sprintf("%d (%s)", m["total"], strings.Join(parts, ", "))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// size formats a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func pluginsCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	o := &adminOpts{}
	cmd := &cobra.Command{Use: "plugins", Short: "List, reload, disable, enable, install and remove plugins on a running gateway"}
	addAdminFlags(cmd, o)

	list := &cobra.Command{
		Use:   "list",
		Short: "List plugins with their status and call statistics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			var out struct {
				Plugins []pluginAnswer `json:"plugins"`
			}
			if ok, err := r.get(cmd.Context(), o, stdout, "/api/v1/plugins", &out); !ok {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tKINDS\tSTATUS\tSOURCE\tCALLS\tERRORS\tP50\tP99\tINSTANCES\tMEMORY\tCODE")
			for _, p := range out.Plugins {
				s := p.Stats
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", p.Name, orDash(p.Version), strings.Join(p.Kinds, ","), p.Status, p.Source,
					s.Calls, s.Errors, micros(s.Calls, s.P50Micros), micros(s.Calls, s.P99Micros), s.Instances, size(int64(p.Memory.LinearMemoryBytes)), size(p.Memory.CompiledBytes))
			}
			return tw.Flush()
		},
	}

	action := func(verb, short string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, err := g.remote(o)
				if err != nil {
					return err
				}
				var raw json.RawMessage
				if err := r.call(cmd.Context(), "POST", "/api/v1/plugins/"+url.PathEscape(args[0])+"/"+verb, nil, &raw); err != nil {
					return err
				}
				if o.json {
					return printJSON(stdout, raw)
				}
				var p pluginAnswer
				if err := json.Unmarshal(raw, &p); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s %s: %s\n", p.Name, p.Version, p.Status)
				return nil
			},
		}
	}

	install := &cobra.Command{
		Use:   "install DIR|plugin.toml",
		Short: "Upload a plugin (its manifest and module) to the gateway, which checks, compiles and activates it",
		Long: "Upload a plugin to the running gateway. DIR holds plugin.toml and the module it names (default <name>.wasm).\n" +
			"Installing a name that is installed already upgrades it. Progress goes to stderr.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			manifestFile := args[0]
			if fi, err := os.Stat(manifestFile); err == nil && fi.IsDir() {
				manifestFile = filepath.Join(manifestFile, core.ManifestFile)
			}
			manifest, err := os.ReadFile(manifestFile)
			if err != nil {
				return err
			}
			man, err := core.ParseManifest(manifest)
			if err != nil {
				return fmt.Errorf("%s: %w", manifestFile, err)
			}
			moduleFile := filepath.Join(filepath.Dir(manifestFile), man.Module)
			module, err := os.ReadFile(moduleFile)
			if err != nil {
				return fmt.Errorf("%w (build it with `portico plugin build`)", err)
			}
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for _, part := range []struct {
				name, file string
				b          []byte
			}{{"manifest", core.ManifestFile, manifest}, {"module", man.Module, module}} {
				fw, err := mw.CreateFormFile(part.name, part.file)
				if err != nil {
					return err
				}
				fw.Write(part.b)
			}
			if err := mw.Close(); err != nil {
				return err
			}
			start := time.Now()
			fmt.Fprintf(stderr, "uploading %s (%s)... ", man.Name, size(int64(body.Len())))
			pr := &progressReader{r: &body, done: func() { fmt.Fprint(stderr, "checking and compiling... ") }}
			resp, err := r.send(cmd.Context(), r.client, "POST", "/api/v1/plugins", mw.FormDataContentType(), pr)
			if err != nil {
				fmt.Fprintln(stderr, "failed")
				return err
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				fmt.Fprintln(stderr, "failed")
				return fmt.Errorf("gateway at %s: read answer: %w", r.url, err)
			}
			fmt.Fprintf(stderr, "done in %s\n", time.Since(start).Round(time.Millisecond))
			if o.json {
				return printJSON(stdout, raw)
			}
			var p pluginAnswer
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "installed %s %s: %s (skills: %s)\n", p.Name, p.Version, p.Status, orDash(strings.Join(p.Skills, ", ")))
			return nil
		},
	}

	var purge bool
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Uninstall a plugin that was installed over the API",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			path := "/api/v1/plugins/" + url.PathEscape(args[0])
			if purge {
				path += "?purge=true"
			}
			if err := r.call(cmd.Context(), "DELETE", path, nil, nil); err != nil {
				return err
			}
			if o.json {
				return printJSON(stdout, []byte(`{"removed":`+jsonString(args[0])+`}`))
			}
			fmt.Fprintf(stdout, "removed %s\n", args[0])
			return nil
		},
	}
	remove.Flags().BoolVar(&purge, "purge", false, "also delete the plugin's key-value data")

	cmd.AddCommand(list,
		action("reload", "Compile the plugin's module again and swap it in without dropping calls"),
		action("disable", "Stop a plugin: its skills answer 409 plugin_disabled until it is enabled"),
		action("enable", "Start a disabled plugin again"),
		install, remove)
	return cmd
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func micros(calls uint64, us int64) string {
	if calls == 0 {
		return "-"
	}
	if us >= 1000 {
		return fmt.Sprintf("%.1fms", float64(us)/1000)
	}
	return fmt.Sprintf("%dµs", us)
}

// progressReader calls done once, when the body has been read to its end.
type progressReader struct {
	r    io.Reader
	done func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if errors.Is(err, io.EOF) && p.done != nil {
		p.done()
		p.done = nil
	}
	return n, err
}

func sessionsCmd(g *globals, stdout io.Writer) *cobra.Command {
	o := &adminOpts{}
	cmd := &cobra.Command{Use: "sessions", Short: "List sessions and show their transcripts on a running gateway"}
	addAdminFlags(cmd, o)

	var f struct {
		status, channel, user string
		limit, offset         int
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List sessions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.limit < 1 || f.limit > 1000 || f.offset < 0 {
				return fmt.Errorf("--limit must be 1 to 1000 and --offset at least 0, got %d and %d", f.limit, f.offset)
			}
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			q := url.Values{"limit": {fmt.Sprint(f.limit)}, "offset": {fmt.Sprint(f.offset)}}
			for k, v := range map[string]string{"status": f.status, "channel": f.channel, "user_id": f.user} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var out struct {
				Sessions []sessionAnswer `json:"sessions"`
				Total    int             `json:"total"`
			}
			if ok, err := r.get(cmd.Context(), o, stdout, "/api/v1/sessions?"+q.Encode(), &out); !ok {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCHANNEL\tUSER\tSTATUS\tMESSAGES\tTOKENS\tCREATED\tLAST ACTIVITY")
			for _, s := range out.Sessions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Channel, orDash(s.UserID), s.Status, s.MessageCount,
					s.TokenUsage.Input+s.TokenUsage.Output, stamp(s.CreatedAt), stamp(s.LastActivity))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if shown := f.offset + len(out.Sessions); shown < out.Total {
				fmt.Fprintf(stdout, "%d of %d sessions shown; see more with --offset %d\n", len(out.Sessions), out.Total, shown)
			}
			return nil
		},
	}
	list.Flags().StringVar(&f.status, "status", "", "only sessions in this status: active, idle or terminated")
	list.Flags().StringVar(&f.channel, "channel", "", "only sessions on this channel")
	list.Flags().StringVar(&f.user, "user", "", "only sessions of this end user")
	list.Flags().IntVar(&f.limit, "limit", 50, "at most this many sessions (1 to 1000)")
	list.Flags().IntVar(&f.offset, "offset", 0, "skip this many sessions")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a session and its transcript",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id := url.PathEscape(args[0])
			var s, msgs json.RawMessage
			if err := r.call(ctx, "GET", "/api/v1/sessions/"+id, nil, &s); err != nil {
				return err
			}
			if err := r.call(ctx, "GET", "/api/v1/sessions/"+id+"/messages?limit=1000", nil, &msgs); err != nil {
				return err
			}
			if o.json {
				return printJSON(stdout, []byte(`{"session":`+string(s)+`,"messages":`+string(msgs)+`}`))
			}
			var sess sessionAnswer
			var tr struct {
				Messages []messageAnswer `json:"messages"`
				Total    int             `json:"total"`
			}
			if err := json.Unmarshal(s, &sess); err != nil {
				return err
			}
			if err := json.Unmarshal(msgs, &tr); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "session %s on %s, user %s, %s; %d messages, %d turns, tokens %d in / %d out\ncreated %s, last activity %s\n\n",
				sess.ID, sess.Channel, orDash(sess.UserID), sess.Status, sess.MessageCount, sess.TurnCount,
				sess.TokenUsage.Input, sess.TokenUsage.Output, stamp(sess.CreatedAt), stamp(sess.LastActivity))
			for _, m := range tr.Messages {
				who := m.Role
				if m.Skill != "" {
					who += " (" + m.Skill + ")"
				}
				fmt.Fprintf(stdout, "[%s] %s: %s\n", m.CreatedAt.UTC().Format(time.TimeOnly), who, m.Text)
			}
			if len(tr.Messages) < tr.Total {
				fmt.Fprintf(stdout, "(%d of %d messages shown)\n", len(tr.Messages), tr.Total)
			}
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// configRemoteCmds are `config get` and `config set`, which read and change
// the running gateway's configuration.
func configRemoteCmds(g *globals, stdout io.Writer) []*cobra.Command {
	o := &adminOpts{}
	get := &cobra.Command{
		Use:   "get [KEY]",
		Short: "Show the running gateway's configuration (secrets redacted), or one dotted key of it",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := r.call(cmd.Context(), "GET", "/api/v1/config", nil, &raw); err != nil {
				return err
			}
			var out struct {
				Config map[string]any `json:"config"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if len(args) == 0 {
				if o.json {
					return printJSON(stdout, raw)
				}
				b, err := toml.Parser().Marshal(out.Config)
				if err != nil {
					return err
				}
				_, err = stdout.Write(b)
				return err
			}
			var v any = out.Config
			for _, part := range strings.Split(args[0], ".") {
				m, ok := v.(map[string]any)
				if !ok {
					v = nil
					break
				}
				v = m[part]
			}
			if v == nil {
				return fmt.Errorf("no config key %q (see docs/configuration.md for the keys)", args[0])
			}
			if s, ok := v.(string); ok && !o.json {
				fmt.Fprintln(stdout, s)
				return nil
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			return printJSON(stdout, b)
		},
	}
	addAdminFlags(get, o)

	so := &adminOpts{}
	set := &cobra.Command{
		Use:   "set KEY=VALUE...",
		Short: "Change keys of the running gateway's config file (checked first; nothing changes if any is invalid)",
		Long: "Change keys of the running gateway's configuration through PATCH /api/v1/config.\n" +
			"A VALUE that parses as JSON (30, true, null, [\"a\"], \"text\") is sent as that JSON, anything else as a string;\n" +
			"null removes the key from the file.",
		Example: "  portico config set log.level=debug ratelimit.default.rate=50",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := map[string]any{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q is not KEY=VALUE", a)
				}
				var val any
				if err := json.Unmarshal([]byte(v), &val); err != nil {
					val = v
				}
				patch[k] = val
			}
			r, err := g.remote(so)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := r.call(cmd.Context(), "PATCH", "/api/v1/config", patch, &raw); err != nil {
				return err
			}
			if so.json {
				return printJSON(stdout, raw)
			}
			var res patchAnswer
			if err := json.Unmarshal(raw, &res); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "updated %s in %s (generation %d)\n", orDash(strings.Join(res.Updated, ", ")), res.File, res.Generation)
			if len(res.ReloadRequired) > 0 {
				fmt.Fprintf(stdout, "restart the gateway for: %s\n", strings.Join(res.ReloadRequired, ", "))
			}
			for k, by := range res.Overridden {
				fmt.Fprintf(stdout, "note: %s is still overridden by %s (the file changed, the value in force did not)\n", k, by)
			}
			return nil
		},
	}
	addAdminFlags(set, so)
	return []*cobra.Command{get, set}
}
