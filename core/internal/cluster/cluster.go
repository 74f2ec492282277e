// Package cluster is what gateway nodes sharing one store know of each
// other: each node writes a heartbeat record (its id, address, version,
// start time and plugin set) into the store every heartbeat interval, and
// any node lists them all (GET /api/v1/cluster). On Badger the one node
// lists itself.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/porticohq/portico/core/internal/store"
)

// Node is one gateway node as it last reported itself.
type Node struct {
	ID          string    `json:"id"`
	Address     string    `json:"address"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// PluginsDigest is a SHA-256 over the node's plugins (name, version
	// and module digest, sorted): nodes that run the same plugins
	// show the same digest.
	PluginsDigest string `json:"plugins_digest"`
	Plugins       int    `json:"plugins"`
	// Up is false once the node has missed three heartbeats.
	Up bool `json:"up"`
	// This marks the node that answered.
	This bool `json:"this"`
}

// Registry writes this node's heartbeats and lists every node's.
type Registry struct {
	kv      store.KV
	self    Node
	every   func() time.Duration
	plugins func() (digest string, n int)
	now     func() time.Time
	log     *slog.Logger
}

// Options configure a Registry.
type Options struct {
	Version string
	// Every is the heartbeat interval, read at each beat (live config).
	Every func() time.Duration
	// Plugins reports the node's plugin set digest and count.
	Plugins func() (digest string, n int)
	Logger  *slog.Logger
}

// New returns the registry of a node starting now, with an id of its own.
func New(kv store.KV, o Options) *Registry {
	var b [8]byte
	rand.Read(b[:])
	r := &Registry{kv: store.Prefix(kv, "cluster/nodes/"), every: o.Every, plugins: o.Plugins, now: time.Now, log: o.Logger,
		self: Node{ID: "node_" + hex.EncodeToString(b[:]), Version: o.Version, StartedAt: time.Now().UTC()}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// SetAddress records where the node serves, once its listener is bound;
// call it before Beat and Run.
func (r *Registry) SetAddress(addr string) { r.self.Address = addr }

// ID is this node's id.
func (r *Registry) ID() string { return r.self.ID }

// Beat writes this node's record now.
func (r *Registry) Beat(ctx context.Context) error {
	n := r.self
	n.HeartbeatAt = r.now().UTC()
	if r.plugins != nil {
		n.PluginsDigest, n.Plugins = r.plugins()
	}
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return r.kv.Set(ctx, []byte(n.ID), b)
}

// forgetAfter is how many heartbeat intervals a silent node's record is
// kept, listed as down, before any node's heartbeat deletes it.
const forgetAfter = 100

// Run beats every interval until ctx ends, deleting the records of nodes
// silent for forgetAfter intervals; at the end it deletes its own record
// (a node that leaves cleanly is not listed as down).
func (r *Registry) Run(ctx context.Context) {
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.kv.Delete(ctx, []byte(r.self.ID)); err != nil {
			r.log.Warn("node record not removed", "node", r.self.ID, "error", err)
		}
	}()
	for {
		if err := r.Beat(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("heartbeat not written", "node", r.self.ID, "error", err)
		}
		if nodes, err := r.List(ctx); err == nil {
			for _, n := range nodes {
				if r.now().Sub(n.HeartbeatAt) > forgetAfter*r.every() {
					r.kv.Delete(ctx, []byte(n.ID))
				}
			}
		}
		t := time.NewTimer(r.every())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// List returns every node's record, this node first, then by start time.
func (r *Registry) List(ctx context.Context) ([]Node, error) {
	var out []Node
	err := r.kv.Scan(ctx, nil, store.ScanOptions{}, func(k, v []byte) error {
		var n Node
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("cluster: node record %s: %w", k, err)
		}
		n.Up = r.now().Sub(n.HeartbeatAt) <= 3*r.every()
		n.This = n.ID == r.self.ID
		out = append(out, n)
		return nil
	})
	slices.SortFunc(out, func(a, b Node) int {
		switch {
		case a.This != b.This:
			if a.This {
				return -1
			}
			return 1
		case !a.StartedAt.Equal(b.StartedAt):
			return a.StartedAt.Compare(b.StartedAt)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}
