package hostapi

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porticohq/portico/internal/testtool"
)

// fakeHost is an in-memory Host that records what plugins do.
type fakeHost struct {
	mu     sync.Mutex
	kv     map[string][]byte
	logs   []string
	denied []string
	block  chan struct{} // when set, Log waits on it
}

func newHost() *fakeHost { return &fakeHost{kv: map[string][]byte{}} }

func (h *fakeHost) Log(ctx context.Context, level int32, msg string) {
	if h.block != nil {
		<-h.block
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, msg)
}
func (h *fakeHost) Config(key string) (string, bool) { return "", false }
func (h *fakeHost) KVGet(ctx context.Context, key []byte) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[string(key)]
	return v, ok, nil
}
func (h *fakeHost) KVSet(ctx context.Context, key, value []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kv[string(key)] = append([]byte{}, value...)
	return nil
}
func (h *fakeHost) KVDelete(ctx context.Context, key []byte) error { return nil }
func (h *fakeHost) Emit(ctx context.Context, typ string, data []byte) error {
	return nil
}
func (h *fakeHost) CallSkill(ctx context.Context, skill string, input []byte) ([]byte, error) {
	if skill == "upper" {
		return []byte(strings.ToUpper(string(input))), nil
	}
	return nil, ErrNoSkill
}
func (h *fakeHost) HTTP(ctx context.Context, req *http.Request) (int, []byte, error) {
	return 0, nil, ErrDenied
}
func (h *fakeHost) LLM(ctx context.Context, req []byte) ([]byte, error) {
	return nil, errors.New("no provider")
}
func (h *fakeHost) Denied(ctx context.Context, capability string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.denied = append(h.denied, capability)
}

func testCacheDir(t testing.TB) string {
	dir, err := TestCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	r, err := NewRuntime(testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "wasm", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelope builds ABI v1's call envelope: name length (2 bytes, big
// endian), name, payload.
func envelope(skill string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(skill)))
	return append(append(b, skill...), payload...)
}

func load(t testing.TB, r *Runtime, file string, o Options) (*Plugin, error) {
	if o.Host == nil {
		o.Host = newHost()
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(file, filepath.Ext(file))
	}
	p, err := r.Load(context.Background(), fixture(t, file), o)
	if err == nil {
		t.Cleanup(func() { p.Close(context.Background()) })
	}
	return p, err
}

func TestHostileFixtures(t *testing.T) {
	r := newRuntime(t)
	good, err := load(t, r, "ok.wasm", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file     string
		opts     Options
		loadErr  error // the load fails with this
		callErr  error // or the call does
		contains string
	}{
		{file: "notwasm.bin", loadErr: ErrNotWasm, contains: "asm"},
		{file: "noexports.wasm", loadErr: ErrABI, contains: "missing export portico_abi_version"},
		{file: "badabi.wasm", loadErr: ErrABI, contains: "built for ABI v2.0"},
		{file: "newminor.wasm", loadErr: ErrABI, contains: "needs ABI v1.5"},
		{file: "unknownimport.wasm", loadErr: ErrABI, contains: "portico.teleport"},
		{file: "starttrap.wasm", loadErr: ErrTrap, contains: "start"},
		{file: "loop.wasm", opts: Options{CallTimeout: 100 * time.Millisecond}, callErr: ErrTimeout, contains: "100ms"},
		{file: "membomb.wasm", opts: Options{MemoryLimitBytes: 2 << 20}, callErr: ErrTrap, contains: "unreachable"},
		{file: "unreachable.wasm", callErr: ErrTrap, contains: "unreachable"},
		{file: "recursion.wasm", callErr: ErrTrap, contains: "stack"},
		{file: "hugeoutput.wasm", callErr: ErrOutputLimit},
		{file: "outputloop.wasm", opts: Options{MaxOutputBytes: 100_000, CallTimeout: 10 * time.Minute}, callErr: ErrOutputLimit, contains: "kept writing"},
		{file: "badlog.wasm", callErr: ErrTrap, contains: "out of range"},
		{file: "failing.wasm", callErr: ErrGuest, contains: "no such city"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := load(t, r, tt.file, tt.opts)
			if tt.loadErr != nil {
				if !errors.Is(err, tt.loadErr) || !strings.Contains(err.Error(), tt.contains) || !strings.Contains(err.Error(), strings.TrimSuffix(tt.file, filepath.Ext(tt.file))) {
					t.Fatalf("load: %v; want %v containing %q and the plugin name", err, tt.loadErr, tt.contains)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			_, err = p.Call(context.Background(), envelope("x", []byte("hi")))
			var ce *CallError
			if !errors.Is(err, tt.callErr) || !errors.As(err, &ce) || ce.Plugin != p.opts.Name || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("call: %v; want %v containing %q", err, tt.callErr, tt.contains)
			}
			if (tt.callErr == ErrTrap || tt.callErr == ErrTimeout) && p.Live() != 0 {
				t.Errorf("the failed instance was kept: %d live", p.Live())
			}
			// The good plugin beside it still answers.
			out, err := good.Call(context.Background(), envelope("echo", []byte("still here")))
			if err != nil || !strings.HasSuffix(string(out), "still here") {
				t.Fatalf("good plugin after %s: %q, %v", tt.file, out, err)
			}
		})
	}
}

