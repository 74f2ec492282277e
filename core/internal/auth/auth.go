// Package auth is who may call Portico: users, their API keys (stored only
// as hashes), optional JWTs from an identity provider, and the roles that
// the HTTP API checks on every route.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Role is what a principal may do; each role includes the ones before it.
type Role int

// Roles, weakest first. The zero Role is no role. RolePublic is what a
// route open to anyone requires; no key or token has it.
const (
	RolePublic Role = iota + 1
	RoleUser
	RoleOperator
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RolePublic:
		return "public"
	case RoleUser:
		return "user"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads "user", "operator" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "user":
		return RoleUser, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("role must be user, operator or admin, got %q", s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) {
	if r < RoleUser || r > RoleAdmin {
		return nil, fmt.Errorf("invalid role %d", int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	*r = v
	return err
}

// Errors of authentication; all are answered 401 except where noted.
var (
	ErrNoCredential = errors.New("no credential: send Authorization: Bearer <key> or X-API-Key: <key>")
	ErrMalformed    = errors.New("malformed credential")
	ErrUnknownKey   = errors.New("unknown or revoked API key")
	ErrExpired      = errors.New("API key has expired")
	ErrUserDisabled = errors.New("the key's user is disabled")
	ErrBadToken     = errors.New("invalid token")
)

// Principal is an authenticated caller.
type Principal struct {
	KeyID  string   // API key id, or "jwt:"+subject for a token
	UserID string   // owner; for a token, its subject
	Role   Role     // effective role: the weaker of the key's and its user's
	Scopes []string // skill names the key may invoke; empty means all
	Via    string   // "key" or "jwt"
}

// Allows reports whether the principal's scopes let it invoke skill.
func (p *Principal) Allows(skill string) bool {
	if len(p.Scopes) == 0 {
		return true
	}
	for _, s := range p.Scopes {
		if s == skill {
			return true
		}
	}
	return false
}

// KeyPrefix starts every API key.
const KeyPrefix = "pk_"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var isBase62 = func() (t [256]bool) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = true
	}
	return t
}()

// keyBodyLen is the length of 32 random bytes written in base62.
const keyBodyLen = 43

// NewSecret returns a new API key: "pk_" and 32 random bytes in base62.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	n := new(big.Int).SetBytes(b[:])
	out := make([]byte, keyBodyLen)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := keyBodyLen - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return KeyPrefix + string(out)
}

// CheckSecret reports whether s has the shape of an API key.
func CheckSecret(s string) error {
	body, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok || len(body) != keyBodyLen {
		return fmt.Errorf("%w: an API key is %q followed by %d base62 characters", ErrMalformed, KeyPrefix, keyBodyLen)
	}
	for i := 0; i < len(body); i++ {
		if !isBase62[body[i]] {
			return fmt.Errorf("%w: an API key has only base62 characters after %q", ErrMalformed, KeyPrefix)
		}
	}
	return nil
}

// hashSecret is what is stored of a key: its SHA-256. Keys are 256 random
// bits, so a fast hash is enough; a slow one would only slow every request.
func hashSecret(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func newID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// User owns keys.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is an API key's record; the secret itself is never stored.
type Key struct {
	ID         string     `json:"id"`
	Prefix     string     `json:"prefix"` // the first characters of the secret, to recognise it
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	UserID     string     `json:"user_id"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Hash       string     `json:"hash,omitempty"` // hex SHA-256; cleared in API answers
}
