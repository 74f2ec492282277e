// Package webhook sends the gateway's events to outside HTTP endpoints.
//
// An operator registers a hook (a target URL and event patterns); the
// Service subscribes to the event bus and, for every event a hook's patterns
// match, writes a delivery to a durable queue in the store with a synced
// write before anything is sent. Workers POST each delivery, signed with
// the hook's secret (HMAC-SHA256 over timestamp and body), and retry
// failures with exponential backoff and full jitter until
// webhooks.max_attempts, after which the delivery is dead and can be
// redelivered. The queue lives in the store, so deliveries pending when the
// process stops or crashes resume at the next start: delivery is at least
// once, and the delivery id (header Portico-Delivery) lets receivers drop
// duplicates.
//
// The wire format, the signature scheme and the retry schedule are
// documented for receivers in docs/webhooks.md.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/egress"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/store"
)

// Errors callers decide on with errors.Is.
var (
	// ErrNotFound: no such hook or delivery.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the input is wrong (URL, target address, event pattern,
	// status filter); nothing was stored.
	ErrInvalid = errors.New("invalid webhook")
	// ErrConflict: the object's state forbids the change (redelivering a
	// delivery that is still pending).
	ErrConflict = errors.New("conflict")
)

// Deps are the services a Service works with.
type Deps struct {
	Store  store.KV // the queue and the hooks live under "webhook/"
	Bus    *events.Bus
	Logger *slog.Logger
}

// Hook is a webhook subscription as the API shows it. Its secrets are never
// part of it: the current one is returned once, by Create and RotateSecret.
type Hook struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	// SecretRotatedAt is when the secret was last rotated.
	SecretRotatedAt time.Time `json:"secret_rotated_at,omitzero"`
	// PreviousSecretExpiresAt is when the secret before the last rotation
	// stops signing deliveries; zero when there is none.
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at,omitzero"`
}

// hook is a Hook as stored: with its secrets. Values are never changed
// after they are published in a hookSet; a change stores a copy.
type hook struct {
	Hook
	Secret         string `json:"secret"`
	PreviousSecret string `json:"previous_secret,omitempty"`
}

// secrets returns the secrets that sign a delivery at now: the current one
// and, during the overlap after a rotation, the previous one.
func (h *hook) secrets(now time.Time) []string {
	if h.PreviousSecret != "" && now.Before(h.PreviousSecretExpiresAt) {
		return []string{h.Secret, h.PreviousSecret}
	}
	return []string{h.Secret}
}

// public returns the hook as the API shows it, sharing nothing with h.
func (h *hook) public() Hook {
	out := h.Hook
	out.Events = slices.Clone(h.Events)
	return out
}

func (h *hook) matches(typ string) bool {
	for _, p := range h.Events {
		if events.Match(p, typ) {
			return true
		}
	}
	return false
}

// hookSet is one immutable snapshot of the hooks, swapped atomically, so
// the event intake reads it without a lock.
type hookSet struct {
	byID map[string]*hook
	list []*hook // by id, which is by creation time
}

func (hs *hookSet) with(h *hook) *hookSet {
	next := &hookSet{byID: make(map[string]*hook, len(hs.byID)+1)}
	for id, x := range hs.byID {
		next.byID[id] = x
	}
	next.byID[h.ID] = h
	next.sort()
	return next
}

func (hs *hookSet) without(id string) *hookSet {
	next := &hookSet{byID: make(map[string]*hook, len(hs.byID))}
	for k, x := range hs.byID {
		if k != id {
			next.byID[k] = x
		}
	}
	next.sort()
	return next
}

