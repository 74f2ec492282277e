package auth

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/core/internal/store"
)

// Errors of user and key management, for errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid input")
)

// Service holds users and keys: in the store (synced writes) and in memory,
// so authenticating a request touches no disk.
type Service struct {
	kv  store.KV
	now func() time.Time
	jwt atomic.Pointer[jwtVerifier]

	mu     sync.RWMutex
	users  map[string]*User
	keys   map[string]*Key
	byHash map[[32]byte]*Key
	used   map[string]time.Time // last use not yet written to the store

	missEvery atomic.Int64 // SetMissRefresh, as a time.Duration
	missMu    sync.Mutex   // one refresh for a burst of unknown keys
	missAt    time.Time
}

// Open loads every user and key from kv.
func Open(ctx context.Context, kv store.KV) (*Service, error) {
	s := &Service{kv: store.Prefix(kv, "auth/"), now: time.Now, used: map[string]time.Time{}}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reads every user and key from the store again: on nodes that
// share one store, what another node created, changed or revoked takes
// effect here.
func (s *Service) Refresh(ctx context.Context) error {
	users, keys, byHash := map[string]*User{}, map[string]*Key{}, map[[32]byte]*Key{}
	// Keys first: a key is written with or after its user, so every key
	// read here finds its user in the scan after it, even on a store whose
	// scans are not one snapshot (PostgreSQL's).
	err := s.kv.Scan(ctx, []byte("keys/"), store.ScanOptions{}, func(k, v []byte) error {
		var key Key
		if err := json.Unmarshal(v, &key); err != nil {
			return fmt.Errorf("auth: decode key %s: %w", k, err)
		}
		h, err := hex.DecodeString(key.Hash)
		if err != nil || len(h) != 32 {
			return fmt.Errorf("auth: key %s has a bad hash", key.ID)
		}
		keys[key.ID] = &key
		byHash[[32]byte(h)] = &key
		return nil
	})
	if err != nil {
		return err
	}
	err = s.kv.Scan(ctx, []byte("users/"), store.ScanOptions{}, func(k, v []byte) error {
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("auth: decode user %s: %w", k, err)
		}
		users[u.ID] = &u
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.users, s.keys, s.byHash = users, keys, byHash
	s.mu.Unlock()
	return nil
}

// SetMissRefresh makes an unknown API key refresh the users and keys from
// the store first, at most once per every (0: never), for nodes sharing
// one store: a key created on another node works at once.
func (s *Service) SetMissRefresh(every time.Duration) { s.missEvery.Store(int64(every)) }

// refreshOnMiss refreshes for an unknown key unless one did within the
// miss-refresh interval; it reports whether it did.
func (s *Service) refreshOnMiss() bool {
	every := time.Duration(s.missEvery.Load())
	if every <= 0 {
		return false
	}
	s.missMu.Lock()
	defer s.missMu.Unlock()
	if now := s.now(); now.Sub(s.missAt) >= every {
		s.missAt = now
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.Refresh(ctx) == nil
	}
	return false
}

// SetClock replaces the clock used for expiry checks and timestamps, for
// tests and simulations.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// HasKeys reports whether any API key exists.
func (s *Service) HasKeys() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys) > 0
}

// Authenticate checks an API key secret and returns its principal.
func (s *Service) Authenticate(secret string) (*Principal, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, err
	}
	h := hashSecret(secret)
	k, u, pending := s.lookup(h)
	if k == nil && s.refreshOnMiss() {
		k, u, pending = s.lookup(h)
	}
	// Only the SHA-256 of a 256-bit random secret is looked up, so the
	// lookup's timing tells an attacker nothing usable about the secret.
	if k == nil {
		return nil, ErrUnknownKey
	}
	now := s.now()
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return nil, ErrExpired
	}
	if u == nil || u.Disabled {
		return nil, ErrUserDisabled
	}
	// Last use is kept to the minute, so the write lock is taken at most
	// once a minute per key, not on every request.
	if now.Sub(pending) >= time.Minute {
		s.mu.Lock()
		s.used[k.ID] = now
		s.mu.Unlock()
	}
	return &Principal{KeyID: k.ID, UserID: k.UserID, Role: min(k.Role, u.Role), Scopes: k.Scopes, Via: "key"}, nil
}

