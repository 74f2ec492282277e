package httpwasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/hostapi/internal/engine"

	handlerapi "github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/tetratelabs/wazero/api"
)

// This file is the http-wasm handler ABI (module http_handler, spec at
// http-wasm.io/http-handler-abi) on Portico's runtime. The module is bound
// once per runtime tier, like the portico module; each function finds its
// request through the call's context (a *reqState), or its middleware
// through startKey while an instance starts.

// startKey carries the *Middleware into a starting instance's context, so
// enable_features, get_config and log work from a start function.
type startKey struct{}

// supportedFeatures are the http-wasm features this host implements.
const supportedFeatures = handlerapi.FeatureBufferRequest | handlerapi.FeatureBufferResponse | handlerapi.FeatureTrailers

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// abiMisuse ends the running guest call: it records the reason on the
// request (so the call is reported as ErrABI with this message) and traps.
func abiMisuse(st *reqState, format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if st != nil && st.err == nil {
		st.err = &hostapi.CallError{Plugin: st.m.name, Kind: hostapi.ErrABI, Msg: err.Error()}
	}
	panic(err)
}

// limitExceeded ends the running guest call with ErrBodyLimit.
func limitExceeded(st *reqState, format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if st.err == nil {
		st.err = &hostapi.CallError{Plugin: st.m.name, Kind: ErrBodyLimit, Msg: err.Error()}
	}
	panic(err)
}

// stateOf returns the request a host function runs for, or nil while an
// instance starts.
func stateOf(ctx context.Context) *reqState {
	if st, ok := ctx.(*reqState); ok {
		return st
	}
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// mustState is stateOf for functions that need a request.
func mustState(ctx context.Context, fn string) *reqState {
	st := stateOf(ctx)
	if st == nil {
		panic(fmt.Errorf("http_handler.%s called outside a request (from a start function)", fn))
	}
	return st
}

// middlewareOf returns the middleware from a request or a start function.
func middlewareOf(ctx context.Context) *Middleware {
	if st := stateOf(ctx); st != nil {
		return st.m
	}
	m, _ := ctx.Value(startKey{}).(*Middleware)
	if m == nil {
		panic(errors.New("http_handler function called outside a middleware"))
	}
	return m
}

func guestBytes(st *reqState, mod api.Module, what string, ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		abiMisuse(st, "%s: guest pointer %d+%d out of range", what, ptr, n)
	}
	return b
}

// writeIfFits writes v at buf when it fits in limit and returns its length
// either way, so a guest can retry with a larger buffer.
func writeIfFits(st *reqState, mod api.Module, buf, limit uint32, v string) uint64 {
	n := uint32(len(v))
	if n > 0 && n <= limit {
		if !mod.Memory().WriteString(buf, v) {
			abiMisuse(st, "guest buffer %d+%d out of range", buf, n)
		}
	}
	return uint64(n)
}

// writeNULTerminated writes values (lowercased when lower) as
// NUL-terminated strings at buf when they fit in limit, and returns
// count<<32 | bytes.
func writeNULTerminated(st *reqState, mod api.Module, buf, limit uint32, values []string, lower bool) uint64 {
	if len(values) == 0 {
		return 0
	}
	total := uint32(len(values))
	for _, v := range values {
		total += uint32(len(v))
	}
	res := uint64(len(values))<<32 | uint64(total)
	if total > limit {
		return res
	}
	b, ok := mod.Memory().Read(buf, total)
	if !ok {
		abiMisuse(st, "guest buffer %d+%d out of range", buf, total)
	}
	i := 0
	for _, v := range values {
		if lower {
			for j := 0; j < len(v); j++ {
				c := v[j]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i+j] = c
			}
		} else {
			copy(b[i:], v)
		}
		i += len(v)
		b[i] = 0
		i++
	}
	return res
}

// beforeNext traps when the request has already been passed on.
func beforeNext(st *reqState, op, what string) {
	if st.afterNext {
		abiMisuse(st, "can't %s %s after next handler", op, what)
	}
}

