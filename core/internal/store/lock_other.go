//go:build !unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// LockFile is the file in the data dir that a running gateway holds open.
const LockFile = "portico.lock"

// lockDir only checks that the dir is writable; Badger's own directory lock
// still refuses a second process.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	return f, nil
}

func unlockDir(f *os.File) { f.Close() }
