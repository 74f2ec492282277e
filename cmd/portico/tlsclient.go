package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/porticohq/portico/core/config"
	"github.com/porticohq/portico/core/tlscert"
)

// httpClient is the client the CLI talks to a gateway with. When the
// config has TLS on, it also trusts the gateway's own certificate (the
// configured cert_file, or the self-signed one in <data_dir>/tls), so the
// commands work against a local gateway with a self-signed certificate
// without turning verification off.
func httpClient(c *config.Config, timeout time.Duration) *http.Client {
	client := &http.Client{Timeout: timeout}
	if !c.TLS.Enabled {
		return client
	}
	certFile := c.TLS.CertFile
	if certFile == "" {
		certFile = filepath.Join(c.DataDir, tlscert.SelfSignedDir, "cert.pem")
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
