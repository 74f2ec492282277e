//go:build wasip1

// Command echo is Portico's first-party echo skill: it answers with its
// input. It speaks ABI v1 directly (docs/abi.md) and is what the runtime's
// tests and benchmarks call; the SDK will wrap these few lines.
package main

import "unsafe"

//go:wasmimport portico input
func hostInput(ptr, limit uint32) uint32

//go:wasmimport portico output
func hostOutput(ptr, size uint32) uint32

//go:wasmimport portico fail
func hostFail(ptr, size uint32)

// buf is reused across calls: an instance serves one call at a time.
var buf []byte

//go:wasmexport portico_abi_version
func abiVersion() uint32 { return 1<<16 | 0 }

//go:wasmexport portico_skill
func skill(size uint32) uint32 {
	if uint32(cap(buf)) < size {
		buf = make([]byte, size)
	}
	b := buf[:size]
	if size > 0 {
		hostInput(uint32(uintptr(unsafe.Pointer(&b[0]))), size)
	}
	// The envelope: a 2-byte big-endian skill-name length, the name, then
	// the payload.
	if len(b) < 2 || int(b[0])<<8|int(b[1])+2 > len(b) {
		msg := "echo: malformed call envelope"
		hostFail(uint32(uintptr(unsafe.Pointer(unsafe.StringData(msg)))), uint32(len(msg)))
		return 2
	}
	payload := b[2+(int(b[0])<<8|int(b[1])):]
	if len(payload) > 0 {
		hostOutput(uint32(uintptr(unsafe.Pointer(&payload[0]))), uint32(len(payload)))
	}
	return 0
}

func main() {}