// beforeNextOr traps after next unless the feature is enabled.
func beforeNextOr(st *reqState, f handlerapi.Features, op, what string) {
	if st.afterNext && !st.features.IsEnabled(f) {
		if st.streaming {
			abiMisuse(st, "can't %s %s after next handler on a streaming request (%s is declined there)", op, what, f)
		}
		abiMisuse(st, "can't %s %s after next handler unless %s is enabled", op, what, f)
	}
}

// headers returns the header map of a kind, or traps on an unknown kind.
func (st *reqState) headerMap(kind handlerapi.HeaderKind) (h http.Header, prefix string) {
	switch kind {
	case handlerapi.HeaderKindRequest:
		return st.r.Header, ""
	case handlerapi.HeaderKindRequestTrailers:
		if st.r.Trailer == nil {
			st.r.Trailer = http.Header{}
		}
		return st.r.Trailer, ""
	case handlerapi.HeaderKindResponse:
		return st.w.Header(), ""
	case handlerapi.HeaderKindResponseTrailers:
		return st.w.Header(), http.TrailerPrefix
	}
	abiMisuse(st, "unsupported header kind %d", kind)
	return nil, ""
}

// mutableHeaders checks that headers of a kind may change now.
func mutableHeaders(st *reqState, kind handlerapi.HeaderKind, op string) {
	switch kind {
	case handlerapi.HeaderKindRequest:
		beforeNext(st, op, "request header")
	case handlerapi.HeaderKindRequestTrailers:
		beforeNext(st, op, "request trailer")
	case handlerapi.HeaderKindResponse:
		beforeNextOr(st, handlerapi.FeatureBufferResponse, op, "response header")
	case handlerapi.HeaderKindResponseTrailers:
		beforeNextOr(st, handlerapi.FeatureBufferResponse, op, "response trailer")
	default:
		abiMisuse(st, "unsupported header kind %d", kind)
	}
}

// headerArgs reads and checks a header name and value from the guest.
func headerArgs(st *reqState, mod api.Module, s []uint64, withValue bool) (name, value string) {
	nameLen := uint32(s[2])
	if nameLen == 0 {
		abiMisuse(st, "HTTP header name cannot be empty")
	}
	var valueLen uint32
	if withValue {
		valueLen = uint32(s[4])
	}
	if max := st.m.opts.MaxHeaderBytes; int(nameLen)+int(valueLen) > max {
		limitExceeded(st, "a header of %d bytes is over the limit of %d", int(nameLen)+int(valueLen), max)
	}
	name = string(guestBytes(st, mod, "header name", uint32(s[1]), nameLen))
	if withValue {
		value = string(guestBytes(st, mod, "header value", uint32(s[3]), valueLen))
	}
	return name, value
}

