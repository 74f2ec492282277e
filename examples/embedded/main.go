// Command embedded is a program that embeds the Portico gateway: it carries
// its own skill pack (pack/, with go:embed) and configuration
// (portico.toml), gives the pack's plugin a host function of its own
// (acme.stock, a stock lookup in the program's memory), adds a route of its
// own (GET /acme/stock/{item}, for any user key), and serves until
// interrupted.
//
//	go run ./examples/embedded -set data_dir=/tmp/acme
//	curl -s -H "X-API-Key: $(cat /tmp/acme/admin.key)" -X POST \
//	    localhost:3120/api/v1/skills/stock/invoke -d '{"input":"apples"}'
//
// docs/embedding.md walks through it.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-chi/chi/v5"

	"github.com/porticohq/portico/core"
)

// packFiles is the acme skill pack: pack.toml and one plugin directory.
//
//go:embed pack
var packFiles embed.FS

// defaults is the program's configuration, under any file, environment and
// flags.
//
//go:embed portico.toml
var defaults []byte

// Inventory is the program's own state, which plugins reach only through
// the acme.stock host function.
type Inventory struct{ stock map[string]int }

// NewInventory returns an inventory with a few items.
func NewInventory() *Inventory {
	return &Inventory{stock: map[string]int{"apples": 12, "pears": 0, "plums": 40}}
}

// Count returns how many of item are in stock; an unknown item is
// core.ErrNotFound.
func (inv *Inventory) Count(item string) (int, error) {
	n, ok := inv.stock[item]
	if !ok {
		return 0, fmt.Errorf("no item %q: %w", item, core.ErrNotFound)
	}
	return n, nil
}

type stockReply struct {
	Item  string `json:"item"`
	Count int    `json:"count"`
}

// stockFunc is the acme.stock host function: a JSON string in, a JSON
// object out.
func (inv *Inventory) stockFunc(ctx context.Context, in []byte) ([]byte, error) {
	var item string
	if err := json.Unmarshal(in, &item); err != nil {
		return nil, fmt.Errorf("want the item's name as a JSON string: %w", err)
	}
	n, err := inv.Count(item)
	if err != nil {
		return nil, err
	}
	return json.Marshal(stockReply{Item: item, Count: n})
}

// routes is the program's own HTTP API, mounted at /acme.
func (inv *Inventory) routes() http.Handler {
	r := chi.NewRouter()
	r.Get("/stock/{item}", func(w http.ResponseWriter, r *http.Request) {
		item := chi.URLParam(r, "item")
		n, err := inv.Count(item)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(stockReply{Item: item, Count: n})
	})
	return r
}

// options builds the gateway's options: the embedded configuration and
// pack, the host function and the route. settings override the
// configuration ("data_dir", "listen", ...).
func options(inv *Inventory, settings map[string]string, logger *slog.Logger) (core.Options, error) {
	pack, err := fs.Sub(packFiles, "pack")
	if err != nil {
		return core.Options{}, err
	}
	return core.Options{
		Config:   defaults,
		Settings: settings,
		Environ:  os.Environ(), // PORTICO_* variables work as for the portico binary
		Logger:   logger,
		Plugins:  []fs.FS{pack},
		HostFuncs: []core.HostFunc{
			{Module: "acme", Name: "stock", Capability: "acme.stock", Fn: inv.stockFunc},
		},
		Routes: []core.Route{
			{Prefix: "/acme", Role: core.RoleUser, Handler: inv.routes()},
		},
	}, nil
}

// setFlags collects repeated -set key=value flags.
type setFlags map[string]string

func (s setFlags) String() string { return fmt.Sprint(map[string]string(s)) }

func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want key=value, e.g. log.level=debug")
	}
	s[k] = val
	return nil
}

func main() {
	settings := setFlags{}
	flag.Var(settings, "set", "a configuration key=value (repeatable), e.g. -set listen=127.0.0.1:8080")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := run(settings, logger); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(settings map[string]string, logger *slog.Logger) error {
	opts, err := options(NewInventory(), settings, logger)
	if err != nil {
		return err
	}
	gw, err := core.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return gw.Run(ctx)
}
