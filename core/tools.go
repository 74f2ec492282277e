package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/tlscert"
	"github.com/porticohq/portico/core/internal/webhook"
)

// What the tools around a gateway need besides serving it: the binary's
// offline commands (config validate and print, keys on a data dir, backup
// and restore) and its admin client (where the running gateway is, which
// key to send, which certificate to trust).

// Config is a loaded and validated configuration. It is immutable.
type Config struct {
	c    *config.Config
	file string
}

// LoadConfig builds the configuration from the layers New reads (o's
// Config, ConfigFile, Environ and Settings) and checks it as strictly as
// New does; errors match ErrInvalidConfig and name each bad key. Nothing
// is opened or started.
func LoadConfig(o Options) (*Config, error) {
	m, err := config.NewManager(o.sources(), nil)
	if err != nil {
		return nil, err
	}
	return &Config{c: m.Config(), file: m.File()}, nil
}

// DataDir is the data directory (data_dir).
func (c *Config) DataDir() string { return c.c.DataDir }

// Listen is the address the gateway listens on (listen).
func (c *Config) Listen() string { return c.c.Listen }

// File is the config file read, or the one PATCH /api/v1/config would
// create when there is none.
func (c *Config) File() string { return c.file }

// Redacted is the whole configuration as nested maps keyed like the file,
// every secret replaced by "[redacted]": for printing.
func (c *Config) Redacted() map[string]any { return c.c.Nested(true) }

// GatewayURL is where an admin client finds the gateway: the address the
// gateway serving DataDir recorded when it started, else Listen made
// reachable (an unspecified host becomes loopback).
func (c *Config) GatewayURL() string {
	if u := LocalURL(c.c.DataDir); u != "" {
		return u
	}
	return ClientURL(c.c.Listen)
}

// ErrNoAdminKey is what AdminKey returns when the data dir holds no admin
// key; its message says where it looked.
var ErrNoAdminKey = errors.New("no API key was found")

// AdminKey reads the admin key the gateway wrote to the data dir on its
// first start (<data_dir>/admin.key). Without one the error matches
// ErrNoAdminKey and names the file and why it could not be used.
func (c *Config) AdminKey() (string, error) {
	file, _ := filepath.Abs(filepath.Join(c.c.DataDir, auth.AdminKeyFile))
	b, err := os.ReadFile(file)
	if k := strings.TrimSpace(string(b)); err == nil && k != "" {
		return k, nil
	}
	why := "is empty"
	switch {
	case errors.Is(err, os.ErrNotExist):
		why = "does not exist"
	case err != nil:
		why = "cannot be read: " + err.Error()
	}
	return "", fmt.Errorf("%w: %s %s", ErrNoAdminKey, file, why)
}

