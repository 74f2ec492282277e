package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/porticohq/portico/core/config"
	"github.com/porticohq/portico/core/internal/httpapi"
	"github.com/porticohq/portico/core/pack"
	"github.com/porticohq/portico/core/store"
	"github.com/porticohq/portico/hostapi"
)

// Route is a route tree a program embedding Portico mounts under a prefix,
// behind Portico's middleware, authentication (unless public) and rate
// limits; see httpapi.Mount.
type Route = httpapi.Mount

// Embed holds what a program embedding Portico adds to a gateway. The
// public package github.com/porticohq/portico wraps it; its zero value
// adds nothing.
type Embed struct {
	// Logger receives the gateway's logs instead of a handler on
	// LogOutput; log.level still filters them, log.format is ignored.
	Logger *slog.Logger
	// Store replaces the embedded Badger database; the gateway closes it
	// at Shutdown. nil opens Badger in data_dir.
	Store store.Store
	// Routes are mounted beside the API (httpapi.CheckMounts).
	Routes []Route
	// HostFuncs are added to the plugin runtime
	// (hostapi.Runtime.AddHostFuncs).
	HostFuncs []hostapi.HostFunc
	// Plugins are trees of plugin directories loaded beside the
	// first-party ones, whatever plugin.embedded says.
	Plugins []fs.FS
	// Packs are installed (or upgraded) when the gateway starts, after the
	// other plugins load and before it turns ready; a pack that does not
	// install fails Start.
	Packs []*pack.Pack
}

// installPacks installs the embedder's packs.
func (g *Gateway) installPacks(ctx context.Context) error {
	for _, p := range g.packs {
		info, err := g.plugins.InstallPack(ctx, p)
		if err != nil {
			return fmt.Errorf("install embedded pack %q: %w", p.Manifest.Name, err)
		}
		g.log.Info("embedded pack installed", "pack", info.Name, "version", info.Version)
	}
	return nil
}

// check validates what can be checked before anything is opened.
func (e Embed) check() error {
	return errors.Join(CheckRoutes(e.Routes), CheckHostFuncs(e.HostFuncs))
}

// CheckRoutes checks routes against each other and the API's own; errors
// wrap httpapi.ErrMount.
func CheckRoutes(routes []Route) error { return httpapi.CheckMounts(routes) }

// CheckHostFuncs checks host functions as the runtime will; errors wrap
// hostapi.ErrHostFunc.
func CheckHostFuncs(fns []hostapi.HostFunc) error { return hostapi.CheckHostFuncs(fns) }

// openStore returns the embedder's store or opens Badger in the data dir.
func (o Options) openStore(c *config.Config, log *slog.Logger) (store.Store, error) {
	if o.Store != nil {
		return o.Store, nil
	}
	return store.Open(c.DataDir, store.Options{MemTableBytes: c.Storage.MemTableBytes, CacheBytes: c.Storage.CacheBytes, Logger: log})
}

// leveled filters an embedder's handler by the live log.level.
type leveled struct {
	h     slog.Handler
	level *slog.LevelVar
}

func (l leveled) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.level.Level() && l.h.Enabled(ctx, lv)
}

func (l leveled) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l leveled) WithAttrs(attrs []slog.Attr) slog.Handler {
	return leveled{l.h.WithAttrs(attrs), l.level}
}

func (l leveled) WithGroup(name string) slog.Handler { return leveled{l.h.WithGroup(name), l.level} }
