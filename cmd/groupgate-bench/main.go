// Command groupgate-bench measures the gateway under load, in one run: it
// starts the real server (server.New and Run, on a fresh store in a
// temporary directory) against a TechPass simulator on a loopback listener,
// and reports
//
//   - the upstream rate achieved under a standing backlog, the minimum
//     start-to-start gap, the most requests in flight and the violations;
//   - fairness: how long a small project waits behind a large one's flood;
//   - durable enqueue latency (p50/p99) with many concurrent writers;
//   - the throughput of the cached group list beside a bare Echo handler
//     serving the same bytes, driven the same way, and their ratio.
//
// Usage:
//
//	groupgate-bench [-quick] [-json] [-interval 1s] [-duration 60s] [-rate=false] ...
//
// -quick shortens every phase to a few seconds in all (a smoke test).
// Results, the command and the machine go in docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	m := NewMain(os.Stdout, os.Stderr)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "groupgate-bench:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	missed, err := m.Run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "groupgate-bench:", err)
		os.Exit(1)
	}
	if missed && m.Options.Strict {
		os.Exit(3)
	}
}
