package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func (r *report) markdown(o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, %d cores, load generator on the same machine; `go run ./cmd/portico-bench -d %s -rounds %d -c %d -rate %d`.\n\n",
		r.date, r.cpuModel, r.cores, o.duration, o.rounds, o.conns, o.rate)
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
	fmt.Fprintf(&b, "\nPlugin reload under load: %d reloads of echo while %d invokes ran: **%d failed**.\n\n", r.reloads, r.reloadReqs, r.reloadErrs)
	if r.reloadFirstErr != "" {
		fmt.Fprintf(&b, "First failure: %s\n\n", r.reloadFirstErr)
	}
	fmt.Fprintf(&b, "Start to ready with %d plugins (each the %.2f MB Go echo module): cold compilation cache %s ms, warm %s ms.\n",
		r.plugins, float64(r.moduleBytes)/1e6, ms(r.coldStart), ms(r.warmStart))
	return b.String()
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
