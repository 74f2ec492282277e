package core_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/internal/logs"
	"github.com/porticohq/portico/core/internal/tlscert"
)

// pinnedClient trusts only the certificate with fingerprint pin.
func pinnedClient(pin string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the pin below is the verification
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := tlscert.Fingerprint(cs.PeerCertificates[0].Raw); got != pin {
				return errors.New("pinned fingerprint mismatch: " + got)
			}
			return nil
		},
	}}}
}

func getWith(t *testing.T, c *http.Client, url string) (int, []byte, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestTLSSelfSigned(t *testing.T) {
	g := start(t, small+"[tls]\nenabled = true\n")
	url := "https://" + g.Addr()
	// The fingerprint is in the log at start.
	lines, _ := g.Logs().Query(logs.Filter{}, 1000)
	var pin string
	for _, e := range lines {
		if s, ok := e.Attrs["sha256"].(string); ok && strings.HasPrefix(e.Message, "serving HTTPS") {
			pin = s
		}
	}
	if pin == "" {
		t.Fatal("no fingerprint in the log")
	}
	c := pinnedClient(pin)
	status, body, err := getWith(t, c, url+"/cert")
	if err != nil || status != 200 {
		t.Fatalf("GET /cert: %d %v %s", status, err, body)
	}
	var info tlscert.Info
	json.Unmarshal(body, &info)
	if info.SHA256 != pin || !info.SelfSigned || !strings.HasPrefix(info.PEM, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("/cert %+v, log says %s", info, pin)
	}
	if status, body, err := getWith(t, c, url+"/api/v1/status/health"); err != nil || status != 200 {
		t.Errorf("health over TLS: %d %v %s", status, err, body)
	}
	// A client pinning another certificate, or one verifying with the
	// system roots, refuses the gateway; plain HTTP gets nowhere.
	if _, _, err := getWith(t, pinnedClient(tlscert.Fingerprint([]byte("other"))), url+"/health"); err == nil {
		t.Error("a wrong pin was accepted")
	}
	if _, _, err := getWith(t, client, url+"/health"); err == nil {
		t.Error("a self-signed certificate passed standard verification")
	}
	if status, _, _ := getWith(t, client, "http://"+g.Addr()+"/health"); status == 200 {
		t.Error("plain HTTP served")
	}
	if got := core.LocalURL(g.dir); got != url {
		t.Errorf("LocalURL = %q, want %q", got, url)
	}
	if _, err := os.Stat(filepath.Join(g.dir, tlscert.SelfSignedDir, "key.pem")); err != nil {
		t.Errorf("key not in the data dir: %v", err)
	}
}

func TestTLSFilesAndCertOff(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlscert.Generate(cert, key, []string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	g := start(t, small+"[tls]\nenabled = true\ncheck_interval = \"0s\"\ncert_file = \""+cert+"\"\nkey_file = \""+key+"\"\n")
	url := "https://" + g.Addr()
	first := tlscert.Fingerprint(mustLeaf(t, cert))
	if status, body, err := getWith(t, pinnedClient(first), url+"/cert"); err != nil || status != 200 || !strings.Contains(string(body), first) {
		t.Fatalf("GET /cert: %d %v %s", status, err, body)
	}
	// The files are renewed: the next connection gets the new certificate.
	if err := tlscert.Generate(cert, key, []string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(cert, later, later)
	os.Chtimes(key, later, later)
	second := tlscert.Fingerprint(mustLeaf(t, cert))
	if status, _, err := getWith(t, pinnedClient(second), url+"/health"); err != nil || status != 200 {
		t.Errorf("after renewal: %d %v", status, err)
	}

	// Without TLS, /cert is 404 in the envelope.
	plain := start(t, small)
	if r := do(t, "GET", plain.url+"/cert", ""); r.status != 404 || r.errCode(t) != "not_found" {
		t.Errorf("/cert with TLS off: %d %s", r.status, r.body)
	}
}

func mustLeaf(t *testing.T, certFile string) []byte {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, strings.TrimSuffix(certFile, "cert.pem")+"key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate[0]
}
