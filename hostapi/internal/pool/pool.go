// Package pool is the capped instance pool both of hostapi's engines (the
// Portico ABI and http-wasm) run their guests in: a warm minimum, a cap,
// one instance pinned to one caller, a bounded wait for a free one, and a
// breaker that fails the pool after consecutive traps or timeouts. Unlike
// a sync.Pool it never empties on GC and never grows past its cap.
package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Errors Acquire returns.
var (
	// ErrBusy: every instance stayed busy for AcquireTimeout.
	ErrBusy = errors.New("no free plugin instance")
	// ErrClosed: the pool is closed.
	ErrClosed = errors.New("plugin is closed")
	// ErrHeld: a nested caller found no free instance while its own call
	// chain holds some; it is refused at once rather than waiting.
	ErrHeld = errors.New("no free instance while the call chain holds some")
)

// Options size a pool; zero values take the defaults shown.
type Options struct {
	MinInstances     int           // started by Warm and kept by Trim; default 1, negative for none
	MaxInstances     int           // the cap; default 4
	AcquireTimeout   time.Duration // the longest wait for a free instance; default 1s
	FailureThreshold int           // consecutive traps or timeouts before the pool fails; default 5
	// OnFailed is called once, when the breaker trips.
	OnFailed func(err error)
}

// Defaults fills in zero values.
func (o *Options) Defaults() {
	if o.MaxInstances == 0 {
		o.MaxInstances = 4
	}
	switch {
	case o.MinInstances == 0:
		o.MinInstances = 1
	case o.MinInstances < 0:
		o.MinInstances = 0
	}
	o.MinInstances = min(o.MinInstances, o.MaxInstances)
	if o.AcquireTimeout == 0 {
		o.AcquireTimeout = time.Second
	}
	if o.FailureThreshold == 0 {
		o.FailureThreshold = 5
	}
}

// Funcs are what a pool does with its instances.
type Funcs[T any] struct {
	Start func() (T, error) // a new instance; the pool counts it live first
	Stop  func(T)           // close an instance for good
	Free  func()            // once, when the pool is closed and its last instance gone
	// Empty, if set, is called after a discard left no instance alive in
	// a pool that is not closed (the module's code may be let go until the
	// next Start).
	Empty func()
}

// idleInst is an idle instance and since when it is idle.
type idleInst[T any] struct {
	inst  T
	since time.Time
}

// Pool holds the instances of one module.
type Pool[T any] struct {
	opts Options
	f    Funcs[T]

	idle  chan idleInst[T] // warm instances
	slots chan struct{}    // one token per live instance, cap MaxInstances
	// free wakes a waiter when a discard gave back a slot. (Probing slots
	// with a send and taking the token back, as an earlier pool did, lets
	// waiters pass such phantom tokens to each other and keep the pool
	// looking full with no instance alive: TestHammer timed out on it.)
	free   chan struct{}
	mu     sync.Mutex // guards closed against release and start
	closed bool
	freed  sync.Once

	live        atomic.Int64
	consecutive atomic.Int64
	failed      atomic.Pointer[error]
}

// New returns an empty pool; o is defaulted.
func New[T any](o Options, f Funcs[T]) *Pool[T] {
	o.Defaults()
	return &Pool[T]{opts: o, f: f, idle: make(chan idleInst[T], o.MaxInstances), slots: make(chan struct{}, o.MaxInstances),
		free: make(chan struct{}, o.MaxInstances)}
}

// Options returns the pool's defaulted options.
func (p *Pool[T]) Options() Options { return p.opts }

// Warm starts the warm minimum, and one instance at least: the first,
// checked with first, so a broken module fails at load; then the rest. On
// failure the pool is closed. (With a minimum of none, the first stays
// idle until Trim lets it go.)
func (p *Pool[T]) Warm(first func(T) error) error {
	for range max(p.opts.MinInstances, 1) {
		p.slots <- struct{}{}
		inst, err := p.start()
		if err != nil {
			<-p.slots
			p.Close()
			return err
		}
		if first != nil && p.live.Load() == 1 {
			if err := first(inst); err != nil {
				p.Discard(inst)
				p.Close()
				return err
			}
		}
		p.idle <- idleInst[T]{inst, time.Now()}
	}
	return nil
}

// start counts an instance live before it exists, under the lock Close
// takes, so a closing pool never frees its module under a new instance.
func (p *Pool[T]) start() (T, error) {
	var zero T
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return zero, ErrClosed
	}
	p.live.Add(1)
	p.mu.Unlock()
	inst, err := p.f.Start()
	if err != nil {
		p.live.Add(-1)
		p.maybeFree()
		return zero, err
	}
	return inst, nil
}

