package pack

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Key text forms: a public key is "ed25519:<base64 of 32 bytes>" (what
// packs.trusted_keys lists), a private key "ed25519-private:<base64 of the
// 32-byte seed>".
const (
	publicPrefix  = "ed25519:"
	privatePrefix = "ed25519-private:"
	digestPrefix  = "sha256:"
	// signedContext starts every signed message, so a pack signature can
	// never be replayed as a signature of something else.
	signedContext = "portico pack signature v1\n"
)

// Signature is a pack's pack.sig: who signed which digest.
type Signature struct {
	Key       string `json:"key"`       // the signer's public key, "ed25519:..."
	Digest    string `json:"digest"`    // "sha256:<hex>" of Digest
	Signature string `json:"signature"` // base64 ed25519 signature of signedContext + Digest
}

func (s *Signature) encode() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

func parseSignature(b []byte) (*Signature, error) {
	var s Signature
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s is not a signature: %v", ErrSignature, SignatureFile, err)
	}
	if s.Key == "" || s.Digest == "" || s.Signature == "" {
		return nil, fmt.Errorf("%w: %s needs key, digest and signature", ErrSignature, SignatureFile)
	}
	return &s, nil
}

// Digest is the SHA-256 of the pack's canonical listing: one line
// "<sha256 hex> <path>\n" per file (pack.sig excepted), sorted by path. It
// depends on names and contents only, so a directory and its archive have
// the same digest.
func (p *Pack) Digest() [32]byte {
	h := sha256.New()
	for _, name := range p.paths() {
		sum := sha256.Sum256(p.files[name])
		fmt.Fprintf(h, "%x %s\n", sum, name)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func signedMessage(digest [32]byte) []byte {
	return []byte(signedContext + digestPrefix + hex.EncodeToString(digest[:]))
}

// Sign signs the pack's digest with key and sets its Signature (replacing
// any earlier one). Write the pack again (WriteTo, or WriteDir) to keep it.
func (p *Pack) Sign(key ed25519.PrivateKey) {
	d := p.Digest()
	p.Signature = &Signature{
		Key:       FormatPublicKey(key.Public().(ed25519.PublicKey)),
		Digest:    digestPrefix + hex.EncodeToString(d[:]),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedMessage(d))),
	}
}

// Verify checks the pack's signature against trusted keys: nil when it is
// a valid signature by one of them; ErrUnsigned without a signature;
// ErrSignature when the pack changed after signing or the signature is
// malformed or wrong; ErrUntrusted when it is valid but by another key.
func (p *Pack) Verify(trusted []ed25519.PublicKey) error {
	s := p.Signature
	if s == nil {
		return fmt.Errorf("%w: pack %q %s has no %s; sign it with portico pack sign", ErrUnsigned, p.Manifest.Name, p.Manifest.Version, SignatureFile)
	}
	d := p.Digest()
	if got := digestPrefix + hex.EncodeToString(d[:]); s.Digest != got {
		return fmt.Errorf("%w: pack %q: its files do not match what was signed (signed %s, files %s): it was changed after signing",
			ErrSignature, p.Manifest.Name, s.Digest, got)
	}
	pub, err := ParsePublicKey(s.Key)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSignature, SignatureFile, err)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || !ed25519.Verify(pub, signedMessage(d), sig) {
		return fmt.Errorf("%w: pack %q: the signature does not match key %s", ErrSignature, p.Manifest.Name, s.Key)
	}
	for _, k := range trusted {
		if k.Equal(pub) {
			return nil
		}
	}
	return fmt.Errorf("%w: pack %q is signed by %s, which is not among the trusted keys (packs.trusted_keys)", ErrUntrusted, p.Manifest.Name, s.Key)
}

// GenerateKey makes a new key pair for signing packs.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// FormatPublicKey writes a public key as "ed25519:<base64>".
func FormatPublicKey(k ed25519.PublicKey) string {
	return publicPrefix + base64.StdEncoding.EncodeToString(k)
}

// ParsePublicKey reads "ed25519:<base64>".
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), publicPrefix)
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q is not \"ed25519:<base64 of %d bytes>\"", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePublicKeys reads a list of public keys, such as packs.trusted_keys.
func ParsePublicKeys(list []string) ([]ed25519.PublicKey, error) {
	out := make([]ed25519.PublicKey, 0, len(list))
	for _, s := range list {
		k, err := ParsePublicKey(s)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// FormatPrivateKey writes a private key as "ed25519-private:<base64 seed>".
func FormatPrivateKey(k ed25519.PrivateKey) string {
	return privatePrefix + base64.StdEncoding.EncodeToString(k.Seed())
}

// ParsePrivateKey reads "ed25519-private:<base64 seed>" (surrounding
// white space, such as a file's last newline, is ignored).
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), privatePrefix)
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("private key is not \"ed25519-private:<base64 of a %d-byte seed>\"", ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// Check applies a signature policy to p: the trusted keys (as
// FormatPublicKey writes them) and whether a signature by one of them is
// required (the gateway's packs.signatures and packs.trusted_keys). It
// returns whether p carries a valid signature by a trusted key. It
// refuses, when a signature is required, a pack that is unsigned
// (ErrUnsigned) or signed by an untrusted key (ErrUntrusted); and always a
// pack whose signature does not verify (ErrSignature): it was changed
// after signing.
func Check(p *Pack, trustedKeys []string, required bool) (trusted bool, err error) {
	keys, err := ParsePublicKeys(trustedKeys)
	if err != nil {
		return false, err
	}
	err = p.Verify(keys)
	switch {
	case err == nil:
		return true, nil
	case required:
		return false, fmt.Errorf("%w (packs.signatures requires a signature by a trusted key)", err)
	case errors.Is(err, ErrUnsigned), errors.Is(err, ErrUntrusted):
		return false, nil
	}
	return false, err
}
