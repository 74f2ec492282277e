//go:build !linux

package httpapi

// residentBytes is not read on this platform.
func residentBytes() int64 { return 0 }
