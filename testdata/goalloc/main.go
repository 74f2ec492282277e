// A Go guest with both boundary styles, for hostapi's BenchmarkBoundary:
// "pull" (the guest allocates and asks the host to copy input in, ABI v1's
// choice) and "alloc" (the host calls an exported allocator, writes the
// input, then calls the guest).
package main

import "unsafe"

//go:wasmimport portico input
func hostInput(ptr, limit uint32) uint32

//go:wasmimport portico output
func hostOutput(ptr, size uint32) uint32

var buf []byte

//go:wasmexport portico_abi_version
func abiVersion() uint32 { return 1 << 16 }

//go:wasmexport portico_skill
func pull(size uint32) uint32 {
	if uint32(cap(buf)) < size {
		buf = make([]byte, size)
	}
	b := buf[:size]
	hostInput(uint32(uintptr(unsafe.Pointer(&b[0]))), size)
	hostOutput(uint32(uintptr(unsafe.Pointer(&b[0]))), size)
	return 0
}

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	if uint32(cap(buf)) < size {
		buf = make([]byte, size)
	}
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport skill_at
func skillAt(ptr, size uint32) uint32 {
	hostOutput(ptr, size)
	return 0
}

func main() {}