// Client is an HTTP client for the gateway with the given timeout (0: none).
// With TLS on it also trusts the gateway's own certificate (tls.cert_file,
// or the self-signed one in the data dir), so a local gateway with a
// self-signed certificate is reached without turning verification off.
func (c *Config) Client(timeout time.Duration) *http.Client {
	client := &http.Client{Timeout: timeout}
	if !c.c.TLS.Enabled {
		return client
	}
	certFile := c.c.TLS.CertFile
	if certFile == "" {
		certFile = filepath.Join(c.c.DataDir, tlscert.SelfSignedDir, "cert.pem")
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return client // not readable here: the system roots decide
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client.Transport = tr
	return client
}

// ErrDataDirNotEmpty is what RestoreDataDir returns, without replace, for
// a data dir that holds data.
var ErrDataDirNotEmpty = store.ErrNotEmpty

func openDataDir(c *Config) (*store.Badger, error) { return openBadger(c.c, nil) }

// openConfigured opens the store storage.backend names: the data dir's
// Badger (ErrGatewayRunning while a gateway holds it), or PostgreSQL,
// which running gateways share with the offline tools.
func openConfigured(ctx context.Context, c *Config) (store.Store, error) {
	return openStore(ctx, nil, c.c, nil)
}

// Migration is one step of the PostgreSQL schema as a database has it.
type Migration = store.MigrationState

// Migrations lists the PostgreSQL schema's migrations this build knows
// and those the database has (`portico migrate status`), changing nothing.
func Migrations(ctx context.Context, c *Config) ([]Migration, error) {
	if c.c.Storage.Backend != "postgres" {
		return nil, fmt.Errorf("storage.backend is %s: only the postgres backend has a schema to migrate", c.c.Storage.Backend)
	}
	p := c.c.Storage.Postgres
	return store.PostgresMigrations(ctx, store.PostgresOptions{URL: p.URL, MaxConns: 1, StatementTimeout: p.StatementTimeout.D(), ConnectTimeout: p.ConnectTimeout.D()})
}

// Key is an API key as the gateway lists it (never its secret).
type Key = auth.Key

// KeyInput describes a key to create.
type KeyInput struct {
	Name      string
	Role      string // user, operator or admin
	UserID    string // "" on a data dir: its first enabled admin
	ExpiresAt *time.Time
	Scopes    []string // skills the key may invoke; empty: all
}

// Keys are the API keys of a data dir that no gateway holds, for the
// binary's offline keys commands; a running gateway's keys are managed
// over its API. Every change is audited with the actor "cli".
type Keys struct {
	st    store.Store
	svc   *auth.Service
	trail *audit.Trail
}

// OpenKeys opens the data dir's store. It returns ErrGatewayRunning when a
// gateway holds the data dir. Close it when done.
func OpenKeys(ctx context.Context, c *Config) (*Keys, error) {
	st, err := openConfigured(ctx, c)
	if err != nil {
		return nil, err
	}
	svc, err := auth.Open(ctx, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Keys{st: st, svc: svc, trail: audit.New(st)}, nil
}

// Create makes a key and returns it with its secret, which is shown once.
func (k *Keys) Create(ctx context.Context, in KeyInput) (Key, string, error) {
	role, err := auth.ParseRole(in.Role)
	if err != nil {
		return Key{}, "", err
	}
	user := in.UserID
	if user == "" {
		users, _ := k.svc.ListUsers(1000, 0)
		for _, u := range users {
			if u.Role == auth.RoleAdmin && !u.Disabled {
				user = u.ID
				break
			}
		}
		if user == "" {
			return Key{}, "", errors.New("no admin user in this data dir; start the gateway once, or pass the owner's user id")
		}
	}
	key, secret, err := k.svc.CreateKey(ctx, auth.KeyInput{Name: in.Name, Role: role, UserID: user, ExpiresAt: in.ExpiresAt, Scopes: in.Scopes})
	if err != nil {
		return Key{}, "", err
	}
	return key, secret, k.trail.Record(ctx, audit.Entry{Actor: "cli", Action: "key.create", Target: key.ID, Outcome: audit.Success})
}

// List returns up to 1000 keys, newest first.
func (k *Keys) List() ([]Key, error) {
	keys, _ := k.svc.ListKeys("", 1000, 0)
	return keys, nil
}

// Revoke revokes a key; it stops working at once.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	if err := k.svc.RevokeKey(ctx, id, ""); err != nil {
		return err
	}
	return k.trail.Record(ctx, audit.Entry{Actor: "cli", Action: "key.revoke", Target: id, Outcome: audit.Success})
}

// Close closes the data dir.
func (k *Keys) Close() error { return k.st.Close() }

// ParseRole checks a role name (user, operator or admin).
func ParseRole(s string) error {
	_, err := auth.ParseRole(s)
	return err
}

// Webhook delivery headers: the event type, the delivery's timestamp and
// its signatures (docs/webhooks.md).
const (
	WebhookEventHeader     = webhook.HeaderEvent
	WebhookTimestampHeader = webhook.HeaderTimestamp
	WebhookSignatureHeader = webhook.HeaderSignature
)

// VerifyWebhook reports whether signature (a Portico-Signature header, one
// or more "v1=<hex>") signs timestamp and body with secret, the way a
// receiver of the gateway's webhooks checks a delivery. The timestamp's
// age is the receiver's to check.
func VerifyWebhook(secret, timestamp, signature string, body []byte) bool {
	return webhook.Verify(secret, timestamp, signature, body)
}

// AdminKeyFile is the file in the data dir where the gateway writes its
// first admin key.
const AdminKeyFile = auth.AdminKeyFile
