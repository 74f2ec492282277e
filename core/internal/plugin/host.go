package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/events"
	"github.com/porticohq/portico/core/internal/llm"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/hostapi"
)

// pluginHost is what one plugin reaches through the host API: its own log,
// config, key-value namespace (with a quota) and the event bus.
type pluginHost struct {
	name   string
	log    *slog.Logger
	logLim *logLimiter
	config map[string]string
	kv     store.KV
	quota  int64
	used   atomic.Int64 // bytes of keys and values held
	bus    *events.Bus
	audit  *audit.Trail

	mu     sync.Mutex
	denied map[string]time.Time // last audit of a refused capability

	// sizes are the value lengths of keys this host has written or read
	// at start (-1: absent; at most maxSizes keys), so a hook run's
	// commit need not read back the values it replaces to count the
	// quota. wmu, held by every write, keeps them exact.
	wmu   sync.Mutex
	sizes map[string]int

	invoke   func(ctx context.Context, skill string, input []byte) ([]byte, string, error)
	maxDepth int
	http     *httpPolicy
	llm      func(ctx context.Context, plugin string, models []string, request []byte) ([]byte, error) // nil: no provider
	// llmModels is the plugin's llm_models allow-list; empty allows any.
	llmModels []string
	mcp       func(ctx context.Context, plugin string, request []byte) ([]byte, error) // nil: no upstream MCP servers
}

type depthKey struct{}

// depthOf is how many skill calls deep ctx is.
func depthOf(ctx context.Context) int {
	d, _ := ctx.Value(depthKey{}).(int)
	return d
}

// CallSkill invokes another skill one level deeper, refusing past the
// depth limit so A -> B -> A cannot recurse until the pools are exhausted.
func (h *pluginHost) CallSkill(ctx context.Context, skill string, input []byte) ([]byte, error) {
	d := depthOf(ctx) + 1
	if d > h.maxDepth {
		return nil, fmt.Errorf("%w: %w: %d levels (plugin.max_call_depth)", hostapi.ErrRefused, hostapi.ErrDepth, h.maxDepth)
	}
	out, _, err := h.invoke(context.WithValue(ctx, depthKey{}, d), skill, input)
	if errors.Is(err, ErrNotFound) {
		return nil, hostapi.ErrNoSkill
	}
	return out, err
}

var _ hostapi.Host = (*pluginHost)(nil)

// kvPrefix is where a plugin's data lives in the store.
func kvPrefix(name string) string { return "plugin/" + name + "/" }

func newHost(ctx context.Context, name string, st store.KV, quota int64, cfg map[string]string, bus *events.Bus, tr *audit.Trail, log *slog.Logger) (*pluginHost, error) {
	h := &pluginHost{name: name, log: log.With("plugin", name), config: cfg, kv: store.Prefix(st, kvPrefix(name)), quota: quota, bus: bus, audit: tr,
		denied: map[string]time.Time{}, sizes: map[string]int{}}
	var used int64
	err := h.kv.Scan(ctx, nil, store.ScanOptions{}, func(k, v []byte) error {
		used += int64(len(k) + len(v))
		h.knowSize(string(k), len(v))
		return nil
	})
	h.used.Store(used)
	return h, err
}

func (h *pluginHost) Log(ctx context.Context, level int32, msg string) {
	l := slog.LevelInfo
	switch level {
	case hostapi.LogDebug:
		l = slog.LevelDebug
	case hostapi.LogWarn:
		l = slog.LevelWarn
	case hostapi.LogError:
		l = slog.LevelError
	}
	h.logLim.log(ctx, h.log, l, msg)
}

func (h *pluginHost) Config(key string) (string, bool) {
	v, ok := h.config[key]
	return v, ok
}

