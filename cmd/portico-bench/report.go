package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func (r *report) markdown(o options) string {
	var b strings.Builder
	mwFlag := ""
	if o.middleware != allMiddleware {
		mwFlag = " -middleware " + o.middleware
	}
	fmt.Fprintf(&b, "Measured %s on %s, %d cores, load generator on the same machine; `go run ./cmd/portico-bench -d %s -rounds %d -c %d -rate %d%s`.\n\n",
		r.date, r.cpuModel, r.cores, o.duration, o.rounds, o.conns, o.rate, mwFlag)
	base := r.closed[0]
	fmt.Fprintf(&b, "Closed loop (%d connections, %d interleaved rounds of %s):\n\n", o.conns, o.rounds, o.duration)
	b.WriteString("| scenario | req/s | vs bare chi | p50 ms | p99 ms | p99.9 ms | CPU µs/req | errors |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.closed {
		cpu := "n/a"
		if row.cpu >= 0 {
			cpu = fmt.Sprintf("%.1f", float64(row.cpu)/float64(time.Microsecond))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s | %s | %s | %s | %d |\n", row.name, row.res.rps(), row.res.rps()/base.res.rps(),
			ms(row.res.quantile(0.5)), ms(row.res.quantile(0.99)), ms(row.res.quantile(0.999)), cpu, row.res.errors)
	}
	ob := r.open[0]
	fmt.Fprintf(&b, "\nOpen loop (%d requests/s, latency from each request's scheduled send):\n\n", o.rate)
	b.WriteString("| scenario | p50 ms | p99 ms | p99.9 ms | p99 added over bare chi ms | errors |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.open {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", row.name, ms(row.res.quantile(0.5)), ms(row.res.quantile(0.99)), ms(row.res.quantile(0.999)),
			ms(row.res.quantile(0.99)-ob.res.quantile(0.99)), row.res.errors)
	}
	r.middlewareTable(&b, o)
	fmt.Fprintf(&b, "\nPlugin reload under load: %d reloads of echo while %d invokes ran: **%d failed**.\n\n", r.reloads, r.reloadReqs, r.reloadErrs)
	if r.reloadFirstErr != "" {
		fmt.Fprintf(&b, "First failure: %s\n\n", r.reloadFirstErr)
	}
	fmt.Fprintf(&b, "Start to ready with %d plugins (each the %.2f MB Go echo module): cold compilation cache %s ms, warm %s ms.\n",
		r.plugins, float64(r.moduleBytes)/1e6, ms(r.coldStart), ms(r.warmStart))
	if r.cold != nil {
		footprintTable(&b, r.cold, r.warm)
	}
	return b.String()
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// middlewareTable sets each middleware target beside the same server and
// route without middleware: throughput, CPU and open-loop p50, and what
// each middleware adds.
func (r *report) middlewareTable(b *strings.Builder, o options) {
	find := func(rows []row, name string) *row {
		for i := range rows {
			if rows[i].name == name {
				return &rows[i]
			}
		}
		return nil
	}
	var bases []string
	for _, row := range r.closed {
		if row.mw > 0 && !slices.Contains(bases, row.base) {
			bases = append(bases, row.base)
		}
	}
	if len(bases) == 0 {
		return
	}
	chi := r.closed[0]
	fmt.Fprintf(b, "\nMiddleware: the same GET with and without an http-wasm chain in front of it, from the runs above "+
		"(Portico: a `[[middleware.pre_auth]]` group on every path, `GET /health`; reference host: its net/http middleware in front of bare chi's `GET /hello`). "+
		"Added is the difference to the same server without middleware, divided by the number of middleware; p50 from the open loop at %d requests/s:\n\n", o.rate)
	b.WriteString("| target | req/s | vs bare chi | vs no middleware | CPU µs/req | added CPU µs per middleware | p50 ms (open) | added p50 µs per middleware |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	cpu := func(d time.Duration) string {
		if d < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f", us(d))
	}
	for _, name := range bases {
		base, baseOpen := find(r.closed, name), find(r.open, name)
		if base == nil {
			continue
		}
		line := func(row *row) {
			p50, added, addedP50 := "n/a", "—", "—"
			open := find(r.open, row.name)
			if open != nil {
				p50 = ms(open.res.quantile(0.5))
			}
			if row.mw > 0 {
				if row.cpu >= 0 && base.cpu >= 0 {
					added = fmt.Sprintf("%+.1f", us(row.cpu-base.cpu)/float64(row.mw))
				}
				if open != nil && baseOpen != nil {
					addedP50 = fmt.Sprintf("%+.0f", us(open.res.quantile(0.5)-baseOpen.res.quantile(0.5))/float64(row.mw))
				}
			}
			fmt.Fprintf(b, "| %s | %.0f | %.2f | %.2f | %s | %s | %s | %s |\n", row.name, row.res.rps(), row.res.rps()/chi.res.rps(),
				row.res.rps()/base.res.rps(), cpu(row.cpu), added, p50, addedP50)
		}
		line(base)
		for i := range r.closed {
			if r.closed[i].mw > 0 && r.closed[i].base == name {
				line(&r.closed[i])
			}
		}
	}
	if len(r.callTimes) > 0 {
		b.WriteString("\nEach Portico middleware's own p50 call time (both phases, from its stats in `GET /api/v1/plugins/NAME`, log-2 buckets: within a factor of two): " +
			strings.Join(r.callTimes, "; ") + ".\n")
	}
}

const (
	sectionBegin = "<!-- load:begin -->\n"
	sectionEnd   = "<!-- load:end -->"
)

// writeSection replaces the text between the load markers of a markdown
// file, adding the markers at the end if the file has none.
func writeSection(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceSection(b, table)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

func replaceSection(doc []byte, table string) ([]byte, error) {
	i, j := bytes.Index(doc, []byte(sectionBegin)), bytes.Index(doc, []byte(sectionEnd))
	if i < 0 && j < 0 {
		return append(append(append(doc, "\n"+sectionBegin...), table...), sectionEnd+"\n"...), nil
	}
	if i < 0 || j < i {
		return nil, fmt.Errorf("the %q and %q markers are out of order", sectionBegin, sectionEnd)
	}
	var out []byte
	out = append(out, doc[:i+len(sectionBegin)]...)
	out = append(out, table...)
	return append(out, doc[j:]...), nil
}
