// Command portico-bench is the load benchmark: it starts bare chi and
// Portico as their own processes on loopback, drives them with the same
// keep-alive load in interleaved rounds, and prints throughput, latency
// percentiles, CPU per request and each scenario's ratio to bare chi.
//
//	go run ./cmd/portico-bench                 # print the table
//	go run ./cmd/portico-bench -write docs/benchmarks.md
//	go tool task bench                         # the same, writing the docs
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	duration      time.Duration
	rounds        int
	conns         int
	rate          int
	portico       string
	footprintOnly bool
	write         string
	cpuProfile    string
	memProfile    string
	reloads       int
	middleware    string
	postgres      string
}

func main() {
	if ok, err := subcommand(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.DurationVar(&o.duration, "d", 3*time.Second, "length of one measured run")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (A B A B ...) per scenario")
	flag.IntVar(&o.conns, "c", 32, "connections (closed loop)")
	flag.IntVar(&o.rate, "rate", 1000, "requests per second (open loop)")
	flag.StringVar(&o.portico, "portico", "", "portico binary to test (default: build ./cmd/portico)")
	flag.StringVar(&o.write, "write", "", "rewrite the results section of this markdown file (docs/benchmarks.md)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write Portico's CPU profile of the throughput runs to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write Portico's allocation profile to this file")
	flag.IntVar(&o.reloads, "reloads", 20, "plugin reloads during the reload-under-load run")
	flag.StringVar(&o.middleware, "middleware", allMiddleware, "middleware targets to measure beside bare chi (GET /health on Portico, GET /hello on the reference host), comma-separated, or none")
	flag.StringVar(&o.postgres, "postgres", "", "a PostgreSQL server's URL (a user that may CREATE DATABASE): also measure the GET, the invoke and the turn with storage.backend = \"postgres\" on a new database there")
	flag.BoolVar(&o.footprintOnly, "footprint", false, "measure only the footprint (start times, resident memory, first calls) and print it")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "portico-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	work, err := os.MkdirTemp("", "portico-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.portico == "" {
		o.portico = filepath.Join(work, "portico")
		fmt.Fprintln(os.Stderr, "building portico...")
		b := exec.Command("go", "build", "-o", o.portico, "./cmd/portico")
		b.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := b.CombinedOutput(); err != nil {
			return fmt.Errorf("build portico (run from the repository root): %v\n%s", err, out)
		}
	}
	if o.footprintOnly {
		cold, warm, err := measureFootprint(ctx, o, work)
		if err != nil {
			return err
		}
		var b strings.Builder
		footprintTable(&b, cold, warm)
		fmt.Print(b.String())
		return nil
	}
	rep, err := measure(ctx, o, work)
	if err != nil {
		return err
	}
	table := rep.markdown(o)
	fmt.Print(table)
	if o.write != "" {
		return writeSection(o.write, table)
	}
	return nil
}