// headerKey is the map key of a header: canonical, or for a response
// trailer the raw name after http.TrailerPrefix (as net/http keeps it).
func headerKey(prefix, name string) string {
	if prefix != "" {
		return prefix + name
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// putHeader is set_header_value, or add_header_value when add.
func putHeader(st *reqState, mod api.Module, s []uint64, add bool) {
	kind := handlerapi.HeaderKind(uint32(s[0]))
	op := "set"
	if add {
		op = "add"
	}
	mutableHeaders(st, kind, op)
	name, value := headerArgs(st, mod, s, true)
	if kind == handlerapi.HeaderKindRequest && isHost(name) {
		st.r.Host = value
		return
	}
	h, prefix := st.headerMap(kind)
	if !add {
		h.Set(prefix+name, value)
		return
	}
	if len(h[headerKey(prefix, name)]) >= 64 {
		limitExceeded(st, "more than 64 values for header %q", name)
	}
	h.Add(prefix+name, value)
}

func isHost(name string) bool { return strings.EqualFold(name, "host") }

// httpWasmLevel maps an http-wasm log level to slog's; ok is false for
// none or an unknown level.
func httpWasmLevel(level int32) (slog.Level, bool) {
	switch level {
	case -1:
		return slog.LevelDebug, true
	case 0:
		return slog.LevelInfo, true
	case 1:
		return slog.LevelWarn, true
	case 2:
		return slog.LevelError, true
	}
	return 0, false
}

// httpHandlerFunctions is the http_handler host module: name, signature,
// implementation.
var httpHandlerFunctions = []engine.HostFunc{
	{Name: handlerapi.FuncEnableFeatures, Params: []api.ValueType{i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, _ api.Module, s []uint64) {
		want := handlerapi.Features(uint32(s[0])) & supportedFeatures
		if st := stateOf(ctx); st != nil {
			if st.streaming {
				want &^= handlerapi.FeatureBufferRequest | handlerapi.FeatureBufferResponse
			}
			if st.afterNext {
				want &^= handlerapi.FeatureBufferResponse // too late to buffer what next wrote
			}
			st.features |= want
			s[0] = uint64(st.features)
			return
		}
		m := middlewareOf(ctx)
		s[0] = uint64(m.features.Or(uint32(want)) | uint32(want))
	}},
	{Name: handlerapi.FuncGetConfig, Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		m := middlewareOf(ctx)
		cfg := m.opts.GuestConfig
		n := uint32(len(cfg))
		if n > 0 && n <= uint32(s[1]) {
			if !mod.Memory().Write(uint32(s[0]), cfg) {
				abiMisuse(stateOf(ctx), "get_config: guest buffer out of range")
			}
		}
		s[0] = uint64(n)
	}},
	{Name: handlerapi.FuncLogEnabled, Params: []api.ValueType{i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, _ api.Module, s []uint64) {
		m := middlewareOf(ctx)
		level := int32(s[0])
		s[0] = 0
		if m.logEnabled(ctx, level) {
			s[0] = 1
		}
	}},
	{Name: handlerapi.FuncLog, Params: []api.ValueType{i32, i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		m := middlewareOf(ctx)
		level := int32(s[0])
		if !m.logEnabled(ctx, level) {
			return
		}
		msg := guestBytes(stateOf(ctx), mod, "log message", uint32(s[1]), min(uint32(s[2]), engine.MaxMessage))
		m.guestLog(ctx, level, string(msg))
	}},
	{Name: handlerapi.FuncGetMethod, Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetMethod)
		s[0] = writeIfFits(st, mod, uint32(s[0]), uint32(s[1]), st.r.Method)
	}},
	{Name: handlerapi.FuncSetMethod, Params: []api.ValueType{i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncSetMethod)
		beforeNext(st, "set", "method")
		if uint32(s[1]) == 0 {
			abiMisuse(st, "HTTP method cannot be empty")
		}
		if uint32(s[1]) > 64 {
			abiMisuse(st, "HTTP method of %d bytes is too long", uint32(s[1]))
		}
		st.r.Method = string(guestBytes(st, mod, "method", uint32(s[0]), uint32(s[1])))
	}},
	{Name: handlerapi.FuncGetURI, Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetURI)
		u := st.r.URL
		uri := u.Path
		if u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Opaque != "" || uri == "" || strings.ContainsAny(uri, "%?# ") {
			uri = u.RequestURI()
		}
		s[0] = writeIfFits(st, mod, uint32(s[0]), uint32(s[1]), uri)
	}},
	{Name: handlerapi.FuncSetURI, Params: []api.ValueType{i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncSetURI)
		beforeNext(st, "set", "uri")
		if uint32(s[1]) > uint32(st.m.opts.MaxHeaderBytes) {
			limitExceeded(st, "a URI of %d bytes is over the limit of %d", uint32(s[1]), st.m.opts.MaxHeaderBytes)
		}
		uri := string(guestBytes(st, mod, "uri", uint32(s[0]), uint32(s[1])))
		r := st.r
		if uri == "" {
			r.RequestURI = "/"
			r.URL.RawPath, r.URL.Path, r.URL.ForceQuery, r.URL.RawQuery = "", "/", false, ""
			return
		}
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			abiMisuse(st, "set_uri: %v", err)
		}
		r.RequestURI = uri
		r.URL.RawPath, r.URL.Path, r.URL.ForceQuery, r.URL.RawQuery = u.RawPath, u.Path, u.ForceQuery, u.RawQuery
	}},
	{Name: handlerapi.FuncGetProtocolVersion, Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetProtocolVersion)
		proto := st.r.Proto
		if proto == "" {
			proto = "HTTP/1.1"
		}
		s[0] = writeIfFits(st, mod, uint32(s[0]), uint32(s[1]), proto)
	}},
	{Name: handlerapi.FuncGetHeaderNames, Params: []api.ValueType{i32, i32, i32}, Results: []api.ValueType{i64}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetHeaderNames)
		kind := handlerapi.HeaderKind(uint32(s[0]))
		h, prefix := st.headerMap(kind)
		names := st.names[:0]
		if kind == handlerapi.HeaderKindRequest && st.r.Host != "" {
			names = append(names, "Host")
		}
		for n := range h {
			switch {
			case prefix != "" && strings.HasPrefix(n, prefix):
				names = append(names, n[len(prefix):])
			case prefix == "" && !strings.HasPrefix(n, http.TrailerPrefix):
				names = append(names, n)
			}
		}
		slices.Sort(names)
		st.names = names
		s[0] = writeNULTerminated(st, mod, uint32(s[1]), uint32(s[2]), names, true)
	}},
	{Name: handlerapi.FuncGetHeaderValues, Params: []api.ValueType{i32, i32, i32, i32, i32}, Results: []api.ValueType{i64}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetHeaderValues)
		kind := handlerapi.HeaderKind(uint32(s[0]))
		if uint32(s[2]) == 0 {
			abiMisuse(st, "HTTP header name cannot be empty")
		}
		name := guestBytes(st, mod, "header name", uint32(s[1]), uint32(s[2]))
		h, prefix := st.headerMap(kind)
		var values []string
		if kind == handlerapi.HeaderKindRequest && isHost(string(name)) {
			if st.r.Host != "" {
				st.names = append(st.names[:0], st.r.Host)
				values = st.names
			}
		} else {
			values = h[headerKey(prefix, string(name))]
		}
		s[0] = writeNULTerminated(st, mod, uint32(s[3]), uint32(s[4]), values, false)
	}},
	{Name: handlerapi.FuncSetHeaderValue, Params: []api.ValueType{i32, i32, i32, i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		putHeader(mustState(ctx, handlerapi.FuncSetHeaderValue), mod, s, false)
	}},
	{Name: handlerapi.FuncAddHeaderValue, Params: []api.ValueType{i32, i32, i32, i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		putHeader(mustState(ctx, handlerapi.FuncAddHeaderValue), mod, s, true)
	}},
	{Name: handlerapi.FuncRemoveHeader, Params: []api.ValueType{i32, i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncRemoveHeader)
		kind := handlerapi.HeaderKind(uint32(s[0]))
		mutableHeaders(st, kind, "remove")
		name, _ := headerArgs(st, mod, s, false)
		if kind == handlerapi.HeaderKindRequest && isHost(name) {
			st.r.Host = ""
			return
		}
		h, prefix := st.headerMap(kind)
		h.Del(prefix + name)
	}},
	{Name: handlerapi.FuncReadBody, Params: []api.ValueType{i32, i32, i32}, Results: []api.ValueType{i64}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncReadBody)
		limit := uint32(s[2])
		if limit == 0 {
			abiMisuse(st, "read_body with buf_limit 0")
		}
		buf := guestBytes(st, mod, "body buffer", uint32(s[1]), limit)
		var n int
		var eof bool
		switch handlerapi.BodyKind(uint32(s[0])) {
		case handlerapi.BodyKindRequest:
			beforeNextOr(st, handlerapi.FeatureBufferRequest, "read", "request body")
			n, eof = st.readRequestBody(buf)
		case handlerapi.BodyKindResponse:
			beforeNextOr(st, handlerapi.FeatureBufferResponse, "read", "response body")
			n = copy(buf, st.respBody[st.respPos:])
			st.respPos += n
			eof = st.respPos == len(st.respBody)
		default:
			abiMisuse(st, "unsupported body kind %d", uint32(s[0]))
		}
		res := uint64(uint32(n))
		if eof {
			res |= 1 << 32
		}
		s[0] = res
	}},
	{Name: handlerapi.FuncWriteBody, Params: []api.ValueType{i32, i32, i32}, Results: nil, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncWriteBody)
		max := st.m.opts.MaxBodyBytes
		switch handlerapi.BodyKind(uint32(s[0])) {
		case handlerapi.BodyKindRequest:
			beforeNext(st, "write", "request body")
			if !st.reqWritten {
				st.reqBuf, st.reqPos, st.reqWritten = st.reqBuf[:0], 0, true
			}
			if len(st.reqBuf)+int(uint32(s[2])) > max {
				limitExceeded(st, "request body over the limit of %d bytes", max)
			}
			st.reqBuf = append(st.reqBuf, guestBytes(st, mod, "body", uint32(s[1]), uint32(s[2]))...)
		case handlerapi.BodyKindResponse:
			beforeNextOr(st, handlerapi.FeatureBufferResponse, "write", "response body")
			if !st.respWriting {
				st.respBody, st.respPos, st.respWriting = st.respBody[:0], 0, true
				st.respRewritten = st.afterNext
			}
			if len(st.respBody)+int(uint32(s[2])) > max {
				limitExceeded(st, "response body over the limit of %d bytes", max)
			}
			st.respBody = append(st.respBody, guestBytes(st, mod, "body", uint32(s[1]), uint32(s[2]))...)
		default:
			abiMisuse(st, "unsupported body kind %d", uint32(s[0]))
		}
	}},
	{Name: handlerapi.FuncGetStatusCode, Params: nil, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, _ api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetStatusCode)
		code := st.status
		if code == 0 {
			code = http.StatusOK
		}
		s[0] = uint64(uint32(code))
	}},
	{Name: handlerapi.FuncSetStatusCode, Params: []api.ValueType{i32}, Results: nil, Fn: func(ctx context.Context, _ api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncSetStatusCode)
		beforeNextOr(st, handlerapi.FeatureBufferResponse, "set", "status code")
		code := int(uint32(s[0]))
		if code < 100 || code > 999 {
			abiMisuse(st, "invalid status code %d", code)
		}
		st.status = code
	}},
	{Name: handlerapi.FuncGetSourceAddr, Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, mod api.Module, s []uint64) {
		st := mustState(ctx, handlerapi.FuncGetSourceAddr)
		s[0] = writeIfFits(st, mod, uint32(s[0]), uint32(s[1]), st.r.RemoteAddr)
	}},
}

