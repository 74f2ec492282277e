package tlscert

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var errPin = errors.New("certificate does not match the pinned fingerprint")

// pinnedGet fetches url over a new TLS connection that accepts only the
// certificate with fingerprint pin, and returns the fingerprint it saw.
func pinnedGet(t *testing.T, url, pin string) (string, error) {
	t.Helper()
	var seen string
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // verification is the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = Fingerprint(cs.PeerCertificates[0].Raw)
			if seen != pin {
				return errPin
			}
			return nil
		},
	}}}
	resp, err := c.Get(url)
	if err != nil {
		return seen, err
	}
	resp.Body.Close()
	return seen, nil
}

// serve runs an HTTPS server on loopback with s.
func serve(t *testing.T, s *Source) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{DataDir: dir, Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	info := s.Info()
	if !info.SelfSigned || len(info.SHA256) != 95 || info.DNSNames[0] != "localhost" || info.IPAddresses[0] != "127.0.0.1" {
		t.Errorf("info %+v", info)
	}
	fi, err := os.Stat(filepath.Join(dir, SelfSignedDir, "key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", fi, err)
	}
	// A restart keeps the certificate, so pins stay valid.
	again, err := Open(Options{DataDir: dir, Hosts: []string{"localhost"}})
	if err != nil || again.Info().SHA256 != info.SHA256 {
		t.Fatalf("second start: %v, fingerprint %s then %s", err, info.SHA256, again.Info().SHA256)
	}
	url := serve(t, s)
	if _, err := pinnedGet(t, url, info.SHA256); err != nil {
		t.Errorf("pinned client refused: %v", err)
	}
	if _, err := pinnedGet(t, url, Fingerprint([]byte("another"))); !errors.Is(err, errPin) {
		t.Errorf("a wrong pin was accepted: %v", err)
	}
	// A standard client that trusts the system roots refuses it.
	if _, err := http.Get(url); err == nil {
		t.Error("a self-signed certificate passed standard verification")
	}
}

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	now := time.Now()
	if err := Generate(cert, key, []string{"127.0.0.1"}, now); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{CertFile: cert, KeyFile: key}) // CheckInterval 0: every handshake
	if err != nil {
		t.Fatal(err)
	}
	first := s.Info().SHA256
	url := serve(t, s)
	if _, err := pinnedGet(t, url, first); err != nil {
		t.Fatal(err)
	}
	// A renewal: new files, with a later modification time.
	later := now.Add(time.Minute)
	if err := Generate(cert, key, []string{"127.0.0.1"}, now); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cert, key} {
		os.Chtimes(f, later, later)
	}
	second, err := pinnedGet(t, url, "")
	if second == first || second == "" {
		t.Fatalf("after the files changed the server still serves %s (err %v)", second, err)
	}
	if s.Info().SHA256 != second {
		t.Errorf("Info says %s, the handshake %s", s.Info().SHA256, second)
	}
	// A broken renewal keeps the certificate in use.
	os.WriteFile(cert, []byte("not a certificate"), 0o644)
	os.Chtimes(cert, later.Add(time.Minute), later.Add(time.Minute))
	if got, err := pinnedGet(t, url, second); err != nil || got != second {
		t.Errorf("after a broken renewal: %s, %v; want %s", got, err, second)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := Generate(good, key, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "o")
	if err := Generate(other+"c.pem", other+"k.pem", []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, cert, key string }{
		{"missing cert", filepath.Join(dir, "none.pem"), key},
		{"missing key", good, filepath.Join(dir, "none.pem")},
		{"key of another certificate", good, other + "k.pem"},
		{"not PEM", key, good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(Options{CertFile: tt.cert, KeyFile: tt.key}); err == nil {
				t.Error("opened")
			}
		})
	}
}

func TestFingerprintFormat(t *testing.T) {
	fp := Fingerprint([]byte("x"))
	if len(fp) != 32*3-1 || fp[2] != ':' || net.ParseIP(fp) != nil {
		t.Errorf("fingerprint %q", fp)
	}
	if fp != "2D:71:16:42:B7:26:B0:44:01:62:7C:A9:FB:AC:32:F5:C8:53:0F:B1:90:3C:C4:DB:02:25:87:17:92:1A:48:81" {
		t.Errorf("fingerprint of \"x\" = %s", fp)
	}
}
