package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/porticohq/portico/core/internal/plugin"
	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/core/internal/webhook"
)

// Plugins is what the plugin collector reads at each scrape.
type Plugins interface {
	List() []plugin.Info
	LogLinesDropped() map[string]uint64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var (
	pluginInfo     = desc("plugin_info", "A loaded plugin: 1, with its version and status (active, disabled, failed, loading).", "plugin", "version", "status")
	pluginCalls    = desc("plugin_calls_total", "Calls into the plugin (skill calls, hook deliveries, middleware requests), since it was last loaded.", "plugin")
	pluginErrors   = desc("plugin_errors_total", "Calls that failed (traps, timeouts, busy pools, errors the guest returned), since it was last loaded.", "plugin")
	pluginInst     = desc("plugin_instances", "Instances in the plugin's pool (idle and busy).", "plugin")
	pluginMemory   = desc("plugin_memory_bytes", "Linear memory of the plugin's idle instances.", "plugin")
	pluginCode     = desc("plugin_compiled_bytes", "Executable memory of the plugin's compiled module (0 while let go; shared by plugins of the same module).", "plugin")
	pluginStarts   = desc("plugin_instantiations_total", "Instances the plugin started since it was last loaded.", "plugin")
	pluginDuration = desc("plugin_call_duration_seconds", "Time of one call into the plugin (guest time for middleware), in power-of-two buckets.", "plugin")
	pluginDropped  = desc("plugin_log_lines_dropped_total", "Log lines of the plugin dropped by log.plugin_lines_per_second.", "plugin")
	hookDelivered  = desc("plugin_hook_events_total", "Events handed to a hook plugin, by outcome (delivered, failed, dropped: its queue was full).", "plugin", "outcome")
)

type pluginCollector struct{ p Plugins }

// NewPluginCollector reads every plugin's counters at scrape time.
func NewPluginCollector(p Plugins) prometheus.Collector { return pluginCollector{p} }

func (c pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pluginInfo, pluginCalls, pluginErrors, pluginInst, pluginMemory, pluginCode, pluginStarts, pluginDuration, pluginDropped, hookDelivered} {
		ch <- d
	}
}

func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, i := range c.p.List() {
		s := i.Stats
		ch <- prometheus.MustNewConstMetric(pluginInfo, prometheus.GaugeValue, 1, i.Name, i.Version, string(i.Status))
		ch <- prometheus.MustNewConstMetric(pluginCalls, prometheus.CounterValue, float64(s.Calls), i.Name)
		ch <- prometheus.MustNewConstMetric(pluginErrors, prometheus.CounterValue, float64(s.Errors), i.Name)
		ch <- prometheus.MustNewConstMetric(pluginInst, prometheus.GaugeValue, float64(s.Instances), i.Name)
		ch <- prometheus.MustNewConstMetric(pluginMemory, prometheus.GaugeValue, float64(i.Memory.LinearMemoryBytes), i.Name)
		ch <- prometheus.MustNewConstMetric(pluginCode, prometheus.GaugeValue, float64(i.Memory.CompiledBytes), i.Name)
		ch <- prometheus.MustNewConstMetric(pluginStarts, prometheus.CounterValue, float64(s.Instantiations), i.Name)
		buckets := make(map[float64]uint64, len(s.Latency.Counts))
		var n uint64
		for b, cnt := range s.Latency.Counts {
			n += cnt
			buckets[s.Latency.Bound(b).Seconds()] = n
		}
		ch <- prometheus.MustNewConstHistogram(pluginDuration, n, s.Latency.Sum.Seconds(), buckets, i.Name)
		if h := i.Hooks; h != nil {
			ch <- prometheus.MustNewConstMetric(hookDelivered, prometheus.CounterValue, float64(h.Delivered), i.Name, "delivered")
			ch <- prometheus.MustNewConstMetric(hookDelivered, prometheus.CounterValue, float64(h.Failed), i.Name, "failed")
			ch <- prometheus.MustNewConstMetric(hookDelivered, prometheus.CounterValue, float64(h.Dropped), i.Name, "dropped")
		}
	}
	for name, n := range c.p.LogLinesDropped() {
		ch <- prometheus.MustNewConstMetric(pluginDropped, prometheus.CounterValue, float64(n), name)
	}
}

// Webhooks is what the webhook collector reads at each scrape.
type Webhooks interface{ Counters() webhook.Counters }

var (
	webhookAttempts = desc("webhook_attempts_total", "Outbound webhook delivery attempts, by outcome (delivered; retry: failed, will be retried; dead: failed its last attempt; other: the hook was deleted meanwhile, or the outcome could not be stored).", "outcome")
)

type webhookCollector struct{ w Webhooks }

// NewWebhookCollector reads the outbound webhook counters at scrape time.
func NewWebhookCollector(w Webhooks) prometheus.Collector { return webhookCollector{w} }

func (c webhookCollector) Describe(ch chan<- *prometheus.Desc) { ch <- webhookAttempts }

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.w.Counters()
	other := n.Attempts - n.Delivered - n.Retries - n.Dead
	for outcome, v := range map[string]uint64{"delivered": n.Delivered, "retry": n.Retries, "dead": n.Dead, "other": other} {
		ch <- prometheus.MustNewConstMetric(webhookAttempts, prometheus.CounterValue, float64(v), outcome)
	}
}

// Storage is what the storage collector reads at each scrape.
type Storage interface{ Size() store.Size }

var (
	storageDisk  = desc("storage_disk_bytes", "Bytes the database's files take on disk, by part (lsm: the tree and its manifest; vlog: the value log).", "part")
	storageCache = desc("storage_cache_bytes", "Bytes the store's caches hold now, by cache (block, index).", "cache")
)

type storageCollector struct{ s Storage }

// NewStorageCollector reads the store's size and caches at scrape time.
func NewStorageCollector(s Storage) prometheus.Collector { return storageCollector{s} }

func (c storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storageDisk
	ch <- storageCache
}

func (c storageCollector) Collect(ch chan<- prometheus.Metric) {
	sz := c.s.Size()
	ch <- prometheus.MustNewConstMetric(storageDisk, prometheus.GaugeValue, float64(sz.LSMBytes), "lsm")
	ch <- prometheus.MustNewConstMetric(storageDisk, prometheus.GaugeValue, float64(sz.VlogBytes), "vlog")
	ch <- prometheus.MustNewConstMetric(storageCache, prometheus.GaugeValue, float64(sz.BlockCacheBytes), "block")
	ch <- prometheus.MustNewConstMetric(storageCache, prometheus.GaugeValue, float64(sz.IndexCacheBytes), "index")
}
