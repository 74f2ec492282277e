package plugin

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/porticohq/portico/core/internal/config"
	"github.com/porticohq/portico/core/internal/events"
)

func TestHookDelivery(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	dir := filepath.Join(t.TempDir(), "audit-hook")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte("name = \"audit-hook\"\nversion = \"1.0.0\"\nkinds = [\"hook\"]\n[hooks]\nevents = [\"message.*\", \"session.created\"]\n[capabilities]\noptional = [\"kv\"]\n"), 0o600)
	wasm, _ := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "wasm", "hook.wasm"))
	os.WriteFile(filepath.Join(dir, "audit-hook.wasm"), wasm, 0o600)
	f.m.LoadAll(ctx, cfg(config.PluginEntry{Name: "audit-hook", Path: dir, Grants: []string{"kv"}}))
	if i, _ := f.m.Get("audit-hook"); i.Status != Active || i.Hooks == nil {
		t.Fatalf("hook plugin: %+v", i)
	}
	host := f.m.reg.Load().plugins["audit-hook"].host
	commits := &countingKV{KV: host.kv}
	host.kv = commits // before the events: their sends order this write before the runner's reads
	for i := range 50 {
		f.bus.Publish(events.Event{Type: "message.received", Data: map[string]int{"seq": i}})
	}
	f.bus.Publish(events.Event{Type: "config.reloaded", Data: "not subscribed"})
	f.bus.Publish(events.Event{Type: "session.created", Data: "s1"})
	get := func(k string) string {
		v, _ := f.st.Get(ctx, []byte(kvPrefix("audit-hook")+k))
		return string(v)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("session.created") == "" {
		if time.Now().After(deadline) {
			t.Fatal("events never delivered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Delivery is in order: session.created came last, so every message
	// before it was delivered, the last one last.
	if got := get("message.received"); got != `{"seq":49}` {
		t.Errorf("last message.received = %s", got)
	}
	if get("config.reloaded") != "" {
		t.Error("an event outside the subscriptions was delivered")
	}
	i, _ := f.m.Get("audit-hook")
	if i.Hooks.Delivered != 51 || i.Hooks.Failed != 0 {
		t.Errorf("hook stats %+v", i.Hooks)
	}
	// The 51 events, each a write, were queued together: their writes
	// were committed in a few transactions (runs), not one each.
	if n := commits.updates.Load(); n < 1 || n > 10 {
		t.Errorf("51 hook writes took %d transactions", n)
	}
	// Disable stops delivery; the goroutine ends.
	if err := f.m.Disable(ctx, "audit-hook"); err != nil {
		t.Fatal(err)
	}
	f.bus.Publish(events.Event{Type: "message.sent", Data: 1})
	time.Sleep(20 * time.Millisecond)
	if get("message.sent") != "" {
		t.Error("a disabled hook received an event")
	}
	if s := f.bus.Stats(); s.Subscribers != 0 {
		t.Errorf("%d subscriptions left after disable", s.Subscribers)
	}
}

func TestHookManifest(t *testing.T) {
	for _, m := range []string{
		"name = \"h\"\nversion = \"1.0.0\"\nkinds = [\"hook\"]\n",
		"name = \"h\"\nversion = \"1.0.0\"\nkinds = [\"hook\"]\n[hooks]\nevents = [\"a..b\"]\n",
	} {
		if _, err := ParseManifest([]byte(m)); err == nil {
			t.Errorf("accepted %q", m)
		}
	}
}