// readRequestBody serves read_body for the request: from the guest's own
// rewrite, from the buffered body (buffer_request), or straight from the
// client's body, which the read consumes (the spec's behaviour without
// buffer_request).
func (st *reqState) readRequestBody(buf []byte) (n int, eof bool) {
	if !st.reqWritten && !st.reqBuffered && st.features.IsEnabled(handlerapi.FeatureBufferRequest) {
		max := st.m.opts.MaxBodyBytes
		b, err := io.ReadAll(io.LimitReader(st.r.Body, int64(max)+1))
		st.reqBuf, st.reqBuffered = append(st.reqBuf[:0], b...), true
		if err != nil {
			abiMisuse(st, "read request body: %v", err)
		}
		if len(st.reqBuf) > max {
			limitExceeded(st, "request body over the limit of %d bytes", max)
		}
	}
	if st.reqWritten || st.reqBuffered {
		n = copy(buf, st.reqBuf[st.reqPos:])
		st.reqPos += n
		return n, st.reqPos == len(st.reqBuf)
	}
	if st.r.Body == nil || st.r.Body == http.NoBody {
		return 0, true
	}
	var err error
	for n < len(buf) && err == nil {
		var k int
		k, err = st.r.Body.Read(buf[n:])
		n += k
	}
	switch {
	case err == io.EOF:
		return n, true
	case err != nil:
		abiMisuse(st, "read request body: %v", err)
	}
	return n, false
}
