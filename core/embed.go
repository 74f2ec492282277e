package core

import (
	"context"
	"fmt"
	"log/slog"
)

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