func (s *Service) lookup(h [32]byte) (k *Key, u *User, pending time.Time) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k = s.byHash[h]; k != nil {
		u, pending = s.users[k.UserID], s.used[k.ID]
	}
	return k, u, pending
}

// Credential takes the caller's credential from a request: an
// Authorization: Bearer header or X-API-Key, and for WebSocket upgrades the
// token query parameter too.
func Credential(r *http.Request) (string, error) {
	var cred string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, val, _ := strings.Cut(h, " ")
		val = strings.TrimSpace(val)
		if !strings.EqualFold(scheme, "Bearer") || val == "" {
			return "", fmt.Errorf("%w: Authorization must be \"Bearer <key or token>\"", ErrMalformed)
		}
		cred = val
	}
	if k := r.Header.Get("X-API-Key"); k != "" {
		if cred != "" && cred != k {
			return "", fmt.Errorf("%w: Authorization and X-API-Key carry different credentials", ErrMalformed)
		}
		cred = k
	}
	if cred == "" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		cred = r.URL.Query().Get("token")
	}
	if cred == "" {
		return "", ErrNoCredential
	}
	return cred, nil
}

// AuthenticateRequest authenticates a request by API key or, when
// configured, JWT.
func (s *Service) AuthenticateRequest(r *http.Request) (*Principal, error) {
	cred, err := Credential(r)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(cred, KeyPrefix) {
		return s.Authenticate(cred)
	}
	if strings.Count(cred, ".") == 2 {
		v := s.jwt.Load()
		if v == nil {
			return nil, fmt.Errorf("%w: JWT authentication is not configured (auth.jwt)", ErrBadToken)
		}
		return v.verify(cred)
	}
	return nil, fmt.Errorf("%w: not an API key (%s...) or a JWT", ErrMalformed, KeyPrefix)
}