// Acquire pins an instance to the caller: a warm one, a new one while the
// pool is under its cap, or the first to come free within AcquireTimeout.
// A caller whose call chain already holds held of this pool's instances
// never waits (the instance it would wait for may be its own caller's):
// it takes a free one or gets ErrHeld at once.
func (p *Pool[T]) Acquire(ctx context.Context, held int) (T, error) {
	var zero T
	select {
	case e := <-p.idle:
		return e.inst, nil
	default:
	}
	var timer *time.Timer
	for {
		if inst, ok, err := p.tryAcquire(); ok || err != nil {
			return inst, err
		}
		if held > 0 {
			return zero, fmt.Errorf("%w: the call chain holds %d of its %d instances", ErrHeld, held, p.opts.MaxInstances)
		}
		if timer == nil {
			timer = time.NewTimer(p.opts.AcquireTimeout)
			defer timer.Stop()
		}
		select {
		case e := <-p.idle:
			return e.inst, nil
		case <-p.free:
			// a slot came free: loop to take it the normal way (it may be
			// gone again, or the signal stale: then wait on)
		case <-timer.C:
			return zero, fmt.Errorf("%w: all %d instances busy for %s", ErrBusy, p.opts.MaxInstances, p.opts.AcquireTimeout)
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// tryAcquire takes an idle instance or, under the cap, a new one; ok is
// false when neither is there right now. A start that fails (other than
// on a closed pool) counts toward the breaker.
func (p *Pool[T]) tryAcquire() (inst T, ok bool, err error) {
	select {
	case e := <-p.idle:
		return e.inst, true, nil
	case p.slots <- struct{}{}:
		inst, err := p.start()
		if err != nil {
			p.giveBack()
			if !errors.Is(err, ErrClosed) {
				p.Trip(err)
			}
			return inst, false, err
		}
		return inst, true, nil
	default:
		return inst, false, nil
	}
}

// Release returns a healthy instance to the pool; anything else, or any
// instance of a closed pool, is discarded.
func (p *Pool[T]) Release(inst T, healthy bool) {
	p.mu.Lock()
	if healthy && !p.closed {
		p.idle <- idleInst[T]{inst, time.Now()} // never blocks: idle holds at most MaxInstances
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.Discard(inst)
}

// Discard closes an instance and frees its slot.
func (p *Pool[T]) Discard(inst T) {
	p.f.Stop(inst)
	left := p.live.Add(-1)
	p.giveBack()
	p.maybeFree()
	if left == 0 && p.f.Empty != nil && !p.Closed() {
		p.f.Empty()
	}
}

// giveBack returns a slot and wakes a waiter for it.
func (p *Pool[T]) giveBack() {
	<-p.slots
	select {
	case p.free <- struct{}{}:
	default: // as many signals wait as there are slots: enough
	}
}

// Trip counts a trap or timeout; past FailureThreshold in a row the pool
// is failed (Failed) and OnFailed is called.
func (p *Pool[T]) Trip(err error) {
	if p.consecutive.Add(1) < int64(p.opts.FailureThreshold) {
		return
	}
	if p.failed.CompareAndSwap(nil, &err) && p.opts.OnFailed != nil {
		p.opts.OnFailed(err)
	}
}

// Ok resets the breaker's count after a call that went well.
func (p *Pool[T]) Ok() { p.consecutive.Store(0) }

// Failed returns why the breaker tripped, or nil.
func (p *Pool[T]) Failed() error {
	if f := p.failed.Load(); f != nil {
		return *f
	}
	return nil
}

// Closed reports whether Close was called.
func (p *Pool[T]) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Idle calls fn for each instance idle now, taking each out and putting it
// back around the call (for statistics).
func (p *Pool[T]) Idle(fn func(T)) {
	for range len(p.idle) {
		select {
		case e := <-p.idle:
			fn(e.inst)
			p.putBack(e)
		default:
		}
	}
}

// putBack returns an idle instance taken out for a look, keeping since.
func (p *Pool[T]) putBack(e idleInst[T]) {
	p.mu.Lock()
	if !p.closed {
		p.idle <- e
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.Discard(e.inst)
}

// Trim discards the instances idle longer than after, keeping at least
// keep alive, and returns how many it discarded. Instances in use are
// never touched; under steady load nothing is idle that long, so nothing
// is discarded and nothing has to start again.
func (p *Pool[T]) Trim(now time.Time, after time.Duration, keep int) int {
	n := 0
	for range len(p.idle) {
		select {
		case e := <-p.idle:
			if now.Sub(e.since) >= after && p.live.Load() > int64(keep) {
				p.Discard(e.inst)
				n++
				continue
			}
			p.putBack(e)
		default:
		}
	}
	return n
}

// Live is the number of instances alive, idle and in use.
func (p *Pool[T]) Live() int64 { return p.live.Load() }

// Close stops new acquisitions, closes the idle instances now and the ones
// in use as they come back, then calls Free once the last is gone.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case e := <-p.idle:
			p.Discard(e.inst)
			continue
		default:
		}
		break
	}
	p.maybeFree()
}

func (p *Pool[T]) maybeFree() {
	p.mu.Lock()
	done := p.closed && p.live.Load() == 0
	p.mu.Unlock()
	if done && p.f.Free != nil {
		p.freed.Do(p.f.Free)
	}
}

// IdleCount is the number of idle instances now.
func (p *Pool[T]) IdleCount() int { return len(p.idle) }