func (hs *hookSet) sort() {
	hs.list = make([]*hook, 0, len(hs.byID))
	for _, h := range hs.byID {
		hs.list = append(hs.list, h)
	}
	slices.SortFunc(hs.list, func(a, b *hook) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
}

// Service keeps the hooks, queues deliveries and sends them. The zero value
// is not usable; call New, then Start, and Close when done.
type Service struct {
	kv store.KV
	// shared: other nodes use the store too (PostgreSQL), so an attempt
	// is claimed with a lease first, and hooks other nodes made are read
	// from the store (Refresh, and for an unknown hook id).
	shared bool
	bus    *events.Bus
	log    *slog.Logger
	cfg    atomic.Pointer[config.Webhooks]
	buffer int // events.buffer at construction: the bus subscription's size

	// client sends deliveries. Turning webhooks.allow_private off swaps in
	// a fresh one, so no connection dialed while internal targets were
	// allowed is reused afterwards (see send).
	client atomic.Pointer[http.Client]

	// Replaced in tests: the clock and the jitter source.
	now  func() time.Time
	rand func(n int64) int64

	mu    sync.Mutex // serializes hook changes
	hooks atomic.Pointer[hookSet]

	wake chan struct{} // nudges the dispatcher: new work or a free worker

	qmu      sync.Mutex
	inflight map[string]bool // deliveries being attempted, by id

	counters struct{ attempts, delivered, retries, dead atomic.Uint64 }

	started      bool
	sub          *events.Subscription
	intakeDone   chan struct{}
	stopLoops    context.CancelFunc
	loops        sync.WaitGroup
	attemptCtx   context.Context
	stopAttempts context.CancelFunc
	attempts     sync.WaitGroup
	closeOnce    sync.Once
}

// New builds a Service from the config; nothing runs until Start.
func New(d Deps, c *config.Config) *Service {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	_, shared := d.Store.(*store.Postgres)
	s := &Service{
		kv: store.Prefix(d.Store, "webhook/"), shared: shared, bus: d.Bus, log: d.Logger,
		buffer: int(c.Events.Buffer), now: time.Now, rand: mrand.Int64N,
		wake: make(chan struct{}, 1), inflight: map[string]bool{},
	}
	w := c.Webhooks
	s.cfg.Store(&w)
	s.hooks.Store(&hookSet{byID: map[string]*hook{}})
	s.client.Store(s.newClient())
	return s
}

// newClient is an HTTP client with its own connection pool whose every
// dial passes checkAddress.
func (s *Service) newClient() *http.Client {
	dialer := &net.Dialer{Control: s.checkAddress}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			Proxy:               nil, // an environment proxy would bypass the address check
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		// Redirects are not followed: a 3xx is an answer like any other
		// non-2xx, and a redirect cannot lead a delivery past the checks.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *Service) config() config.Webhooks { return *s.cfg.Load() }

// Apply applies a new config; every webhooks.* key is live. Turning
// webhooks.allow_private off also retires the connection pool, so no
// kept-alive connection to an internal address outlives the change: idle
// ones close now, those in flight once their delivery ends.
func (s *Service) Apply(_ context.Context, c *config.Config) error {
	w := c.Webhooks
	old := s.cfg.Swap(&w)
	if old.AllowPrivate && !w.AllowPrivate {
		s.client.Swap(s.newClient()).CloseIdleConnections()
	}
	s.kick()
	return nil
}

// checkAddress runs for every connection after DNS resolution.
func (s *Service) checkAddress(network, address string, _ syscall.RawConn) error {
	if s.config().AllowPrivate {
		return nil
	}
	if err := egress.CheckDial(address); err != nil {
		return fmt.Errorf("%w; set webhooks.allow_private = true to allow it", err)
	}
	return nil
}

// Refresh reads the hooks from the store again: on a store that nodes
// share, hooks another node created, changed or deleted take effect here.
func (s *Service) Refresh(ctx context.Context) error {
	s.mu.Lock() // no hook change of this node between the read and the swap
	defer s.mu.Unlock()
	set := &hookSet{byID: map[string]*hook{}}
	err := s.kv.Scan(ctx, []byte(hookPrefix), store.ScanOptions{}, func(k, v []byte) error {
		var h hook
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("webhook: decode hook %s: %w", k, err)
		}
		set.byID[h.ID] = &h
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: load hooks: %w", err)
	}
	set.sort()
	s.hooks.Store(set)
	return nil
}

// Start loads the hooks, subscribes to the bus and starts the workers;
// deliveries left pending by an earlier run (a restart or a crash) resume.
func (s *Service) Start(ctx context.Context) error {
	if s.started {
		return errors.New("webhook: Start called twice")
	}
	if err := s.Refresh(ctx); err != nil {
		return err
	}
	set := s.hooks.Load()
	pending := 0
	if err := s.kv.Scan(ctx, []byte(duePrefix), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error {
		pending++
		return nil
	}); err != nil {
		return fmt.Errorf("webhook: read the queue: %w", err)
	}
	sub, err := s.bus.Subscribe("*", max(s.buffer, 1))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	s.started, s.sub = true, sub
	s.intakeDone = make(chan struct{})
	var loopCtx context.Context
	loopCtx, s.stopLoops = context.WithCancel(context.WithoutCancel(ctx))
	s.attemptCtx, s.stopAttempts = context.WithCancel(context.WithoutCancel(ctx))
	go s.intake(sub)
	s.loops.Add(2)
	go func() { defer s.loops.Done(); s.dispatch(loopCtx) }()
	go func() { defer s.loops.Done(); s.sweepLoop(loopCtx) }()
	if pending > 0 {
		s.log.Info("webhook deliveries resumed", "pending", pending, "hooks", len(set.list))
	}
	return nil
}

// Close stops taking events (those already received are still queued),
// stops starting attempts and waits for the attempts in flight until ctx
// ends; attempts still running then are cancelled and stay pending in the
// queue for the next start. It is safe on a Service that never started and
// more than once.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if !s.started {
			return
		}
		s.sub.Close()
		<-s.intakeDone
		s.stopLoops()
		s.loops.Wait()
		done := make(chan struct{})
		go func() { s.attempts.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.stopAttempts()
			<-done
			err = fmt.Errorf("webhook: attempts in flight were cut off (they stay queued): %w", ctx.Err())
		}
		s.stopAttempts()
		s.client.Load().CloseIdleConnections()
	})
	return err
}