// FlushLastUsed writes the keys' last-use times gathered since the last
// flush. It runs on a schedule and at shutdown, so requests never write.
// Each time goes into the stored record, so a key another node revoked
// in the meantime stays revoked.
func (s *Service) FlushLastUsed(ctx context.Context) error {
	s.mu.Lock()
	used := s.used
	s.used = map[string]time.Time{}
	for id, t := range used {
		if k := s.keys[id]; k != nil {
			k.LastUsedAt = &t
		}
	}
	s.mu.Unlock()
	for id, t := range used {
		err := s.kv.Update(ctx, func(tx store.Txn) error {
			b, err := tx.Get([]byte("keys/" + id))
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			var k Key
			if err := json.Unmarshal(b, &k); err != nil {
				return fmt.Errorf("auth: decode key %s: %w", id, err)
			}
			if k.LastUsedAt != nil && !t.After(*k.LastUsedAt) {
				return nil // another node saw a later use
			}
			k.LastUsedAt = &t
			return s.putKey(ctx, tx, &k)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) putKey(ctx context.Context, tx store.Txn, k *Key) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if tx != nil {
		return tx.Set([]byte("keys/"+k.ID), b)
	}
	return s.kv.Set(ctx, []byte("keys/"+k.ID), b, store.Sync)
}

func putUser(tx store.Txn, u *User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return tx.Set([]byte("users/"+u.ID), b)
}

// UserInput creates or replaces a user's fields.
type UserInput struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	Disabled bool   `json:"disabled"`
}

func (s *Service) checkUser(in UserInput, id string) error {
	var errs []string
	if _, err := mail.ParseAddress(in.Email); err != nil || strings.ContainsAny(in.Email, "<> ") {
		errs = append(errs, fmt.Sprintf("email %q is not an address such as ops@example.com", in.Email))
	}
	if n := strings.TrimSpace(in.Name); n == "" || len(n) > 200 {
		errs = append(errs, "name must be 1 to 200 characters")
	}
	if in.Role < RoleUser || in.Role > RoleAdmin {
		errs = append(errs, "role must be user, operator or admin")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	for _, u := range s.users {
		if u.ID != id && strings.EqualFold(u.Email, in.Email) {
			return fmt.Errorf("%w: a user with email %s already exists (%s)", ErrConflict, in.Email, u.ID)
		}
	}
	return nil
}

// CreateUser adds a user.
func (s *Service) CreateUser(ctx context.Context, in UserInput) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkUser(in, ""); err != nil {
		return User{}, err
	}
	now := s.now().UTC()
	u := &User{ID: newID("usr_"), Email: in.Email, Name: strings.TrimSpace(in.Name), Role: in.Role, Disabled: in.Disabled, CreatedAt: now, UpdatedAt: now}
	if err := s.kv.Update(ctx, func(tx store.Txn) error { return putUser(tx, u) }, store.Sync); err != nil {
		return User{}, err
	}
	s.users[u.ID] = u
	return *u, nil
}

// UpdateUser replaces a user's fields. Disabling a user stops all its keys
// at once; the last enabled admin cannot be disabled or demoted.
func (s *Service) UpdateUser(ctx context.Context, id string, in UserInput) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[id]
	if !ok {
		return User{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	if err := s.checkUser(in, id); err != nil {
		return User{}, err
	}
	if (in.Disabled || in.Role != RoleAdmin) && s.lastAdmin(id) {
		return User{}, fmt.Errorf("%w: %s is the last enabled admin; make another admin first", ErrConflict, id)
	}
	u := *old
	u.Email, u.Name, u.Role, u.Disabled, u.UpdatedAt = in.Email, strings.TrimSpace(in.Name), in.Role, in.Disabled, s.now().UTC()
	if err := s.kv.Update(ctx, func(tx store.Txn) error { return putUser(tx, &u) }, store.Sync); err != nil {
		return User{}, err
	}
	s.users[id] = &u
	return u, nil
}

// lastAdmin reports whether id is the only enabled admin. s.mu is held.
func (s *Service) lastAdmin(id string) bool {
	u := s.users[id]
	if u == nil || u.Role != RoleAdmin || u.Disabled {
		return false
	}
	for _, o := range s.users {
		if o.ID != id && o.Role == RoleAdmin && !o.Disabled {
			return false
		}
	}
	return true
}

// DeleteUser removes a user and all its keys in one transaction.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[id]; !ok {
		return fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	if s.lastAdmin(id) {
		return fmt.Errorf("%w: %s is the last enabled admin; make another admin first", ErrConflict, id)
	}
	var doomed []*Key
	for _, k := range s.keys {
		if k.UserID == id {
			doomed = append(doomed, k)
		}
	}
	err := s.kv.Update(ctx, func(tx store.Txn) error {
		for _, k := range doomed {
			if err := tx.Delete([]byte("keys/" + k.ID)); err != nil {
				return err
			}
		}
		return tx.Delete([]byte("users/" + id))
	}, store.Sync)
	if err != nil {
		return err
	}
	for _, k := range doomed {
		s.dropKey(k)
	}
	delete(s.users, id)
	return nil
}

// GetUser returns one user.
func (s *Service) GetUser(id string) (User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	return *u, nil
}

// ListUsers returns users ordered by creation, and the total.
func (s *Service) ListUsers(limit, offset int) ([]User, int) {
	s.mu.RLock()
	all := make([]User, 0, len(s.users))
	for _, u := range s.users {
		all = append(all, *u)
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool {
		return all[i].CreatedAt.Before(all[j].CreatedAt) || all[i].CreatedAt.Equal(all[j].CreatedAt) && all[i].ID < all[j].ID
	})
	return page(all, limit, offset), len(all)
}

func page[T any](all []T, limit, offset int) []T {
	if offset >= len(all) {
		return []T{}
	}
	return all[offset:min(len(all), offset+limit)]
}

// KeyInput describes a key to create.
type KeyInput struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	UserID    string     `json:"user_id"`
	ExpiresAt *time.Time `json:"expires_at"`
	Scopes    []string   `json:"scopes"`
}

var skillName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// CreateKey makes a new key and returns it with its secret, which is shown
// this once and never stored.
func (s *Service) CreateKey(ctx context.Context, in KeyInput) (Key, string, error) {
	secret := NewSecret()
	k, err := s.addKey(ctx, secret, in)
	return k, secret, err
}

