//go:build !unix

package store

import "os"

// diskBytes is the space a file takes on disk; without the blocks a
// unix stat gives, its length.
func diskBytes(fi os.FileInfo) int64 { return fi.Size() }
