package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type counter struct {
	started, stopped, freed atomic.Int64
	live, peak              atomic.Int64
}

func (c *counter) funcs() Funcs[int] {
	return Funcs[int]{
		Start: func() (int, error) {
			n := c.live.Add(1)
			for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
			}
			return int(c.started.Add(1)), nil
		},
		Stop: func(int) { c.stopped.Add(1); c.live.Add(-1) },
		Free: func() { c.freed.Add(1) },
	}
}

// TestHammer: many callers never push the pool past its cap, every caller
// is served, and Close frees once after the last instance is gone.
func TestHammer(t *testing.T) {
	var c counter
	p := New(Options{MaxInstances: 3, AcquireTimeout: 10 * time.Second}, c.funcs())
	if err := p.Warm(nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				inst, err := p.Acquire(context.Background(), 0)
				if err != nil {
					t.Error(err)
					return
				}
				p.Release(inst, (g+i)%17 != 0) // now and then an unhealthy one is replaced
			}
		})
	}
	wg.Wait()
	if c.peak.Load() > 3 || p.Live() > 3 {
		t.Errorf("peak %d live %d, cap 3", c.peak.Load(), p.Live())
	}
	inst, _ := p.Acquire(context.Background(), 0)
	p.Close()
	if c.freed.Load() != 0 {
		t.Fatal("freed with an instance in use")
	}
	p.Release(inst, true) // into a closed pool: discarded
	if c.freed.Load() != 1 || p.Live() != 0 || c.started.Load() != c.stopped.Load() {
		t.Errorf("after close: freed %d live %d started %d stopped %d", c.freed.Load(), p.Live(), c.started.Load(), c.stopped.Load())
	}
	if _, err := p.Acquire(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
}

func TestFullPool(t *testing.T) {
	var c counter
	p := New(Options{MaxInstances: 1, AcquireTimeout: 30 * time.Millisecond}, c.funcs())
	held, err := p.Acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// A nested caller whose chain holds an instance is refused at once.
	if _, err := p.Acquire(context.Background(), 1); !errors.Is(err, ErrHeld) {
		t.Errorf("nested acquire on a full pool: %v", err)
	}
	// Anyone else waits AcquireTimeout, then is busy.
	if _, err := p.Acquire(context.Background(), 0); !errors.Is(err, ErrBusy) {
		t.Errorf("acquire on a full pool: %v", err)
	}
	// A waiter gets the instance released meanwhile.
	go func() { time.Sleep(5 * time.Millisecond); p.Release(held, true) }()
	if _, err := p.Acquire(context.Background(), 0); err != nil && !errors.Is(err, ErrBusy) {
		t.Errorf("acquire after a release: %v", err)
	}
	// A canceled context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := New(Options{MaxInstances: 1, AcquireTimeout: 10 * time.Second}, c.funcs())
	q.Acquire(context.Background(), 0)
	if _, err := q.Acquire(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with a canceled context: %v", err)
	}
}

func TestBreaker(t *testing.T) {
	var tripped []error
	p := New(Options{FailureThreshold: 3, OnFailed: func(err error) { tripped = append(tripped, err) }}, (&counter{}).funcs())
	boom := errors.New("boom")
	p.Trip(boom)
	p.Trip(boom)
	p.Ok() // a good call in between resets the count
	p.Trip(boom)
	p.Trip(boom)
	if p.Failed() != nil {
		t.Fatal("failed before three in a row")
	}
	p.Trip(boom)
	p.Trip(boom)
	if !errors.Is(p.Failed(), boom) || len(tripped) != 1 {
		t.Errorf("failed %v, OnFailed called %d times", p.Failed(), len(tripped))
	}
}

func TestStartFailure(t *testing.T) {
	boom := errors.New("no start")
	freed := 0
	p := New(Options{}, Funcs[int]{Start: func() (int, error) { return 0, boom }, Stop: func(int) {}, Free: func() { freed++ }})
	if err := p.Warm(nil); !errors.Is(err, boom) {
		t.Fatalf("Warm: %v", err)
	}
	if freed != 1 || p.Live() != 0 || !p.Closed() {
		t.Errorf("a failed Warm: freed %d live %d closed %v", freed, p.Live(), p.Closed())
	}
}

// TestTrim: instances idle past the limit go, down to the minimum; a
// call after that starts one again; the pool that empties says so.
func TestTrim(t *testing.T) {
	var c counter
	empty := 0
	f := c.funcs()
	f.Empty = func() { empty++ }
	p := New(Options{MinInstances: -1, MaxInstances: 3}, f)
	if err := p.Warm(nil); err != nil || p.Live() != 1 {
		t.Fatalf("Warm with no minimum: live %d, %v (one starts to check the module)", p.Live(), err)
	}
	// Three in use, then all idle.
	a, _ := p.Acquire(context.Background(), 0)
	b, _ := p.Acquire(context.Background(), 0)
	d, _ := p.Acquire(context.Background(), 0)
	for _, inst := range []int{a, b, d} {
		p.Release(inst, true)
	}
	now := time.Now()
	if n := p.Trim(now, time.Minute, 0); n != 0 || p.Live() != 3 {
		t.Errorf("Trim of instances idle for less than the limit: %d gone, %d live", n, p.Live())
	}
	if n := p.Trim(now.Add(2*time.Minute), time.Minute, 1); n != 2 || p.Live() != 1 || empty != 0 {
		t.Errorf("Trim keeping 1: %d gone, %d live, empty %d", n, p.Live(), empty)
	}
	if n := p.Trim(now.Add(2*time.Minute), time.Minute, 0); n != 1 || p.Live() != 0 || empty != 1 {
		t.Errorf("Trim keeping none: %d gone, %d live, empty %d", n, p.Live(), empty)
	}
	inst, err := p.Acquire(context.Background(), 0)
	if err != nil || p.Live() != 1 {
		t.Fatalf("Acquire after the pool emptied: %v, live %d", err, p.Live())
	}
	p.Release(inst, true)
	started := c.started.Load()
	// Steady use never starts an instance again.
	for range 100 {
		inst, _ := p.Acquire(context.Background(), 0)
		p.Release(inst, true)
		p.Trim(time.Now(), time.Minute, 0)
	}
	if c.started.Load() != started {
		t.Errorf("steady use started %d instances", c.started.Load()-started)
	}
}
