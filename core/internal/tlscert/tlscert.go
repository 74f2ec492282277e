// Package tlscert provides the certificate the gateway serves HTTPS with:
// from configured PEM files, re-read when they change (a renewal needs no
// restart), or self-signed, generated in the data dir on first start and
// kept there, so clients can pin its SHA-256 fingerprint.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/internal/atomicfile"
)

// SelfSignedDir is where, under the data dir, the self-signed certificate
// and its key are kept.
const SelfSignedDir = "tls"

// SelfSignedValidity is how long a generated certificate is valid.
const SelfSignedValidity = 5 * 365 * 24 * time.Hour

// Options configure Open.
type Options struct {
	CertFile, KeyFile string        // both empty: self-signed in DataDir
	DataDir           string        // for the self-signed certificate
	Hosts             []string      // DNS names and IPs of a generated certificate
	CheckInterval     time.Duration // how often, at most, a handshake checks the files; 0: every handshake
	Logger            *slog.Logger
}

// Info describes the certificate being served.
type Info struct {
	SHA256      string    `json:"sha256"` // of the leaf's DER bytes, "AB:CD:..."
	SelfSigned  bool      `json:"self_signed"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names"`
	IPAddresses []string  `json:"ip_addresses"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	PEM         string    `json:"pem"` // the leaf certificate
}

// Source serves the current certificate to TLS handshakes.
type Source struct {
	opts       Options
	selfSigned bool
	log        *slog.Logger
	cur        atomic.Pointer[loaded]

	mu        sync.Mutex // one check of the files at a time
	lastCheck time.Time
	failed    [2]stamp // the pair of files that last failed to load
}

type loaded struct {
	cert  *tls.Certificate
	info  Info
	stamp [2]stamp
}

// stamp tells a file's versions apart without reading it.
type stamp struct {
	mod  time.Time
	size int64
}

// Open loads the configured certificate, or generates the self-signed one
// when none is configured and none was generated before. It fails on files
// that are missing or do not hold a matching certificate and key.
func Open(o Options) (*Source, error) {
	s := &Source{opts: o, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.CertFile == "" && o.KeyFile == "" {
		s.selfSigned = true
		dir := filepath.Join(o.DataDir, SelfSignedDir)
		s.opts.CertFile, s.opts.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if _, err := os.Stat(s.opts.CertFile); errors.Is(err, os.ErrNotExist) {
			if err := Generate(s.opts.CertFile, s.opts.KeyFile, o.Hosts, time.Now()); err != nil {
				return nil, err
			}
			s.log.Info("generated a self-signed TLS certificate", "cert_file", s.opts.CertFile)
		}
	}
	l, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(l)
	s.lastCheck = time.Now()
	return s, nil
}

func statOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

func (s *Source) stamps() ([2]stamp, error) {
	c, err := statOf(s.opts.CertFile)
	if err != nil {
		return [2]stamp{}, err
	}
	k, err := statOf(s.opts.KeyFile)
	return [2]stamp{c, k}, err
}

func (s *Source) load() (*loaded, error) {
	st, err := s.stamps()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(s.opts.CertFile, s.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", s.opts.CertFile, s.opts.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parse %s: %w", s.opts.CertFile, err)
		}
	}
	info := Info{SHA256: Fingerprint(leaf.Raw), SelfSigned: s.selfSigned, Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(),
		DNSNames: append([]string{}, leaf.DNSNames...), IPAddresses: []string{}, NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))}
	for _, ip := range leaf.IPAddresses {
		info.IPAddresses = append(info.IPAddresses, ip.String())
	}
	return &loaded{cert: &cert, info: info, stamp: st}, nil
}

// check re-reads the files when they changed since the last load, at most
// once per CheckInterval. A pair that does not load (a renewal half
// written) is logged once and the certificate in use stays.
func (s *Source) check(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastCheck) < s.opts.CheckInterval {
		return
	}
	s.lastCheck = now
	st, err := s.stamps()
	if err != nil || st == s.cur.Load().stamp || st == s.failed {
		return
	}
	l, err := s.load()
	if err != nil {
		s.failed = st
		s.log.Warn("TLS certificate files changed but do not load; still serving the previous certificate", "error", err)
		return
	}
	s.cur.Store(l)
	s.log.Info("TLS certificate reloaded", "sha256", l.info.SHA256, "not_after", l.info.NotAfter)
}

// GetCertificate is tls.Config.GetCertificate.
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.check(time.Now())
	return s.cur.Load().cert, nil
}

// Info describes the certificate being served.
func (s *Source) Info() Info { return s.cur.Load().info }

// Config returns a server TLS config (TLS 1.2 and up) serving s.
func (s *Source) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate}
}

// Fingerprint is the SHA-256 of der in upper-case hex pairs joined by
// colons, as openssl x509 -fingerprint -sha256 prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Generate writes a new self-signed ECDSA P-256 certificate for hosts and
// its key (mode 0600) as PEM files, creating their directory.
func Generate(certFile, keyFile string, hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("tls: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "portico self-signed", Organization: []string{"Portico"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tls: create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: encode key: %w", err)
	}
	// The key first: a certificate on disk always has its key.
	if err := atomicfile.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := atomicfile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
