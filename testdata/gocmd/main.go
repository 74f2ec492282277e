// A Go guest built in command mode (no -buildmode=c-shared): Portico must
// refuse it with "rebuild with -buildmode=c-shared". Built by hostapi's
// tests.
package main

//go:wasmexport portico_abi_version
func abiVersion() uint32 { return 1 << 16 }

//go:wasmexport portico_skill
func skill(n uint32) uint32 { return 0 }

func main() {}