// ImportKey stores a given secret as a key (PORTICO_ADMIN_KEY).
func (s *Service) ImportKey(ctx context.Context, secret string, in KeyInput) (Key, error) {
	if err := CheckSecret(secret); err != nil {
		return Key{}, err
	}
	return s.addKey(ctx, secret, in)
}

func (s *Service) addKey(ctx context.Context, secret string, in KeyInput) (Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[in.UserID]
	if !ok {
		if err := checkKey(in, s.now()); err != nil {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("%w: user %q does not exist", ErrInvalid, in.UserID)
	}
	k, h, err := s.newKey(secret, in, u)
	if err != nil {
		return Key{}, err
	}
	if err := s.kv.Update(ctx, func(tx store.Txn) error { return s.putKey(ctx, tx, k) }, store.Sync); err != nil {
		return Key{}, err
	}
	s.keys[k.ID] = k
	s.byHash[h] = k
	return public(k), nil
}

func checkKey(in KeyInput, now time.Time) error {
	var errs []string
	if n := strings.TrimSpace(in.Name); n == "" || len(n) > 200 {
		errs = append(errs, "name must be 1 to 200 characters")
	}
	if in.Role < RoleUser || in.Role > RoleAdmin {
		errs = append(errs, "role must be user, operator or admin")
	}
	for _, sc := range in.Scopes {
		if !skillName.MatchString(sc) {
			errs = append(errs, fmt.Sprintf("scope %q is not a skill name (letters, digits, _ and -, up to 64)", sc))
		}
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		errs = append(errs, "expires_at must be in the future")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// newKey checks in and builds the key of secret for user u, not stored
// yet. s.mu is held.
func (s *Service) newKey(secret string, in KeyInput, u *User) (*Key, [32]byte, error) {
	if err := checkKey(in, s.now()); err != nil {
		return nil, [32]byte{}, err
	}
	if in.Role > u.Role {
		return nil, [32]byte{}, fmt.Errorf("%w: a %s key cannot belong to %s, whose role is %s", ErrInvalid, in.Role, u.ID, u.Role)
	}
	h := hashSecret(secret)
	if _, dup := s.byHash[h]; dup {
		return nil, h, fmt.Errorf("%w: this key already exists", ErrConflict)
	}
	scopes := slices.Clone(in.Scopes)
	if scopes == nil {
		scopes = []string{}
	}
	k := &Key{
		ID: newID("key_"), Prefix: secret[:len(KeyPrefix)+6], Name: strings.TrimSpace(in.Name), Role: in.Role,
		UserID: u.ID, Scopes: scopes, CreatedAt: s.now().UTC(), ExpiresAt: in.ExpiresAt, Hash: hex.EncodeToString(h[:]),
	}
	return k, h, nil
}

// RevokeKey deletes a key; it stops working at once. With userID set the
// key must belong to that user.
func (s *Service) RevokeKey(ctx context.Context, id, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok || (userID != "" && k.UserID != userID) {
		return fmt.Errorf("%w: key %s", ErrNotFound, id)
	}
	if err := s.kv.Delete(ctx, []byte("keys/"+id), store.Sync); err != nil {
		return err
	}
	s.dropKey(k)
	return nil
}

// dropKey forgets a key in memory. s.mu is held.
func (s *Service) dropKey(k *Key) {
	h, _ := hex.DecodeString(k.Hash)
	delete(s.byHash, [32]byte(h))
	delete(s.keys, k.ID)
	delete(s.used, k.ID)
}

// ListKeys returns keys (of one user when userID is set) ordered by
// creation, without their hashes, and the total.
func (s *Service) ListKeys(userID string, limit, offset int) ([]Key, int) {
	s.mu.RLock()
	var all []Key
	for _, k := range s.keys {
		if userID == "" || k.UserID == userID {
			pk := public(k)
			if t, ok := s.used[k.ID]; ok {
				pk.LastUsedAt = &t
			}
			all = append(all, pk)
		}
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool {
		return all[i].CreatedAt.Before(all[j].CreatedAt) || all[i].CreatedAt.Equal(all[j].CreatedAt) && all[i].ID < all[j].ID
	})
	return page(all, limit, offset), len(all)
}

// public copies a key without its hash.
func public(k *Key) Key {
	c := *k
	c.Hash = ""
	c.Scopes = slices.Clone(k.Scopes)
	return c
}
