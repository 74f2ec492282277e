package hostapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/porticohq/portico/hostapi/internal/engine"
)

// Results of host functions that return an i32: a length (>= 0) or one of
// these.
const (
	ResNotFound = -1
	ResDenied   = -2
	ResError    = -3
	ResTooLarge = -4
	ResDepth    = -5
)

type callKey struct{}

// call is the state of one guest call, reached by host functions through
// the call's context.
type call struct {
	p      *Plugin
	parent *call // the call whose host function made this one (call_skill), or nil
	// abandoned is set when the guest wrote output again after a refusal
	// and the host ended the call.
	abandoned bool
	// refusal is the first host-side refusal for the caller (ErrRefused)
	// made during the call.
	refusal error
	input   []byte
	out     []byte
	failMsg string
	err     error
	sink    func([]byte) error // streams output chunks as they come; nil collects them
	written int
	result  []byte // the last call_skill's reply, for result
	http    int    // outbound requests made in this call
}

// MaxHTTPRequests bounds outbound requests per call unless Options say.
const defaultMaxHTTP = 10

// parseHTTPRequest reads the guest's HTTP/1-style request text.
func parseHTTPRequest(ctx context.Context, b []byte) (*http.Request, error) {
	head, body, _ := bytes.Cut(b, []byte("\n\n"))
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	method, url, ok := strings.Cut(strings.TrimSpace(lines[0]), " ")
	if !ok || method == "" || url == "" {
		return nil, errors.New("the first line must be \"METHOD URL\"")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSpace(url), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not allowed; use http or https", req.URL.Scheme)
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("bad header line %q", l)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return req, nil
}

// heldBy counts the instances of p the call chain in ctx holds: one per
// call of p that is waiting, through call_skill, for the nested call being
// made now.
func heldBy(ctx context.Context, p *Plugin) int {
	n := 0
	for c, _ := ctx.Value(callKey{}).(*call); c != nil; c = c.parent {
		if c.p == p {
			n++
		}
	}
	return n
}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		// A host function called outside a call (from a start function):
		// ABI misuse, so trap.
		panic(errors.New("portico host function called outside a plugin call"))
	}
	return c
}

// read returns guest memory or traps: a pointer out of range is misuse.
func read(m api.Module, ptr, size uint32) []byte {
	b, ok := m.Memory().Read(ptr, size)
	if !ok {
		panic(errors.New("portico: guest pointer out of range"))
	}
	return b
}

// readMessage reads a message (fail, log): the whole range must be in
// guest memory, like any other pointer, and only its first maxMessage
// bytes are kept.
func readMessage(m api.Module, ptr, size uint32) []byte {
	b := read(m, ptr, size)
	return b[:min(len(b), maxMessage)]
}

// errOutputAfterRefusal ends a call whose guest called output again after
// output returned 1.
var errOutputAfterRefusal = errors.New("portico: output called again after it returned 1")

func write(m api.Module, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		panic(errors.New("portico: guest pointer out of range"))
	}
}

// copyOut writes up to limit bytes of v at ptr and returns v's full length,
// so a guest whose buffer was too small can retry with a larger one.
func copyOut(m api.Module, ptr, limit uint32, v []byte) uint64 {
	n := min(uint32(len(v)), limit)
	if n > 0 {
		write(m, ptr, v[:n])
	}
	return uint64(uint32(len(v)))
}

const maxMessage = engine.MaxMessage

const i32 = api.ValueTypeI32

