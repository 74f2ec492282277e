package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/porticohq/portico/core/internal/httpapi"
	"github.com/porticohq/portico/core/internal/store"
)

// ErrGatewayRunning reports that a data dir is held by a running gateway:
// back it up through the gateway's admin route instead.
var ErrGatewayRunning = store.ErrLocked

// BackupDataDir writes an online-consistent backup of a data dir that no
// gateway holds. It returns ErrGatewayRunning (store.ErrLocked) when one does.
func BackupDataDir(ctx context.Context, c *Config, w io.Writer) error {
	st, err := openConfigured(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Backup(ctx, w)
}

// RestoreDataDir loads a backup into a stopped gateway's data dir. Without
// replace the data dir must hold no data (ErrDataDirNotEmpty); with it,
// its data is dropped first.
func RestoreDataDir(ctx context.Context, c *Config, r io.Reader, replace bool) error {
	if c.c.Storage.Backend == "postgres" {
		return errors.New("storage.backend is postgres: restore the database with pg_restore from a pg_dump (docs/operations.md); portico restore loads backups of the embedded store")
	}
	st, err := openDataDir(c)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w; stop the gateway before restoring", err)
		}
		return err
	}
	defer st.Close()
	return st.Restore(ctx, r, replace)
}

// FetchBackup streams a backup from a running gateway's
// POST /api/v1/admin/backup into w. It fails if the gateway reports, in the
// response's trailer, that the stream broke off.
func FetchBackup(ctx context.Context, client *http.Client, baseURL, apiKey string, w io.Writer) (int64, error) {
	url := strings.TrimRight(baseURL, "/") + "/api/v1/admin/backup"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, err
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backup from %s: %w", baseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("backup from %s: %s: %s", baseURL, resp.Status, strings.TrimSpace(string(b)))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup from %s: %w", baseURL, err)
	}
	if st := resp.Trailer.Get(httpapi.BackupStatusTrailer); st != "ok" {
		if st == "" {
			st = "no completion status received"
		}
		return n, fmt.Errorf("backup from %s is incomplete: %s", baseURL, st)
	}
	return n, nil
}

// ClientURL turns a listen address into a URL a local client can reach:
// an unspecified host (":3120", "0.0.0.0:3120") becomes loopback.
func ClientURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