func (h *pluginHost) KVGet(ctx context.Context, key []byte) ([]byte, bool, error) {
	if b := h.batchOf(ctx); b != nil {
		if v, found, held := b.get(key); held {
			return v, found, nil
		}
	}
	v, err := h.kv.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// KVSet writes within the plugin's quota: the bytes of its keys and values.
func (h *pluginHost) KVSet(ctx context.Context, key, value []byte) error {
	if len(key) == 0 {
		return errors.New("empty key")
	}
	if b := h.batchOf(ctx); b != nil {
		// Counted as a new key first, which saves reading the old value
		// when the write fits anyway; the commit counts exactly.
		delta := int64(len(key) + len(value))
		if h.used.Load()+b.delta+delta > h.quota {
			old, err := b.oldSize(ctx, key)
			if err != nil {
				return err
			}
			if delta -= old; h.used.Load()+b.delta+delta > h.quota {
				return hostapi.ErrQuota
			}
		}
		b.put(key, value, false, delta)
		return nil
	}
	var delta int64
	h.wmu.Lock()
	defer h.wmu.Unlock()
	err := h.kv.Update(ctx, func(tx store.Txn) error {
		old, err := tx.Get(key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			delta = int64(len(key) + len(value))
		case err != nil:
			return err
		default:
			delta = int64(len(value) - len(old))
		}
		if h.used.Load()+delta > h.quota {
			return hostapi.ErrQuota
		}
		return tx.Set(key, value)
	})
	if err == nil {
		h.used.Add(delta)
		h.knowSize(string(key), len(value))
	}
	return err
}

// maxSizes bounds the key sizes a host remembers.
const maxSizes = 4096

// knowSize records key's value length (-1: absent); under wmu, or before
// the host is shared.
func (h *pluginHost) knowSize(key string, n int) {
	if _, ok := h.sizes[key]; ok || len(h.sizes) < maxSizes {
		h.sizes[key] = n
	}
}

func (h *pluginHost) KVDelete(ctx context.Context, key []byte) error {
	if b := h.batchOf(ctx); b != nil {
		old, err := b.oldSize(ctx, key)
		if err != nil {
			return err
		}
		b.put(key, nil, true, -old)
		return nil
	}
	var freed int64
	h.wmu.Lock()
	defer h.wmu.Unlock()
	err := h.kv.Update(ctx, func(tx store.Txn) error {
		old, err := tx.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			freed = 0
			return nil
		}
		if err != nil {
			return err
		}
		freed = int64(len(key) + len(old))
		return tx.Delete(key)
	})
	if err == nil {
		h.used.Add(-freed)
		h.knowSize(string(key), -1)
	}
	return err
}

// Emit publishes plugin.<name>.<type>; JSON data stays JSON.
func (h *pluginHost) Emit(ctx context.Context, typ string, data []byte) error {
	ev := events.Event{Type: "plugin." + h.name + "." + typ}
	if json.Valid(data) {
		ev.Data = json.RawMessage(append([]byte{}, data...))
	} else {
		ev.Data = string(data)
	}
	h.bus.Publish(ev)
	return nil
}

// Denied audits a refused capability call, at most once a minute per
// capability so a looping plugin cannot flood the trail.
func (h *pluginHost) Denied(ctx context.Context, capability string) {
	h.mu.Lock()
	last := h.denied[capability]
	now := time.Now()
	if now.Sub(last) < time.Minute {
		h.mu.Unlock()
		return
	}
	h.denied[capability] = now
	h.mu.Unlock()
	if strings.HasPrefix(capability, hostapi.CapHTTP+":") {
		h.log.Warn("outbound request refused: the host is not on http_allow, or its address is internal and http_private is off", "target", strings.TrimPrefix(capability, hostapi.CapHTTP+":"))
	} else {
		h.log.Warn("capability not granted; add it to the plugin's grants to allow it", "capability", capability)
	}
	if err := h.audit.Record(context.WithoutCancel(ctx), audit.Entry{Actor: "plugin:" + h.name, Action: "capability.denied", Target: capability, Outcome: audit.Denied}); err != nil {
		h.log.Error("audit record failed", "error", err)
	}
}

// ErrNoProvider is what llm_complete answers while no LLM provider is
// configured in the gateway.
var ErrNoProvider = errors.New("no LLM provider is configured in the gateway")

// LLM implements hostapi.Host. The permission check is the runtime's; the
// providers (core/llm) are told the plugin and its model allow-list.
func (h *pluginHost) LLM(ctx context.Context, request []byte) ([]byte, error) {
	if h.llm == nil {
		return nil, ErrNoProvider
	}
	out, err := h.llm(ctx, h.name, h.llmModels, request)
	if errors.Is(err, llm.ErrQuotaExceeded) {
		// The caller's quota, not the plugin's: the guest sees -4, and a
		// call that fails after it fails as the quota's.
		return nil, fmt.Errorf("%w: %w: %w", hostapi.ErrRefused, hostapi.ErrQuota, err)
	}
	return out, err
}

var _ hostapi.MCPHost = (*pluginHost)(nil)

// ErrUnknownMCPServer is what Deps.MCP returns for an upstream MCP server
// the gateway does not have; a guest sees -1 for it. (The mcp package's
// ErrUnknownServer is this one.)
var ErrUnknownMCPServer = errors.New("no such upstream MCP server")

// MCP implements hostapi.MCPHost: an upstream MCP tool call (capability
// mcp; the runtime checks the grant).
func (h *pluginHost) MCP(ctx context.Context, request []byte) ([]byte, error) {
	if h.mcp == nil {
		return nil, fmt.Errorf("%w: no upstream MCP servers are configured ([[mcp.servers]])", hostapi.ErrNoServer)
	}
	out, err := h.mcp(ctx, h.name, request)
	if errors.Is(err, ErrUnknownMCPServer) {
		return nil, fmt.Errorf("%w: %w", hostapi.ErrNoServer, err)
	}
	return out, err
}