// kick wakes the dispatcher without blocking.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// HookInput is what Create takes.
type HookInput struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

// Create validates in, stores a new hook (synced) and returns it with its
// signing secret, which is never shown again. The target must be an http or
// https URL without credentials; unless webhooks.allow_private is set, its
// host must resolve only to public addresses.
func (s *Service) Create(ctx context.Context, in HookInput) (Hook, string, error) {
	u, err := s.checkURL(ctx, in.URL)
	if err != nil {
		return Hook{}, "", err
	}
	pats, err := checkPatterns(in.Events)
	if err != nil {
		return Hook{}, "", err
	}
	now := s.now().UTC()
	h := &hook{Hook: Hook{ID: newID(now), URL: u, Events: pats, Description: in.Description, CreatedAt: now}, Secret: newSecret()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.putHook(ctx, h); err != nil {
		return Hook{}, "", err
	}
	s.hooks.Store(s.hooks.Load().with(h))
	return h.public(), h.Secret, nil
}

func (s *Service) checkURL(ctx context.Context, raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", fmt.Errorf("%w: url is required", ErrInvalid)
	case err != nil:
		return "", fmt.Errorf("%w: url: %w", ErrInvalid, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w: url %q: want an http or https URL", ErrInvalid, raw)
	case u.Hostname() == "":
		return "", fmt.Errorf("%w: url %q has no host", ErrInvalid, raw)
	case u.User != nil:
		return "", fmt.Errorf("%w: url %q carries credentials; the signature authenticates deliveries, put no secrets in the URL", ErrInvalid, u.Redacted())
	}
	if !s.config().AllowPrivate {
		err := egress.CheckHost(ctx, u.Hostname())
		switch {
		case errors.Is(err, egress.ErrInternal):
			return "", fmt.Errorf("%w: url %q: %w; set webhooks.allow_private = true to allow internal targets", ErrInvalid, raw, err)
		case err != nil:
			return "", fmt.Errorf("%w: url %q: %w", ErrInvalid, raw, err)
		}
	}
	return u.String(), nil
}

func checkPatterns(pats []string) ([]string, error) {
	if len(pats) == 0 {
		return nil, fmt.Errorf("%w: events: list at least one event pattern, e.g. [\"message.*\"] or [\"*\"]", ErrInvalid)
	}
	out := make([]string, 0, len(pats))
	for _, p := range pats {
		if err := events.CheckPattern(p); err != nil {
			return nil, fmt.Errorf("%w: events: %w", ErrInvalid, err)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *Service) putHook(ctx context.Context, h *hook) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("webhook: encode hook: %w", err)
	}
	if err := s.kv.Set(ctx, hookKey(h.ID), b, store.Sync); err != nil {
		return fmt.Errorf("webhook: store hook %s: %w", h.ID, err)
	}
	return nil
}

// List returns every hook, oldest first.
func (s *Service) List() []Hook {
	set := s.hooks.Load()
	out := make([]Hook, len(set.list))
	for i, h := range set.list {
		out[i] = h.public()
	}
	return out
}

// Get returns one hook.
func (s *Service) Get(id string) (Hook, error) {
	h, err := s.hook(id)
	if err != nil {
		return Hook{}, err
	}
	return h.public(), nil
}

func (s *Service) hook(id string) (*hook, error) {
	h, ok := s.hooks.Load().byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: hook %q", ErrNotFound, id)
	}
	return h, nil
}

