package logs

import (
	"context"
	"log/slog"
	"strings"
)

// preset is what a logger's With and WithGroup calls added: attributes
// (qualified by the groups open when they were added) and the groups open
// now.
type preset struct {
	attrs     []slog.Attr
	prefix    string // "g1.g2." for the groups open
	module    string
	plugin    string
	requestID string
	sessionID string
}

// Handler tees records into a Ring and on to another handler (the process
// output). It adds the request id and session id of the record's context
// to lines that do not carry them already.
type Handler struct {
	next slog.Handler
	ring *Ring
	pre  *preset
}

// NewHandler returns a handler that stores into ring what next is enabled
// for, and passes everything on to next.
func NewHandler(next slog.Handler, ring *Ring) *Handler {
	return &Handler{next: next, ring: ring, pre: &preset{}}
}

// Enabled reports whether next is enabled for level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle stores r and passes it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	it := item{pre: h.pre, module: h.pre.module, plugin: h.pre.plugin, requestID: h.pre.requestID, sessionID: h.pre.sessionID}
	if h.pre.prefix == "" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Value.Kind() == slog.KindString {
				switch a.Key {
				case KeyModule:
					it.module = a.Value.String()
				case KeyPlugin:
					it.plugin = a.Value.String()
				case KeyRequestID:
					it.requestID = a.Value.String()
				case KeySessionID:
					it.sessionID = a.Value.String()
				}
			}
			return true
		})
	}
	if it.requestID == "" {
		if it.requestID = RequestID(ctx); it.requestID != "" {
			r.AddAttrs(slog.String(KeyRequestID, it.requestID))
		}
	}
	if it.sessionID == "" {
		if it.sessionID = SessionID(ctx); it.sessionID != "" {
			r.AddAttrs(slog.String(KeySessionID, it.sessionID))
		}
	}
	if it.module == "" {
		it.module = "gateway"
		if it.plugin != "" {
			it.module = "plugin"
		}
	}
	it.rec = r.Clone()
	h.ring.add(it)
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler whose lines carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	p := *h.pre
	p.attrs = make([]slog.Attr, 0, len(h.pre.attrs)+len(attrs))
	p.attrs = append(p.attrs, h.pre.attrs...)
	for _, a := range attrs {
		if p.prefix != "" {
			a.Key = p.prefix + a.Key
		} else if a.Value.Kind() == slog.KindString {
			switch a.Key {
			case KeyModule:
				p.module = a.Value.String()
			case KeyPlugin:
				p.plugin = a.Value.String()
			case KeyRequestID:
				p.requestID = a.Value.String()
			case KeySessionID:
				p.sessionID = a.Value.String()
			}
		}
		p.attrs = append(p.attrs, a)
	}
	return &Handler{next: h.next.WithAttrs(attrs), ring: h.ring, pre: &p}
}

// WithGroup returns a handler whose later attributes are in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	p := *h.pre
	p.prefix = h.pre.prefix + strings.TrimSuffix(name, ".") + "."
	return &Handler{next: h.next.WithGroup(name), ring: h.ring, pre: &p}
}

var _ slog.Handler = (*Handler)(nil)
