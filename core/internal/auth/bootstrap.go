package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/internal/atomicfile"
)

// AdminKeyFile is where the first admin key is written, in the data dir.
const AdminKeyFile = "admin.key"

// Bootstrap makes sure someone can administer a new gateway: when no key
// exists at all, it creates an admin user and an admin key. The key is the
// given secret (PORTICO_ADMIN_KEY) when set; otherwise a new one written to
// <dataDir>/admin.key with mode 0600. It returns the file it wrote, if any.
// With keys present it does nothing.
//
// Nodes sharing one store may start at once: the admin user and key are
// written in one transaction that first checks a marker naming the last
// bootstrap key, so one node bootstraps and the others find its key.
func Bootstrap(ctx context.Context, s *Service, dataDir, secret string) (string, error) {
	if s.HasKeys() {
		return "", nil
	}
	path := ""
	if secret == "" {
		// Write the file before storing the key: a crash in between must
		// not leave a key nobody has.
		secret = NewSecret()
		path = filepath.Join(dataDir, AdminKeyFile)
		if err := atomicfile.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write admin key: %w", err)
		}
	}
	done, err := s.bootstrap(ctx, secret)
	if err != nil || !done {
		if path != "" {
			os.Remove(path)
		}
		if err != nil {
			return "", fmt.Errorf("bootstrap admin key: %w", err)
		}
		return "", s.Refresh(ctx) // another node bootstrapped: take its users and keys
	}
	return path, nil
}

// bootstrapKey is the marker: the id of the key the last bootstrap made.
var bootstrapKey = []byte("bootstrap")

// bootstrap stores an admin (an enabled one that exists, or a new one)
// and a key of secret, unless the marker names a key that exists; it
// reports whether it stored them.
func (s *Service) bootstrap(ctx context.Context, secret string) (bool, error) {
	if err := CheckSecret(secret); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var admin *User
	for _, u := range s.users {
		if u.Role == RoleAdmin && !u.Disabled {
			admin = u
			break
		}
	}
	created := admin == nil
	if created {
		now := s.now().UTC()
		admin = &User{ID: newID("usr_"), Email: "admin@localhost", Name: "Administrator", Role: RoleAdmin, CreatedAt: now, UpdatedAt: now}
	}
	k, h, err := s.newKey(secret, KeyInput{Name: "bootstrap admin key", Role: RoleAdmin, UserID: admin.ID}, admin)
	if err != nil {
		return false, err
	}
	stored := false
	err = s.kv.Update(ctx, func(tx store.Txn) error {
		stored = false
		id, err := tx.Get(bootstrapKey)
		switch {
		case err == nil:
			if _, err := tx.Get(append([]byte("keys/"), id...)); err == nil {
				return nil // bootstrapped already, on another node
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if created {
			if err := putUser(tx, admin); err != nil {
				return err
			}
		}
		if err := s.putKey(ctx, tx, k); err != nil {
			return err
		}
		stored = true
		return tx.Set(bootstrapKey, []byte(k.ID))
	}, store.Sync)
	if err != nil || !stored {
		return false, err
	}
	s.users[admin.ID] = admin
	s.keys[k.ID] = k
	s.byHash[h] = k
	return true, nil
}
