package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"

	"github.com/golang-jwt/jwt/v5"

	"github.com/porticohq/portico/core/internal/config"
)

// jwtVerifier checks bearer JWTs against the configured secret and keys.
type jwtVerifier struct {
	secret    []byte
	keys      map[string]any // kid -> *rsa.PublicKey or *ecdsa.PublicKey
	methods   []string
	roleClaim string
	parser    *jwt.Parser
}

// Apply applies the auth.jwt keys of c (SetJWT).
func (s *Service) Apply(_ context.Context, c *config.Config) error { return s.SetJWT(c.Auth.JWT) }

// Close records the keys' last use (FlushLastUsed).
func (s *Service) Close(ctx context.Context) error { return s.FlushLastUsed(ctx) }

// SetJWT applies the auth.jwt config: on when a secret or a JWKS file is
// set, off otherwise. A JWKS file that cannot be read or parsed is an error
// and leaves the previous setting in force.
func (s *Service) SetJWT(c config.JWT) error {
	if c.HS256Secret == "" && c.JWKSFile == "" {
		s.jwt.Store(nil)
		return nil
	}
	v := &jwtVerifier{roleClaim: c.RoleClaim, keys: map[string]any{}}
	if c.HS256Secret != "" {
		v.secret = []byte(c.HS256Secret)
		v.methods = append(v.methods, "HS256")
	}
	if c.JWKSFile != "" {
		b, err := os.ReadFile(c.JWKSFile)
		if err != nil {
			return fmt.Errorf("auth.jwt.jwks_file: %w", err)
		}
		if v.keys, err = ParseJWKS(b); err != nil {
			return fmt.Errorf("auth.jwt.jwks_file %s: %w", c.JWKSFile, err)
		}
		v.methods = append(v.methods, "RS256", "ES256")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithLeeway(c.Leeway.D()), jwt.WithExpirationRequired()}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	s.jwt.Store(v)
	return nil
}

func (v *jwtVerifier) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "HS256":
		return v.secret, nil
	case "RS256", "ES256":
		kid, _ := t.Header["kid"].(string)
		if k, ok := v.keys[kid]; ok {
			return k, nil
		}
		if kid == "" && len(v.keys) == 1 {
			for _, k := range v.keys {
				return k, nil
			}
		}
		return nil, fmt.Errorf("no key with kid %q in the JWKS", kid)
	}
	return nil, fmt.Errorf("algorithm %s is not accepted", t.Method.Alg())
}

func (v *jwtVerifier) verify(raw string) (*Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		return nil, fmt.Errorf("%w: the token has no sub claim", ErrBadToken)
	}
	rs, _ := claims[v.roleClaim].(string)
	role, err := ParseRole(rs)
	if err != nil {
		return nil, fmt.Errorf("%w: claim %q: %v", ErrBadToken, v.roleClaim, err)
	}
	return &Principal{KeyID: "jwt:" + sub, UserID: sub, Role: role, Via: "jwt"}, nil
}

// ParseJWKS reads the RSA and P-256 EC public keys of a JSON Web Key Set,
// keyed by kid. Keys of other types are skipped; a set with no usable key is
// an error.
func ParseJWKS(b []byte) (map[string]any, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Crv, N, E, X, Y, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	out := map[string]any{}
	dec := base64.RawURLEncoding.DecodeString
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := dec(k.N)
			e, err2 := dec(k.E)
			if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
				return nil, fmt.Errorf("key %d (%q): bad RSA modulus or exponent (2048 bits at least)", i, k.Kid)
			}
			out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			if k.Crv != "P-256" {
				return nil, fmt.Errorf("key %d (%q): curve %q is not supported (P-256 only)", i, k.Kid, k.Crv)
			}
			x, err1 := dec(k.X)
			y, err2 := dec(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("key %d (%q): bad EC coordinates", i, k.Kid)
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("key %d (%q): %w", i, k.Kid, err)
			}
			out[k.Kid] = pub
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no RS256 or ES256 signing key in the set")
	}
	return out, nil
}
