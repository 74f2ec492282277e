package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/audit"
	"github.com/porticohq/portico/core/auth"
	"github.com/porticohq/portico/core/config"
	"github.com/porticohq/portico/core/store"
)

// remote is a running gateway the CLI talks to.
type remote struct {
	url, key string
	noKey    string // with no key: where apiKey looked
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

// apiKey is the key for a running gateway: --key, PORTICO_KEY, or the
// bootstrap key in the data dir.
// apiKey returns the key an admin command sends: --key, else PORTICO_KEY,
// else the data dir's admin.key. With none it returns "" and where it
// looked, for the error a refusal then gets.
func (g *globals) apiKey(flag string, c *config.Config) (key, looked string) {
	if flag != "" {
		return flag, ""
	}
	if k := g.envValue("PORTICO_KEY"); k != "" {
		return k, ""
	}
	file := filepath.Join(c.DataDir, auth.AdminKeyFile)
	b, err := os.ReadFile(file)
	if k := strings.TrimSpace(string(b)); err == nil && k != "" {
		return k, ""
	}
	why := "is empty"
	if err != nil {
		why = "cannot be read: " + err.Error()
		if errors.Is(err, os.ErrNotExist) {
			why = "does not exist"
		}
	}
	abs, _ := filepath.Abs(file)
	return "", fmt.Sprintf("no API key was found: --key and PORTICO_KEY are not set and %s %s (run portico where its data dir is, or pass --data-dir, --key or PORTICO_KEY)", abs, why)
}

// withKey sets r's key as apiKey finds it.
func (r *remote) withKey(g *globals, flag string, c *config.Config) *remote {
	r.key, r.noKey = g.apiKey(flag, c)
	return r
}

// target loads the config and opens the data dir for offline work, or,
// when a gateway holds it (or --url/PORTICO_URL names one), returns the
// remote to talk to.
func (g *globals) target(url, key string) (*store.Badger, *remote, error) {
	c, err := config.Load(g.sources())
	if err != nil {
		return nil, nil, err
	}
	if url == "" {
		url = g.envValue("PORTICO_URL")
	}
	if url == "" {
		st, err := store.Open(c.DataDir, store.Options{MemTableBytes: c.Storage.MemTableBytes, CacheBytes: c.Storage.CacheBytes})
		if err == nil {
			return st, nil, nil
		}
		if !errors.Is(err, store.ErrLocked) {
			return nil, nil, err
		}
		if url = core.LocalURL(c.DataDir); url == "" {
			url = core.ClientURL(c.Listen)
		}
	}
	return nil, (&remote{url: url, client: httpClient(c, 30*time.Second)}).withKey(g, key, c), nil
}

func keysCmd(g *globals, stdout io.Writer) *cobra.Command {
	var url, key string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys, on a running gateway or offline on its data dir",
	}
	cmd.PersistentFlags().StringVar(&url, "url", "", "base URL of a running gateway (default: PORTICO_URL, else the data dir if no gateway holds it, else that gateway)")
	cmd.PersistentFlags().StringVar(&key, "key", "", "admin API key for the gateway (default: PORTICO_KEY, else <data-dir>/admin.key)")

	// offline runs fn on the data dir's auth service and closes it.
	offline := func(ctx context.Context, st *store.Badger, fn func(*auth.Service, *audit.Trail) error) error {
		defer st.Close()
		svc, err := auth.Open(ctx, st)
		if err != nil {
			return err
		}
		return fn(svc, audit.New(st))
	}

	var in struct {
		name, role, user, expiresIn string
		scopes                      []string
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key; its secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			role, err := auth.ParseRole(in.role)
			if err != nil {
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
			st, rem, err := g.target(url, key)
			if err != nil {
				return err
			}
			var out struct {
				Key    auth.Key `json:"key"`
				Secret string   `json:"secret"`
			}
			ctx := cmd.Context()
			if rem != nil {
				body := map[string]any{"name": in.name, "role": in.role, "user_id": in.user, "expires_at": expires, "scopes": in.scopes}
				err = rem.call(ctx, "POST", "/api/v1/keys", body, &out)
			} else {
				err = offline(ctx, st, func(svc *auth.Service, tr *audit.Trail) error {
					user := in.user
					if user == "" {
						users, _ := svc.ListUsers(1000, 0)
						for _, u := range users {
							if u.Role == auth.RoleAdmin && !u.Disabled {
								user = u.ID
								break
							}
						}
						if user == "" {
							return errors.New("no admin user in this data dir; start the gateway once, or pass --user")
						}
					}
					k, secret, err := svc.CreateKey(ctx, auth.KeyInput{Name: in.name, Role: role, UserID: user, ExpiresAt: expires, Scopes: in.scopes})
					if err != nil {
						return err
					}
					out.Key, out.Secret = k, secret
					return tr.Record(ctx, audit.Entry{Actor: "cli", Action: "key.create", Target: k.ID, Outcome: audit.Success})
				})
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
			st, rem, err := g.target(url, key)
			if err != nil {
				return err
			}
			var keys []auth.Key
			if rem != nil {
				var out struct {
					Keys []auth.Key `json:"keys"`
				}
				err = rem.call(cmd.Context(), "GET", "/api/v1/keys?limit=1000", nil, &out)
				keys = out.Keys
			} else {
				err = offline(cmd.Context(), st, func(svc *auth.Service, _ *audit.Trail) error {
					keys, _ = svc.ListKeys("", 1000, 0)
					return nil
				})
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
			st, rem, err := g.target(url, key)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if rem != nil {
				err = rem.call(ctx, "DELETE", "/api/v1/keys/"+args[0], nil, nil)
			} else {
				err = offline(ctx, st, func(svc *auth.Service, tr *audit.Trail) error {
					if err := svc.RevokeKey(ctx, args[0], ""); err != nil {
						return err
					}
					return tr.Record(ctx, audit.Entry{Actor: "cli", Action: "key.revoke", Target: args[0], Outcome: audit.Success})
				})
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