// hostFunctions is ABI v1's host module: name, signature, implementation.
var hostFunctions = []hostFunc{
	{Name: "input", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		s[0] = copyOut(m, uint32(s[0]), uint32(s[1]), c.input)
	}},
	{Name: "output", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		b := read(m, uint32(s[0]), uint32(s[1]))
		if c.err != nil {
			// output already answered 1 and the guest writes on: end the
			// call now instead of letting it run to the call timeout. The
			// call fails with the refusal's error; the instance, stopped
			// mid-call, is discarded (not counted as a trap).
			c.abandoned = true
			panic(errOutputAfterRefusal)
		}
		if c.written+len(b) > c.p.opts.MaxOutputBytes {
			c.err = ErrOutputLimit
			s[0] = 1
			return
		}
		c.written += len(b)
		if c.sink != nil {
			if err := c.sink(append([]byte{}, b...)); err != nil {
				c.err = err
				s[0] = 1
				return
			}
		} else {
			c.out = append(c.out, b...)
		}
		s[0] = 0
	}},
	{Name: "fail", Params: []api.ValueType{i32, i32}, Results: nil, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		c.failMsg = string(readMessage(m, uint32(s[0]), uint32(s[1])))
	}},
	{Name: "log", Params: []api.ValueType{i32, i32, i32}, Results: nil, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		c.p.opts.Host.Log(ctx, int32(s[0]), string(readMessage(m, uint32(s[1]), uint32(s[2]))))
	}},
	{Name: "config_get", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		v, ok := c.p.opts.Host.Config(string(read(m, uint32(s[0]), uint32(s[1]))))
		if !ok {
			s[0] = api.EncodeI32(ResNotFound)
			return
		}
		s[0] = copyOut(m, uint32(s[2]), uint32(s[3]), []byte(v))
	}},
	{Name: "kv_get", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapKV) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		v, ok, err := c.p.opts.Host.KVGet(ctx, read(m, uint32(s[0]), uint32(s[1])))
		switch {
		case err != nil:
			s[0] = api.EncodeI32(ResError)
		case !ok:
			s[0] = api.EncodeI32(ResNotFound)
		default:
			s[0] = copyOut(m, uint32(s[2]), uint32(s[3]), v)
		}
	}},
	{Name: "kv_set", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapKV) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		err := c.p.opts.Host.KVSet(ctx, read(m, uint32(s[0]), uint32(s[1])), read(m, uint32(s[2]), uint32(s[3])))
		s[0] = api.EncodeI32(resultCode(err))
	}},
	{Name: "kv_delete", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapKV) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		s[0] = api.EncodeI32(resultCode(c.p.opts.Host.KVDelete(ctx, read(m, uint32(s[0]), uint32(s[1])))))
	}},
	{Name: "emit", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapEvents) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		err := c.p.opts.Host.Emit(ctx, string(read(m, uint32(s[0]), uint32(s[1]))), read(m, uint32(s[2]), uint32(s[3])))
		s[0] = api.EncodeI32(resultCode(err))
	}},
	{Name: "call_skill", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapSkills) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		name := string(read(m, uint32(s[0]), uint32(s[1])))
		in := append([]byte{}, read(m, uint32(s[2]), uint32(s[3]))...)
		out, err := c.p.opts.Host.CallSkill(ctx, name, in)
		c.answer(s, out, err)
	}},
	{Name: "http_request", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapHTTP) {
			c.result = fmt.Appendf(nil, "plugin %q is not granted the http capability; add \"http\" to grants in its [[plugins]] table", c.p.opts.Name)
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		max := c.p.opts.MaxHTTPRequests
		if max == 0 {
			max = defaultMaxHTTP
		}
		if c.http++; c.http > max {
			c.answer(s, nil, fmt.Errorf("%w: more than %d HTTP requests in one call", ErrQuota, max))
			return
		}
		req, err := parseHTTPRequest(ctx, read(m, uint32(s[0]), uint32(s[1])))
		if err != nil {
			c.answer(s, nil, fmt.Errorf("bad request: %w", err))
			return
		}
		status, body, err := c.p.opts.Host.HTTP(ctx, req)
		c.answer(s, body, err)
		if err == nil {
			s[0] = uint64(uint32(status)) // http_request returns the status, the body is the result
		}
	}},
	{Name: "llm_complete", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		if !c.p.granted(ctx, CapLLM) {
			s[0] = api.EncodeI32(ResDenied)
			return
		}
		out, err := c.p.opts.Host.LLM(ctx, append([]byte{}, read(m, uint32(s[0]), uint32(s[1]))...))
		c.answer(s, out, err) // -4 when the caller's token quota is spent
	}},
	{Name: "mcp_call_tool", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: mcpCallTool}, // v1.2
	{Name: "result", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32}, Fn: func(ctx context.Context, m api.Module, s []uint64) {
		c := callOf(ctx)
		s[0] = copyOut(m, uint32(s[0]), uint32(s[1]), c.result)
	}},
}

// ErrQuota is what a Host returns when a quota refuses a host call: a
// write past the plugin's kv quota, or (from llm_complete) the calling key
// past its token quota.
var ErrQuota = errors.New("quota exceeded")

// ErrRefused marks a host-side refusal that concerns the caller of the
// plugin, not the plugin: the caller's token quota, the call-chain depth.
// A Host wraps such an error with it (fmt.Errorf("%w: %w", ErrRefused,
// err)); when the guest then fails, the call fails with that refusal's
// kind (ErrQuota, ErrDepth) instead of ErrGuest, so the caller learns the
// cause.
var ErrRefused = errors.New("refused for the caller")

// resultCode is the i32 a host function returns for err: 0 for none,
// else the result the ABI gives its kind (docs/abi.md).
func resultCode(err error) int32 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNoSkill), errors.Is(err, ErrNoServer), errors.Is(err, ErrNotFound):
		return ResNotFound
	case errors.Is(err, ErrDenied):
		return ResDenied
	case errors.Is(err, ErrQuota):
		return ResTooLarge
	case errors.Is(err, ErrDepth):
		return ResDepth
	}
	return ResError
}

// answer ends a host function that has a reply: on success the reply
// becomes the call's result and the function returns its length; on an
// error the message is the result and the function returns its code.
// A refusal for the caller is remembered (refusal).
func (c *call) answer(s []uint64, out []byte, err error) {
	if err != nil {
		c.result = []byte(err.Error())
		s[0] = api.EncodeI32(resultCode(err))
		if errors.Is(err, ErrRefused) && c.refusal == nil {
			c.refusal = err
		}
		return
	}
	c.result = out
	s[0] = uint64(uint32(len(out)))
}

// hostFunc is one function of a host module.
type hostFunc = engine.HostFunc

func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	return engine.Bind(ctx, rt, HostModule, hostFunctions)
}

// hostSignature returns a host function's signature, for checking a
// module's imports at load.
func hostSignature(name string) (params, results []api.ValueType, ok bool) {
	return engine.SignatureIn(hostFunctions, name)
}