// RotateSecret gives the hook a new secret, returned once. The previous
// secret keeps signing deliveries (a second signature) for
// webhooks.secret_overlap, so a receiver can switch without losing any.
func (s *Service) RotateSecret(ctx context.Context, id string) (Hook, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.hook(id)
	if err != nil {
		return Hook{}, "", err
	}
	now := s.now().UTC()
	h := *old
	h.SecretRotatedAt = now
	h.PreviousSecret, h.PreviousSecretExpiresAt = "", time.Time{}
	if overlap := s.config().SecretOverlap.D(); overlap > 0 {
		h.PreviousSecret, h.PreviousSecretExpiresAt = old.Secret, now.Add(overlap)
	}
	h.Secret = newSecret()
	if err := s.putHook(ctx, &h); err != nil {
		return Hook{}, "", err
	}
	s.hooks.Store(s.hooks.Load().with(&h))
	return h.public(), h.Secret, nil
}

// Delete removes a hook and its deliveries: pending ones are never sent
// (an attempt already in flight finishes, and its outcome is dropped).
func (s *Service) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	if _, err := s.hook(id); err != nil {
		s.mu.Unlock()
		return err
	}
	if err := s.kv.Delete(ctx, hookKey(id), store.Sync); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("webhook: delete hook %s: %w", id, err)
	}
	s.hooks.Store(s.hooks.Load().without(id))
	s.mu.Unlock()
	// What is left behind if this fails is found later: a pending delivery
	// of a missing hook is dropped when it comes due, a finished one is
	// swept after webhooks.retention.
	if n, err := s.purge(ctx, id); err != nil {
		s.log.Warn("deliveries of a deleted hook not all removed yet; they are dropped later", "hook", id, "removed", n, "error", err)
	}
	return nil
}

// newID returns 16 bytes as 32 hex digits: nanoseconds since the epoch,
// big-endian, then 8 random bytes, so ids sort by creation time.
func newID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id looks like one newID made, so ids from URLs
// never reach store keys unchecked.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func newSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Counters are the outcomes of delivery attempts since the start.
type Counters struct {
	Attempts  uint64 // attempts made (whatever their outcome)
	Delivered uint64 // attempts that delivered (2xx)
	Retries   uint64 // failed attempts that will be retried
	Dead      uint64 // failed last attempts: the delivery is dead
}

// Counters returns the delivery counters.
func (s *Service) Counters() Counters {
	return Counters{Attempts: s.counters.attempts.Load(), Delivered: s.counters.delivered.Load(),
		Retries: s.counters.retries.Load(), Dead: s.counters.dead.Load()}
}
