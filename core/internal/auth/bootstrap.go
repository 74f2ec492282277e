package auth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/porticohq/portico/internal/atomicfile"
)

// AdminKeyFile is where the first admin key is written, in the data dir.
const AdminKeyFile = "admin.key"

// Bootstrap makes sure someone can administer a new gateway: when no key
// exists at all, it creates an admin user and an admin key. The key is the
// given secret (PORTICO_ADMIN_KEY) when set; otherwise a new one written to
// <dataDir>/admin.key with mode 0600. It returns the file it wrote, if any.
// With keys present it does nothing.
func Bootstrap(ctx context.Context, s *Service, dataDir, secret string) (string, error) {
	if s.HasKeys() {
		return "", nil
	}
	var admin *User
	s.mu.RLock()
	for _, u := range s.users {
		if u.Role == RoleAdmin && !u.Disabled {
			c := *u
			admin = &c
			break
		}
	}
	s.mu.RUnlock()
	if admin == nil {
		u, err := s.CreateUser(ctx, UserInput{Email: "admin@localhost", Name: "Administrator", Role: RoleAdmin})
		if err != nil {
			return "", fmt.Errorf("bootstrap admin user: %w", err)
		}
		admin = &u
	}
	in := KeyInput{Name: "bootstrap admin key", Role: RoleAdmin, UserID: admin.ID}
	if secret != "" {
		if _, err := s.ImportKey(ctx, secret, in); err != nil {
			return "", fmt.Errorf("import PORTICO_ADMIN_KEY: %w", err)
		}
		return "", nil
	}
	// Write the file before storing the key: a crash in between must not
	// leave a key nobody has.
	secret = NewSecret()
	path := filepath.Join(dataDir, AdminKeyFile)
	if err := atomicfile.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin key: %w", err)
	}
	if _, err := s.ImportKey(ctx, secret, in); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("bootstrap admin key: %w", err)
	}
	return path, nil
}
