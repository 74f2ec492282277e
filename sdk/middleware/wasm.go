//go:build wasip1

package middleware

import "unsafe"

//go:wasmimport http_handler enable_features
func hEnableFeatures(f uint32) uint32

//go:wasmimport http_handler get_config
func hGetConfig(buf, limit uint32) uint32

//go:wasmimport http_handler log
func hLog(level int32, ptr, size uint32)

//go:wasmimport http_handler get_method
func hGetMethod(buf, limit uint32) uint32

//go:wasmimport http_handler set_method
func hSetMethod(ptr, size uint32)

//go:wasmimport http_handler get_uri
func hGetURI(buf, limit uint32) uint32

//go:wasmimport http_handler set_uri
func hSetURI(ptr, size uint32)

//go:wasmimport http_handler get_protocol_version
func hGetProtocol(buf, limit uint32) uint32

//go:wasmimport http_handler get_source_addr
func hGetSourceAddr(buf, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func hGetHeaderNames(kind, buf, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func hGetHeaderValues(kind, name, nameLen, buf, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func hSetHeader(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler add_header_value
func hAddHeader(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler remove_header
func hRemoveHeader(kind, name, nameLen uint32)

//go:wasmimport http_handler read_body
func hReadBody(kind, buf, limit uint32) uint64

//go:wasmimport http_handler write_body
func hWriteBody(kind, ptr, size uint32)

//go:wasmimport http_handler get_status_code
func hGetStatus() uint32

//go:wasmimport http_handler set_status_code
func hSetStatus(code uint32)

//go:wasmexport handle_request
func exportHandleRequest() uint64 { return handleRequest() }

//go:wasmexport handle_response
func exportHandleResponse(reqCtx, isError uint32) { handleResponse(reqCtx, isError) }

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

// scratch is reused for reads: an instance serves one request at a time.
var scratch = make([]byte, 2048)

// getString calls a "write into buf up to limit, return the length" host
// function, retrying with a buffer of the full length.
func getString(call func(buf, limit uint32) uint32) string {
	n := call(ptr(scratch), uint32(len(scratch)))
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		n = call(ptr(scratch), uint32(len(scratch)))
	}
	return string(scratch[:n])
}

// getList is getString for the NUL-terminated lists (count<<32 | length).
func getList(call func(buf, limit uint32) uint64) []string {
	cl := call(ptr(scratch), uint32(len(scratch)))
	count, n := int(cl>>32), uint32(cl)
	if count == 0 {
		return nil
	}
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		cl = call(ptr(scratch), uint32(len(scratch)))
		count, n = int(cl>>32), uint32(cl)
	}
	return splitNUL(scratch[:n], count)
}

type wasmBackend struct{}

var be backend = wasmBackend{}

func (wasmBackend) enableFeatures(f uint32) uint32 { return hEnableFeatures(f) }

func (wasmBackend) config() []byte {
	return []byte(getString(hGetConfig))
}

func (wasmBackend) log(level int32, msg string) { hLog(level, sptr(msg), uint32(len(msg))) }
func (wasmBackend) method() string              { return getString(hGetMethod) }
func (wasmBackend) setMethod(m string)          { hSetMethod(sptr(m), uint32(len(m))) }
func (wasmBackend) uri() string                 { return getString(hGetURI) }
func (wasmBackend) setURI(u string)             { hSetURI(sptr(u), uint32(len(u))) }
func (wasmBackend) protocol() string            { return getString(hGetProtocol) }
func (wasmBackend) sourceAddr() string          { return getString(hGetSourceAddr) }

func (wasmBackend) headerNames(kind uint32) []string {
	return getList(func(buf, limit uint32) uint64 { return hGetHeaderNames(kind, buf, limit) })
}

func (wasmBackend) headerValues(kind uint32, name string) []string {
	return getList(func(buf, limit uint32) uint64 {
		return hGetHeaderValues(kind, sptr(name), uint32(len(name)), buf, limit)
	})
}

func (wasmBackend) setHeader(kind uint32, name, value string) {
	hSetHeader(kind, sptr(name), uint32(len(name)), sptr(value), uint32(len(value)))
}

func (wasmBackend) addHeader(kind uint32, name, value string) {
	hAddHeader(kind, sptr(name), uint32(len(name)), sptr(value), uint32(len(value)))
}

func (wasmBackend) removeHeader(kind uint32, name string) {
	hRemoveHeader(kind, sptr(name), uint32(len(name)))
}

func (wasmBackend) readBody(kind uint32) []byte {
	var out []byte
	for {
		el := hReadBody(kind, ptr(scratch), uint32(len(scratch)))
		out = append(out, scratch[:uint32(el)]...)
		if el>>32 == 1 {
			return out
		}
	}
}

func (wasmBackend) writeBody(kind uint32, b []byte) { hWriteBody(kind, ptr(b), uint32(len(b))) }
func (wasmBackend) status() uint32                  { return hGetStatus() }
func (wasmBackend) setStatus(code uint32)           { hSetStatus(code) }