// TestOutputAfterRefusal: a guest that writes on after output returned 1
// is ended at its next output, its instance discarded, and the call fails
// with the output limit; that is not a trap, so the breaker stays calm.
func TestOutputAfterRefusal(t *testing.T) {
	r := newRuntime(t)
	p, err := load(t, r, "outputloop.wasm", Options{MaxOutputBytes: 100_000, CallTimeout: 10 * time.Minute, PoolOptions: PoolOptions{FailureThreshold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := p.Call(context.Background(), envelope("x", nil)); !errors.Is(err, ErrOutputLimit) {
			t.Fatalf("call %d: %v, want ErrOutputLimit", i, err)
		}
	}
	if st := p.Stats(); st.Failed != "" || st.Errors != 4 {
		t.Errorf("after 4 refused outputs: failed %q, errors %d", st.Failed, st.Errors)
	}
	if p.Live() != 0 {
		t.Errorf("an ended instance was kept: %d live", p.Live())
	}
}

func TestUngrantedCapability(t *testing.T) {
	r := newRuntime(t)
	h := newHost()
	p, err := load(t, r, "ungranted.wasm", Options{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Call(context.Background(), envelope("x", nil))
	if err != nil || len(out) != 4 || int32(binary.LittleEndian.Uint32(out)) != ResDenied {
		t.Fatalf("ungranted kv_set: %v, %v", out, err)
	}
	if len(h.denied) != 1 || h.denied[0] != CapKV || len(h.kv) != 0 {
		t.Errorf("denied %v, kv %v", h.denied, h.kv)
	}
	// Granted, the same call writes.
	h2 := newHost()
	p2, err := load(t, r, "ungranted.wasm", Options{Name: "granted", Host: h2, Grants: []string{CapKV}})
	if err != nil {
		t.Fatal(err)
	}
	out, err = p2.Call(context.Background(), envelope("x", nil))
	if err != nil || binary.LittleEndian.Uint32(out) != 0 || len(h2.kv) != 1 {
		t.Errorf("granted kv_set: %v %v kv %v", out, err, h2.kv)
	}
}

func TestPoolCapAndBusy(t *testing.T) {
	r := newRuntime(t)
	h := newHost()
	h.block = make(chan struct{})
	p, err := load(t, r, "block.wasm", Options{Host: h, PoolOptions: PoolOptions{MinInstances: 1, MaxInstances: 2, AcquireTimeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Call(context.Background(), envelope("x", nil))
			errs <- err
		}()
	}
	// Wait until both calls hold an instance (both are blocked in log).
	deadline := time.Now().Add(10 * time.Second)
	for p.Live() < 2 || p.pool.IdleCount() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("two calls never got instances")
		}
		time.Sleep(time.Millisecond)
	}
	_, err = p.Call(context.Background(), envelope("x", nil))
	if !errors.Is(err, ErrBusy) {
		t.Errorf("third call with both instances busy: %v", err)
	}
	close(h.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("blocked call: %v", err)
		}
	}
	if p.Live() > 2 {
		t.Errorf("pool grew past its cap: %d", p.Live())
	}
}

func TestBreaker(t *testing.T) {
	r := newRuntime(t)
	var tripped []error
	p, err := load(t, r, "unreachable.wasm", Options{PoolOptions: PoolOptions{FailureThreshold: 3, OnFailed: func(err error) { tripped = append(tripped, err) }}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := p.Call(context.Background(), envelope("x", nil)); !errors.Is(err, ErrTrap) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if _, err := p.Call(context.Background(), envelope("x", nil)); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("after the breaker: %v", err)
	}
	if len(tripped) != 1 || p.Stats().Failed == "" {
		t.Errorf("OnFailed called %d times; stats %+v", len(tripped), p.Stats())
	}
}

func TestConcurrentCallsAndClose(t *testing.T) {
	r := newRuntime(t)
	p, err := load(t, r, "ok.wasm", Options{PoolOptions: PoolOptions{MaxInstances: 3, AcquireTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				msg := []byte{byte(g), byte(i)}
				out, err := p.Call(context.Background(), envelope("e", msg))
				if err != nil || !strings.HasSuffix(string(out), string(msg)) {
					t.Errorf("call: %q %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p.Live() > 3 {
		t.Errorf("live %d over the cap", p.Live())
	}
	if s := p.Stats(); s.Calls != 800 || s.Errors != 0 || s.P50Micros < 1 || s.P99Micros < s.P50Micros {
		t.Errorf("stats %+v", s)
	}
	p.Close(context.Background())
	if p.Live() != 0 {
		t.Errorf("live after close: %d", p.Live())
	}
	if _, err := p.Call(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after close: %v", err)
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	r := newRuntime(t)
	h := newHost()
	h.block = make(chan struct{})
	p, err := load(t, r, "block.wasm", Options{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := p.Call(context.Background(), envelope("x", nil))
		done <- err
	}()
	for p.pool.IdleCount() > 0 {
		time.Sleep(time.Millisecond)
	}
	p.Close(context.Background())
	close(h.block)
	if err := <-done; err != nil {
		t.Errorf("in-flight call during close: %v", err)
	}
	if p.Live() != 0 {
		t.Errorf("instance not closed after the in-flight call: %d live", p.Live())
	}
}

// TestNoLeakOnReload loads and closes a plugin many times: instances,
// goroutines and heap return to their levels.
func TestNoLeakOnReload(t *testing.T) {
	r := newRuntime(t)
	wasm := fixture(t, "ok.wasm")
	cycle := func() {
		p, err := r.Load(context.Background(), wasm, Options{Name: "ok", Host: newHost(), PoolOptions: PoolOptions{MinInstances: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Call(context.Background(), envelope("e", []byte("x"))); err != nil {
			t.Fatal(err)
		}
		p.Close(context.Background())
		if p.Live() != 0 {
			t.Fatalf("live after close: %d", p.Live())
		}
	}
	for range 10 {
		cycle()
	}
	// Margin: 16 MiB over the level after the first reloads.
	testtool.NoLeak(t, 200, 16<<20, cycle)
}

func TestChannelKind(t *testing.T) {
	r := newRuntime(t)
	p, err := load(t, r, "channel.wasm", Options{Kinds: []string{KindChannel}})
	if err != nil {
		t.Fatal(err)
	}
	in := envelope("webhook", []byte(`{"body":"x"}`))
	out, err := p.CallChannel(context.Background(), in)
	if err != nil || string(out) != string(in) {
		t.Fatalf("channel call: %q %v", out, err)
	}
	if _, err := p.Call(context.Background(), in); !errors.Is(err, ErrABI) {
		t.Errorf("a skill call to a channel-only module: %v", err)
	}
	// A skill module declared as a channel is refused at load.
	if _, err := load(t, r, "ok.wasm", Options{Kinds: []string{KindChannel}}); !errors.Is(err, ErrABI) || !strings.Contains(err.Error(), ExportChannel) {
		t.Errorf("ok.wasm as a channel: %v", err)
	}
	rep, err := Inspect(context.Background(), "channel", fixture(t, "channel.wasm"), newHost(), "")
	if err != nil || len(rep.ExportedKinds) != 1 || rep.ExportedKinds[0] != KindChannel {
		t.Errorf("inspect: %+v %v", rep, err)
	}
}

// TestDormantSource: a plugin that keeps no instance and has a Source
// keeps no bytes; waking it reads them again, and bytes that are not the
// ones loaded (or a failed read) fail the call clearly.
func TestDormantSource(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	ok, other := fixture(t, "ok.wasm"), fixture(t, "hook.wasm")
	for _, c := range []struct {
		name    string
		source  func() ([]byte, error)
		kept    bool
		wantErr string
	}{
		{"no source keeps the bytes", nil, true, ""},
		{"the same bytes", func() ([]byte, error) { return ok, nil }, false, ""},
		{"changed bytes", func() ([]byte, error) { return other, nil }, false, "its module changed since it was loaded; reload the plugin"},
		{"a failed read", func() ([]byte, error) { return nil, errors.New("gone") }, false, "read its module again"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := r.Load(ctx, ok, Options{Name: "ok", Host: newHost(), PoolOptions: PoolOptions{MinInstances: -1, Source: c.source}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			if m := p.Memory(); m.Instances != 0 || (m.ModuleBytes == len(ok)) != c.kept {
				t.Fatalf("dormant: %+v", m)
			}
			_, err = p.Call(ctx, []byte(`"x"`))
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("call: %v, want %q", err, c.wantErr)
			}
		})
	}
}
