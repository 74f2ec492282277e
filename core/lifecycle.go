package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/porticohq/portico/core/internal/config"
)

// Every service of the gateway has one life: New builds it from the
// configuration, in dependency order, and pushes it on the gateway's stack
// of parts; each applied configuration is handed to every part that takes
// one, in that order; Shutdown (or a New that fails half way) closes the
// parts in reverse order. A part is anything with Close; it takes
// configurations if it has Apply; it has one or both.
type closer interface {
	Close(ctx context.Context) error
}

// applier is a part that takes the live keys of a new configuration; an
// error keeps that part's previous settings and is logged.
type applier interface {
	Apply(ctx context.Context, c *config.Config) error
}

// closeFunc makes a part of a function.
type closeFunc func(ctx context.Context) error

func (f closeFunc) Close(ctx context.Context) error { return f(ctx) }

// part is one entry of the stack: a closer, an applier or both.
type part struct {
	name string
	c    any
}

// parts is the stack of what New built.
type parts struct {
	list []part
	// failAt, when set (by a test), makes add fail at the part of that name,
	// as if building it had failed.
	failAt string
}

// errInjected is the failure a test injects with failAt.
var errInjected = errors.New("injected failure")

// add pushes c, a closer or an applier, under name. It returns an error
// only when a test injects one at this part (the part is pushed first, so
// it is closed too).
func (p *parts) add(name string, c any) error {
	_, isCloser := c.(closer)
	_, isApplier := c.(applier)
	if !isCloser && !isApplier {
		panic(fmt.Sprintf("core: part %s has neither Close nor Apply", name))
	}
	p.list = append(p.list, part{name, c})
	if p.failAt == name {
		return fmt.Errorf("%s: %w", name, errInjected)
	}
	return nil
}

// apply hands c to every part that takes configurations, in order, and
// returns what failed, each error naming its part.
func (p *parts) apply(ctx context.Context, c *config.Config) error {
	var errs []error
	for _, pt := range p.list {
		if a, ok := pt.c.(applier); ok {
			if err := a.Apply(ctx, c); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", pt.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// close closes every part in reverse order and empties the stack; a part
// that fails does not stop the others.
func (p *parts) close(ctx context.Context) error {
	var errs []error
	for i := len(p.list) - 1; i >= 0; i-- {
		if c, ok := p.list[i].c.(closer); ok {
			if err := c.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", p.list[i].name, err))
			}
		}
	}
	p.list = nil
	return errors.Join(errs...)
}

// names lists the parts in the order they were built.
func (p *parts) names() []string {
	out := make([]string, len(p.list))
	for i, pt := range p.list {
		out[i] = pt.name
	}
	return out
}
