package core

import (
	"github.com/porticohq/portico/core/internal/audit"
	"github.com/porticohq/portico/core/internal/auth"
	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
	logring "github.com/porticohq/portico/core/internal/logs"
	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/webhook"
)

// What the tests of package core_test reach inside a gateway; none of it
// is API.

func (g *Gateway) Config() *config.Manager  { return g.cfg }
func (g *Gateway) Bus() *events.Bus         { return g.bus }
func (g *Gateway) Store() store.Store       { return g.store }
func (g *Gateway) Audit() *audit.Trail      { return g.audit }
func (g *Gateway) RateLimitMode() string    { return g.limits.Mode() }
func (g *Gateway) Plugins() *plugin.Manager { return g.plugins }
func (g *Gateway) Hooks() *webhook.Service  { return g.hooks }
func (g *Gateway) Auth() *auth.Service      { return g.auth }
func (g *Gateway) Logs() *logring.Ring      { return g.ring }
func (g *Gateway) PartNames() []string      { return g.parts.names() }
func SetFailAt(name string)                 { testFailAt = name }
