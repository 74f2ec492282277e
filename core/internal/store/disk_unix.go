//go:build unix

package store

import (
	"os"
	"syscall"
)

// diskBytes is the space a file takes on disk: its allocated blocks, which
// for a sparse file are far fewer than its length.
func diskBytes(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
