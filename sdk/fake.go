//go:build !wasip1

package sdk

import (
	"errors"
	"sort"
	"sync"
)

// Fake is an in-memory host for running a plugin's code outside
// WebAssembly: unit tests and Examples. Capabilities not listed in Grants
// are refused like the gateway refuses them (a nil Grants grants all).
type Fake struct {
	mu     sync.Mutex
	KV     map[string][]byte
	Conf   map[string]string
	Logs   []string
	Events []Event
	Grants []string
	// Skills answers CallSkill; HTTP answers HTTP (given the request text);
	// LLM answers LLM. Nil means "not found" / "not configured".
	Skills map[string]func([]byte) ([]byte, error)
	HTTP   func(req string) (int, []byte, error)
	LLM    func([]byte) ([]byte, error)
	// MCP answers MCPCall with a tool's result JSON; nil means no such server.
	MCP func(server, tool string, args []byte) ([]byte, error)

	out []byte
}

// NewFake returns an empty fake host with every capability granted.
func NewFake() *Fake {
	return &Fake{KV: map[string][]byte{}, Conf: map[string]string{}, Skills: map[string]func([]byte) ([]byte, error){}}
}

var be backend = NewFake()

// UseFake makes f the host for the calls that follow and returns it.
func UseFake(f *Fake) *Fake {
	be = f
	return f
}

// Invoke calls a registered skill through the same dispatch the gateway
// uses, on the current fake host, and returns its reply. A skill error or
// bad input comes back as an error.
func Invoke(skill string, input []byte) ([]byte, error) {
	f, ok := be.(*Fake)
	if !ok {
		return nil, errors.New("sdk: Invoke needs a fake host")
	}
	f.mu.Lock()
	f.out = nil
	f.mu.Unlock()
	env := append([]byte{byte(len(skill) >> 8), byte(len(skill))}, skill...)
	env = append(env, input...)
	var msg string
	status := dispatch(env, func(b []byte) { f.output(b) }, func(m string) { msg = m })
	f.mu.Lock()
	out := f.out
	f.mu.Unlock()
	switch status {
	case statusOK:
		return out, nil
	case statusBadInput:
		return nil, BadInput("%s", msg)
	}
	return nil, errors.New(msg)
}

// Deliver hands an event to the registered hook, as the gateway would.
func Deliver(ev Event) error {
	env := append([]byte{byte(len(ev.Type) >> 8), byte(len(ev.Type))}, ev.Type...)
	var msg string
	if dispatchEvent(append(env, ev.Data...), func(m string) { msg = m }) != statusOK {
		return errors.New(msg)
	}
	return nil
}

// Keys lists the fake KV's keys, sorted.
func (f *Fake) Keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.KV))
	for k := range f.KV {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (f *Fake) granted(c string) bool {
	if f.Grants == nil {
		return true
	}
	for _, g := range f.Grants {
		if g == c {
			return true
		}
	}
	return false
}

func (f *Fake) log(level int32, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Logs = append(f.Logs, msg)
}

func (f *Fake) config(key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.Conf[key]
	return v, ok
}

func (f *Fake) output(b []byte) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, b...)
	return 0
}

func (f *Fake) kvGet(key string) ([]byte, int32) {
	if !f.granted("kv") {
		return nil, -2
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.KV[key]
	if !ok {
		return nil, -1
	}
	return append([]byte{}, v...), 0
}

func (f *Fake) kvSet(key string, value []byte) int32 {
	if !f.granted("kv") {
		return -2
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.KV[key] = append([]byte{}, value...)
	return 0
}

func (f *Fake) kvDelete(key string) int32 {
	if !f.granted("kv") {
		return -2
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.KV, key)
	return 0
}

func (f *Fake) emit(typ string, data []byte) int32 {
	if !f.granted("events") {
		return -2
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Events = append(f.Events, Event{Type: typ, Data: append([]byte{}, data...)})
	return 0
}

func (f *Fake) callSkill(name string, in []byte) ([]byte, int32) {
	if !f.granted("skills") {
		return nil, -2
	}
	fn, ok := f.Skills[name]
	if !ok {
		return nil, -1
	}
	out, err := fn(in)
	if err != nil {
		return []byte(err.Error()), -3
	}
	return out, int32(len(out))
}

func (f *Fake) http(req []byte) (int32, []byte) {
	if !f.granted("http") {
		return -2, []byte("http is not granted")
	}
	if f.HTTP == nil {
		return -2, []byte("host is not on the plugin's http_allow list")
	}
	status, body, err := f.HTTP(string(req))
	if err != nil {
		return -3, []byte(err.Error())
	}
	return int32(status), body
}

func (f *Fake) llm(req []byte) ([]byte, int32) {
	if !f.granted("llm") {
		return nil, -2
	}
	if f.LLM == nil {
		return []byte("no LLM provider is configured in the gateway"), -3
	}
	out, err := f.LLM(req)
	if err != nil {
		return []byte(err.Error()), -3
	}
	return out, int32(len(out))
}

func (f *Fake) mcpCall(req []byte) ([]byte, int32) {
	if !f.granted("mcp") {
		return nil, -2
	}
	v := JSON(req)
	server, tool := v.String("server"), v.String("tool")
	if f.MCP == nil {
		return []byte("no upstream MCP server " + server), -1
	}
	out, err := f.MCP(server, tool, v.Get("arguments").Raw())
	if err != nil {
		return []byte(err.Error()), -3
	}
	return out, int32(len(out))
}
