package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/store/storetest"
)

func newService(t testing.TB) (*Service, store.Store) {
	t.Helper()
	st := storetest.Open(t)
	s, err := Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func mustUser(t testing.TB, s *Service, email string, role Role) User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), UserInput{Email: email, Name: "n", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSecretShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSecret()
		if err := CheckSecret(s); err != nil {
			t.Fatalf("NewSecret %q fails CheckSecret: %v", s, err)
		}
		if seen[s] {
			t.Fatal("duplicate secret")
		}
		seen[s] = true
	}
	for _, bad := range []string{"", "pk_", "pk_short", "xx_" + NewSecret()[3:], NewSecret() + "A", NewSecret()[:45] + "!!"} {
		if err := CheckSecret(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("CheckSecret(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	s, st := newService(t)
	admin := mustUser(t, s, "root@example.com", RoleAdmin)
	op := mustUser(t, s, "op@example.com", RoleOperator)

	k, secret, err := s.CreateKey(ctx, KeyInput{Name: "ci", Role: RoleOperator, UserID: op.ID, Scopes: []string{"echo"}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Hash != "" || !strings.HasPrefix(secret, k.Prefix) {
		t.Errorf("public key leaks its hash or prefix is wrong: %+v", k)
	}
	p, err := s.Authenticate(secret)
	if err != nil || p.Role != RoleOperator || p.UserID != op.ID || p.KeyID != k.ID || !p.Allows("echo") || p.Allows("other") {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	// Nothing of the secret is stored.
	st.Scan(ctx, nil, store.ScanOptions{}, func(key, v []byte) error {
		if strings.Contains(string(v), secret) || strings.Contains(string(key), secret) {
			t.Errorf("secret stored in %s", key)
		}
		return nil
	})

	tests := []struct {
		name string
		in   KeyInput
		want error
	}{
		{"role above the user's", KeyInput{Name: "x", Role: RoleAdmin, UserID: op.ID}, ErrInvalid},
		{"unknown user", KeyInput{Name: "x", Role: RoleUser, UserID: "usr_nope"}, ErrInvalid},
		{"no name", KeyInput{Role: RoleUser, UserID: op.ID}, ErrInvalid},
		{"bad scope", KeyInput{Name: "x", Role: RoleUser, UserID: op.ID, Scopes: []string{"a b"}}, ErrInvalid},
		{"past expiry", KeyInput{Name: "x", Role: RoleUser, UserID: op.ID, ExpiresAt: ptr(time.Now().Add(-time.Hour))}, ErrInvalid},
		{"no role", KeyInput{Name: "x", UserID: op.ID}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.CreateKey(ctx, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// Reloading from the store gives the same answers.
	s2, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s2.Authenticate(secret); err != nil || p.KeyID != k.ID {
		t.Fatalf("after reopen: %+v, %v", p, err)
	}

	// Expiry.
	ek, esecret, err := s.CreateKey(ctx, KeyInput{Name: "short", Role: RoleUser, UserID: admin.ID, ExpiresAt: ptr(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := s.Authenticate(esecret); !errors.Is(err, ErrExpired) {
		t.Errorf("expired key: %v", err)
	}
	s.now = time.Now
	_ = ek

	// Disabling the user stops its keys; lowering its role lowers theirs.
	if _, err := s.UpdateUser(ctx, op.ID, UserInput{Email: op.Email, Name: "n", Role: RoleOperator, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(secret); !errors.Is(err, ErrUserDisabled) {
		t.Errorf("disabled user's key: %v", err)
	}
	if _, err := s.UpdateUser(ctx, op.ID, UserInput{Email: op.Email, Name: "n", Role: RoleUser}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(secret); err != nil || p.Role != RoleUser {
		t.Errorf("demoted user's key: %+v %v", p, err)
	}

	// Revoke, and revoke under the wrong user.
	if err := s.RevokeKey(ctx, k.ID, admin.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke under another user: %v", err)
	}
	if err := s.RevokeKey(ctx, k.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(secret); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("revoked key: %v", err)
	}
	if _, err := s.Authenticate(NewSecret()); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	admin := mustUser(t, s, "root@example.com", RoleAdmin)
	u := mustUser(t, s, "u@example.com", RoleUser)
	_, secret, err := s.CreateKey(ctx, KeyInput{Name: "k", Role: RoleUser, UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		in   UserInput
		want error
	}{
		{"duplicate email", UserInput{Email: "U@example.com", Name: "x", Role: RoleUser}, ErrConflict},
		{"bad email", UserInput{Email: "nope", Name: "x", Role: RoleUser}, ErrInvalid},
		{"no name", UserInput{Email: "a@example.com", Role: RoleUser}, ErrInvalid},
		{"no role", UserInput{Email: "a@example.com", Name: "x"}, ErrInvalid},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.CreateUser(ctx, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := s.UpdateUser(ctx, admin.ID, UserInput{Email: admin.Email, Name: "n", Role: RoleOperator}); !errors.Is(err, ErrConflict) {
		t.Errorf("demoting the last admin: %v", err)
	}
	if err := s.DeleteUser(ctx, admin.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("deleting the last admin: %v", err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(secret); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("deleted user's key still works: %v", err)
	}
	if keys, total := s.ListKeys(u.ID, 50, 0); total != 0 || len(keys) != 0 {
		t.Errorf("deleted user's keys listed: %v", keys)
	}
	if _, err := s.GetUser(u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user: %v", err)
	}
	users, total := s.ListUsers(1, 0)
	if total != 1 || len(users) != 1 || users[0].ID != admin.ID {
		t.Errorf("ListUsers = %v, %d", users, total)
	}
}

func TestLastUsedFlush(t *testing.T) {
	ctx := context.Background()
	s, st := newService(t)
	u := mustUser(t, s, "a@example.com", RoleAdmin)
	k, secret, _ := s.CreateKey(ctx, KeyInput{Name: "k", Role: RoleAdmin, UserID: u.ID})
	if _, err := s.Authenticate(secret); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.ListKeys("", 10, 0); keys[0].LastUsedAt == nil {
		t.Error("last use not shown before flush")
	}
	if err := s.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(ctx, st)
	keys, _ := s2.ListKeys("", 10, 0)
	if len(keys) != 1 || keys[0].ID != k.ID || keys[0].LastUsedAt == nil {
		t.Errorf("last use not persisted: %+v", keys)
	}
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	t.Run("writes a new admin key", func(t *testing.T) {
		s, _ := newService(t)
		dir := t.TempDir()
		path, err := Bootstrap(ctx, s, dir, "")
		if err != nil || path != filepath.Join(dir, AdminKeyFile) {
			t.Fatalf("Bootstrap = %q, %v", path, err)
		}
		b, _ := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", fi.Mode().Perm())
		}
		p, err := s.Authenticate(strings.TrimSpace(string(b)))
		if err != nil || p.Role != RoleAdmin {
			t.Fatalf("bootstrap key: %+v %v", p, err)
		}
		// Second start: nothing new.
		if path, err := Bootstrap(ctx, s, dir, ""); path != "" || err != nil {
			t.Errorf("second bootstrap = %q, %v", path, err)
		}
		if _, total := s.ListKeys("", 10, 0); total != 1 {
			t.Errorf("%d keys after two bootstraps", total)
		}
	})
	t.Run("imports PORTICO_ADMIN_KEY", func(t *testing.T) {
		s, _ := newService(t)
		secret := NewSecret()
		dir := t.TempDir()
		if path, err := Bootstrap(ctx, s, dir, secret); err != nil || path != "" {
			t.Fatalf("Bootstrap = %q, %v", path, err)
		}
		if _, err := os.Stat(filepath.Join(dir, AdminKeyFile)); !os.IsNotExist(err) {
			t.Error("imported key also written to a file")
		}
		if p, err := s.Authenticate(secret); err != nil || p.Role != RoleAdmin {
			t.Fatalf("imported key: %+v %v", p, err)
		}
	})
	t.Run("refuses a malformed PORTICO_ADMIN_KEY", func(t *testing.T) {
		s, _ := newService(t)
		if _, err := Bootstrap(ctx, s, t.TempDir(), "letmein"); !errors.Is(err, ErrMalformed) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestCredential(t *testing.T) {
	key := NewSecret()
	tests := []struct {
		name    string
		headers map[string]string
		url     string
		want    string
		err     error
	}{
		{"bearer", map[string]string{"Authorization": "Bearer " + key}, "/", key, nil},
		{"bearer lower case", map[string]string{"Authorization": "bearer " + key}, "/", key, nil},
		{"x-api-key", map[string]string{"X-API-Key": key}, "/", key, nil},
		{"both agree", map[string]string{"Authorization": "Bearer " + key, "X-API-Key": key}, "/", key, nil},
		{"both differ", map[string]string{"Authorization": "Bearer " + key, "X-API-Key": NewSecret()}, "/", "", ErrMalformed},
		{"basic scheme", map[string]string{"Authorization": "Basic abc"}, "/", "", ErrMalformed},
		{"bearer without value", map[string]string{"Authorization": "Bearer "}, "/", "", ErrMalformed},
		{"none", nil, "/", "", ErrNoCredential},
		{"query token ignored without upgrade", nil, "/?token=" + key, "", ErrNoCredential},
		{"query token on websocket upgrade", map[string]string{"Upgrade": "websocket"}, "/?token=" + key, key, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.url, nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			got, err := Credential(r)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("Credential = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestJWT(t *testing.T) {
	s, _ := newService(t)
	hsSecret := strings.Repeat("s", 32)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := ecKey.PublicKey.Bytes()
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "n": b64(rsaKey.N.Bytes()), "e": b64([]byte{1, 0, 1})},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
	}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)
	if err := s.SetJWT(config.JWT{HS256Secret: hsSecret, JWKSFile: jwksFile, Issuer: "https://idp.example", Audience: "portico", RoleClaim: "portico_role"}); err != nil {
		t.Fatal(err)
	}
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "iss": "https://idp.example", "aud": "portico", "portico_role": "operator", "exp": time.Now().Add(time.Hour).Unix()}
	}
	sign := func(m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, claims)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"HS256", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", good()), true},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, "r1", good()), true},
		{"ES256", sign(jwt.SigningMethodES256, ecKey, "e1", good()), true},
		{"wrong HS secret", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", good()), false},
		{"RS256 by another key", sign(jwt.SigningMethodRS256, otherRSA, "r1", good()), false},
		{"unknown kid", sign(jwt.SigningMethodRS256, rsaKey, "zz", good()), false},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", good()), false},
		{"HS384 not accepted", sign(jwt.SigningMethodHS384, []byte(hsSecret), "", good()), false},
		{"expired", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", with("exp", time.Now().Add(-time.Hour).Unix())), false},
		{"no exp", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", without("exp")), false},
		{"wrong issuer", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", with("iss", "https://evil.example")), false},
		{"wrong audience", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", with("aud", "other")), false},
		{"no role", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", without("portico_role")), false},
		{"bad role", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", with("portico_role", "root")), false},
		{"no subject", sign(jwt.SigningMethodHS256, []byte(hsSecret), "", without("sub")), false},
		{"garbage", "a.b.c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tt.token)
			p, err := s.AuthenticateRequest(r)
			if tt.ok {
				if err != nil || p.Role != RoleOperator || p.KeyID != "jwt:alice" || p.Via != "jwt" {
					t.Errorf("= %+v, %v", p, err)
				}
			} else if err == nil || !errors.Is(err, ErrBadToken) {
				t.Errorf("accepted or wrong error: %+v, %v", p, err)
			}
		})
	}
	// Turning JWT off refuses tokens.
	s.SetJWT(config.JWT{})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tests[0].token)
	if _, err := s.AuthenticateRequest(r); !errors.Is(err, ErrBadToken) {
		t.Errorf("JWT off: %v", err)
	}
	if err := s.SetJWT(config.JWT{JWKSFile: filepath.Join(t.TempDir(), "missing.json"), RoleClaim: "r"}); err == nil {
		t.Error("missing JWKS file accepted")
	}
}

func TestParseJWKSErrors(t *testing.T) {
	for _, in := range []string{`nope`, `{"keys":[]}`, `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, `{"keys":[{"kty":"EC","crv":"P-384","x":"","y":""}]}`} {
		if _, err := ParseJWKS([]byte(in)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted", in)
		}
	}
}

// FuzzAuthenticateRequest feeds arbitrary credentials through the headers
// and the query: nothing panics and nothing but the one valid key and the
// one valid token authenticates.
func FuzzAuthenticateRequest(f *testing.F) {
	s, _ := newService(f)
	u := mustUser(f, s, "a@example.com", RoleAdmin)
	_, secret, _ := s.CreateKey(context.Background(), KeyInput{Name: "k", Role: RoleAdmin, UserID: u.ID})
	hs := strings.Repeat("k", 32)
	s.SetJWT(config.JWT{HS256Secret: hs, RoleClaim: "portico_role"})
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "portico_role": "user", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(hs))
	for _, seed := range []string{"Bearer " + secret, "Bearer " + tok, "Bearer pk_", "Bearer a.b.c", "Basic x", "Bearer " + secret[:len(secret)-1] + "A", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		f.Add(seed, "", "")
	}
	f.Add("", secret, "")
	f.Add("", "", secret)
	f.Fuzz(func(t *testing.T, authz, apiKey, token string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-API-Key", apiKey)
		r.Header.Set("Upgrade", "websocket")
		q := r.URL.Query()
		q.Set("token", token)
		r.URL.RawQuery = q.Encode()
		p, err := s.AuthenticateRequest(r)
		if err != nil {
			return
		}
		cred, _ := Credential(r)
		if cred != secret && cred != tok {
			t.Fatalf("authenticated %+v with credential %q", p, cred)
		}
	})
}
