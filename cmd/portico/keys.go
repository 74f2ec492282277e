package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
)

// remote is a running gateway the CLI talks to.
type remote struct {
	url, key string
	noKey    error // with no key: why apiKey found none
	client   *http.Client
}

// call sends a JSON request and decodes a JSON answer into out; an error
// answer becomes an *apiError carrying the server's message.
func (r remote) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := r.send(ctx, r.client, method, path, "application/json", rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("gateway at %s: read answer: %w", r.url, err)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// apiKey returns the key an admin command sends: --key, else PORTICO_KEY,
// else the data dir's admin.key. With none, the error says where it looked.
func (g *globals) apiKey(flag string, c *core.Config) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if k := g.envValue("PORTICO_KEY"); k != "" {
		return k, nil
	}
	k, err := c.AdminKey()
	if err != nil {
		return "", fmt.Errorf("%w: --key and PORTICO_KEY are not set and %s (run portico where its data dir is, or pass --data-dir, --key or PORTICO_KEY)",
			core.ErrNoAdminKey, strings.TrimPrefix(err.Error(), core.ErrNoAdminKey.Error()+": "))
	}
	return k, nil
}

// withKey sets r's key as apiKey finds it; with none, r keeps why, for the
// error a refusal then gets.
func (r *remote) withKey(g *globals, flag string, c *core.Config) *remote {
	r.key, r.noKey = "", nil
	if k, err := g.apiKey(flag, c); err == nil {
		r.key = k
	} else {
		r.noKey = err
	}
	return r
}

// target loads the config and opens the data dir's keys for offline work,
// or, when a gateway holds it (or --url/PORTICO_URL names one), returns the
// remote to talk to.
func (g *globals) target(url, key string) (*core.Keys, *remote, error) {
	c, err := g.config()
	if err != nil {
		return nil, nil, err
	}
	if url == "" {
		url = g.envValue("PORTICO_URL")
	}
	if url == "" {
		keys, err := core.OpenKeys(context.Background(), c)
		if err == nil {
			return keys, nil, nil
		}
		if !errors.Is(err, core.ErrGatewayRunning) {
			return nil, nil, err
		}
		url = c.GatewayURL()
	}
	return nil, (&remote{url: url, client: c.Client(30 * time.Second)}).withKey(g, key, c), nil
}

// keyAnswer is a key as GET /api/v1/keys and POST /api/v1/keys answer it
// (docs/http-api.md), and as the offline commands print it.
type keyAnswer struct {
	ID         string     `json:"id"`
	Prefix     string     `json:"prefix"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	UserID     string     `json:"user_id"`
	Scopes     []string   `json:"scopes"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func keyOf(k core.Key) keyAnswer {
	return keyAnswer{ID: k.ID, Prefix: k.Prefix, Name: k.Name, Role: k.Role.String(), UserID: k.UserID, Scopes: k.Scopes, ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt}
}

func keysCmd(g *globals, stdout io.Writer) *cobra.Command {
	var url, key string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys, on a running gateway or offline on its data dir",
	}
	cmd.PersistentFlags().StringVar(&url, "url", "", "base URL of a running gateway (default: PORTICO_URL, else the data dir if no gateway holds it, else that gateway)")
	cmd.PersistentFlags().StringVar(&key, "key", "", "admin API key for the gateway (default: PORTICO_KEY, else <data-dir>/admin.key)")

	var in struct {
		name, role, user, expiresIn string
		scopes                      []string
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key; its secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := core.ParseRole(in.role); err != nil {
				return err
			}
			var expires *time.Time
			if in.expiresIn != "" {
				d, err := time.ParseDuration(in.expiresIn)
				if err != nil || d <= 0 {
					return fmt.Errorf("--expires-in must be a positive duration such as 720h, got %q", in.expiresIn)
				}
				t := time.Now().Add(d).UTC()
				expires = &t
			}
			keys, rem, err := g.target(url, key)
			if err != nil {
				return err
			}
			var out struct {
				Key    keyAnswer `json:"key"`
				Secret string    `json:"secret"`
			}
			ctx := cmd.Context()
			if rem != nil {
				body := map[string]any{"name": in.name, "role": in.role, "user_id": in.user, "expires_at": expires, "scopes": in.scopes}
				err = rem.call(ctx, "POST", "/api/v1/keys", body, &out)
			} else {
				defer keys.Close()
				var k core.Key
				k, out.Secret, err = keys.Create(ctx, core.KeyInput{Name: in.name, Role: in.role, UserID: in.user, ExpiresAt: expires, Scopes: in.scopes})
				out.Key = keyOf(k)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created key %s %q (%s) for user %s\n%s\nstore the secret now: it is not shown again\n", out.Key.ID, out.Key.Name, out.Key.Role, out.Key.UserID, out.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&in.name, "name", "", "what the key is for (required)")
	create.Flags().StringVar(&in.role, "role", "user", "user, operator or admin")
	create.Flags().StringVar(&in.user, "user", "", "owner's user id (default: the caller's user online, the first admin offline)")
	create.Flags().StringVar(&in.expiresIn, "expires-in", "", "lifetime such as 720h (default: no expiry)")
	create.Flags().StringSliceVar(&in.scopes, "scopes", nil, "skills the key may invoke, comma-separated (default: all)")
	create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			offline, rem, err := g.target(url, key)
			if err != nil {
				return err
			}
			var keys []keyAnswer
			if rem != nil {
				var out struct {
					Keys []keyAnswer `json:"keys"`
				}
				err = rem.call(cmd.Context(), "GET", "/api/v1/keys?limit=1000", nil, &out)
				keys = out.Keys
			} else {
				defer offline.Close()
				var list []core.Key
				list, err = offline.List()
				for _, k := range list {
					keys = append(keys, keyOf(k))
				}
			}
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tROLE\tUSER\tEXPIRES\tLAST USED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Name, k.Role, k.UserID, when(k.ExpiresAt), when(k.LastUsedAt))
			}
			return tw.Flush()
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke a key; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			offline, rem, err := g.target(url, key)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if rem != nil {
				err = rem.call(ctx, "DELETE", "/api/v1/keys/"+args[0], nil, nil)
			} else {
				defer offline.Close()
				err = offline.Revoke(ctx, args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
