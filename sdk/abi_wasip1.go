//go:build wasip1

package sdk

import "unsafe"

//go:wasmimport portico input
func hostInput(ptr, limit uint32) uint32

//go:wasmimport portico output
func hostOutput(ptr, size uint32) uint32

//go:wasmimport portico fail
func hostFail(ptr, size uint32)

//go:wasmimport portico log
func hostLog(level int32, ptr, size uint32)

//go:wasmimport portico config_get
func hostConfigGet(kptr, klen, buf, limit uint32) int32

//go:wasmimport portico kv_get
func hostKVGet(kptr, klen, buf, limit uint32) int32

//go:wasmimport portico kv_set
func hostKVSet(kptr, klen, vptr, vlen uint32) int32

//go:wasmimport portico kv_delete
func hostKVDelete(kptr, klen uint32) int32

//go:wasmimport portico emit
func hostEmit(tptr, tlen, dptr, dlen uint32) int32

//go:wasmimport portico call_skill
func hostCallSkill(nptr, nlen, iptr, ilen uint32) int32

//go:wasmimport portico http_request
func hostHTTP(ptr, size uint32) int32

//go:wasmimport portico llm_complete
func hostLLM(ptr, size uint32) int32

//go:wasmimport portico result
func hostResult(buf, limit uint32) int32

// ptr is the guest address of b's data (0 for an empty slice).
func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func sptr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// in is reused across calls: an instance serves one call at a time.
var in []byte

//go:wasmexport portico_abi_version
func abiVersion() uint32 { return ABIMajor<<16 | abiMinor() }

//go:wasmexport portico_skill
func porticoSkill(size uint32) uint32 {
	env := readInput(size)
	return dispatch(env, func(b []byte) { hostOutput(ptr(b), uint32(len(b))) }, fail)
}

//go:wasmexport portico_hook
func porticoHook(size uint32) uint32 {
	return dispatchEvent(readInput(size), fail)
}

func readInput(size uint32) []byte {
	if uint32(cap(in)) < size {
		in = make([]byte, size)
	}
	b := in[:size]
	if size > 0 {
		hostInput(ptr(b), size)
	}
	return b
}

func fail(msg string) { hostFail(sptr(msg), uint32(len(msg))) }

// scratch receives a value from the host first; copyOut then allocates
// exactly its size (in a guest each allocation, and each byte allocated,
// costs time: fewer and smaller is faster).
var scratch [1024]byte

// copyOut calls a host function that copies a value out, into scratch, or
// retrying with a buffer of the full length when scratch was too small.
func copyOut(call func(buf, limit uint32) int32) ([]byte, int32) {
	n := call(ptr(scratch[:]), uint32(len(scratch)))
	if n < 0 {
		return nil, n
	}
	buf := make([]byte, n)
	if int(n) <= len(scratch) {
		copy(buf, scratch[:n])
		return buf, 0
	}
	if n = call(ptr(buf), uint32(len(buf))); n < 0 {
		return nil, n
	}
	return buf[:min(int(n), len(buf))], 0
}

type wasmBackend struct{}

var be backend = wasmBackend{}

func (wasmBackend) log(level int32, msg string) { hostLog(level, sptr(msg), uint32(len(msg))) }

func (wasmBackend) config(key string) (string, bool) {
	v, code := copyOut(func(buf, limit uint32) int32 { return hostConfigGet(sptr(key), uint32(len(key)), buf, limit) })
	return unsafe.String(unsafe.SliceData(v), len(v)), code == 0 // v is ours alone
}

func (wasmBackend) output(b []byte) int32 { return int32(hostOutput(ptr(b), uint32(len(b)))) }

func (wasmBackend) kvGet(key string) ([]byte, int32) {
	return copyOut(func(buf, limit uint32) int32 { return hostKVGet(sptr(key), uint32(len(key)), buf, limit) })
}

func (wasmBackend) kvSet(key string, value []byte) int32 {
	return hostKVSet(sptr(key), uint32(len(key)), ptr(value), uint32(len(value)))
}

func (wasmBackend) kvDelete(key string) int32 { return hostKVDelete(sptr(key), uint32(len(key))) }

func (wasmBackend) emit(typ string, data []byte) int32 {
	return hostEmit(sptr(typ), uint32(len(typ)), ptr(data), uint32(len(data)))
}

// withResult runs a host call whose reply is fetched with result.
func withResult(code int32) ([]byte, int32) {
	if code == -1 || code == -2 || code == -4 || code == -5 {
		return nil, code
	}
	out, _ := copyOut(func(buf, limit uint32) int32 { return hostResult(buf, limit) })
	return out, code
}

func (wasmBackend) callSkill(name string, input []byte) ([]byte, int32) {
	return withResult(hostCallSkill(sptr(name), uint32(len(name)), ptr(input), uint32(len(input))))
}

func (wasmBackend) http(req []byte) (int32, []byte) {
	code := hostHTTP(ptr(req), uint32(len(req)))
	out, _ := copyOut(func(buf, limit uint32) int32 { return hostResult(buf, limit) })
	return code, out
}

func (wasmBackend) llm(req []byte) ([]byte, int32) {
	return withResult(hostLLM(ptr(req), uint32(len(req))))
}
