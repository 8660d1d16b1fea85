package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole benchmark in -quick mode against the real
// server and simulator and checks that the report is sane: the pacing
// invariants hold (no violation, never two requests in flight, no gap under
// the interval) and every phase measured something. Performance targets
// are not checked: they belong to a quiet machine, not a -race test run.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark for several seconds")
	}
	r, stdout := quickRun(t, 3*time.Minute, "-quick", "-json")
	if r.Rate == nil || r.Fairness == nil || r.Enqueue == nil || r.List == nil {
		t.Fatalf("a phase is missing from the report:\n%s", stdout)
	}

	rate := r.Rate
	if rate.IntervalMs != 100 {
		t.Errorf("quick interval %v ms, want 100", rate.IntervalMs)
	}
	if rate.Violations != 0 {
		t.Errorf("%d violations, want 0", rate.Violations)
	}
	if rate.MaxInFlight != 1 {
		t.Errorf("max in flight %d, want 1", rate.MaxInFlight)
	}
	if rate.MinGapMs < rate.IntervalMs || rate.GapsBelowInterval != 0 {
		t.Errorf("min gap %.3f ms (%d gaps below the interval), want >= %v ms", rate.MinGapMs, rate.GapsBelowInterval, rate.IntervalMs)
	}
	if rate.Requests < 5 || rate.RateRatio <= 0.5 || rate.RateRatio > 1 {
		t.Errorf("%d requests at %.4f of the limit: not a sane rate under a backlog", rate.Requests, rate.RateRatio)
	}
	if l := rate.Lateness; l == nil || l.Count < uint64(rate.Requests) || l.P50Ms <= 0 || l.P999Ms < l.P50Ms {
		t.Errorf("start lateness %+v: want an observation per upstream request (%d in the window alone)", l, rate.Requests)
	}
	if rate.SlackMinMs > rate.SlackP001Ms || rate.SlackP001Ms > rate.SlackP01Ms || rate.SlackP01Ms > rate.GapP50Ms-rate.IntervalMs {
		t.Errorf("slack min %v, p0.1 %v, p1 %v ms (median gap %v ms): not ordered", rate.SlackMinMs, rate.SlackP001Ms, rate.SlackP01Ms, rate.GapP50Ms)
	}
	if rate.BacklogMin < 1 {
		t.Errorf("backlog fell to %d: the queue ran dry", rate.BacklogMin)
	}

	f := r.Fairness
	if len(f.SmallDoneIntervals) != f.SmallOps || f.AllDoneIntervals <= 0 {
		t.Errorf("fairness: %d waits for %d operations, all done at %v intervals", len(f.SmallDoneIntervals), f.SmallOps, f.AllDoneIntervals)
	}

	e := r.Enqueue
	if e.Ops != e.Writers*e.OpsPerWriter || e.Writers != 64 {
		t.Errorf("enqueue: %d creates measured, want %d x %d with 64 writers", e.Ops, e.Writers, e.OpsPerWriter)
	}
	if e.P50Ms <= 0 || e.P99Ms < e.P50Ms || e.MaxMs < e.P99Ms || e.Throughput <= 0 {
		t.Errorf("enqueue: p50 %v, p99 %v, max %v ms, %v/s: not sane", e.P50Ms, e.P99Ms, e.MaxMs, e.Throughput)
	}

	l := r.List
	if l.CachedRPS <= 0 || l.BareRPS <= 0 || l.Ratio <= 0 || l.Ratio > 10 || l.BodyBytes == 0 {
		t.Errorf("list: cached %v/s, bare %v/s, ratio %v, %d bytes: not sane", l.CachedRPS, l.BareRPS, l.Ratio, l.BodyBytes)
	}
	if l.CachedErrors != 0 || l.BareErrors != 0 {
		t.Errorf("list: %d cached and %d bare requests failed", l.CachedErrors, l.BareErrors)
	}

	var text bytes.Buffer
	r.WriteText(&text)
	for _, want := range []string{"achieved rate", "Fairness", "Durable enqueue", "Cached list vs bare Echo", "Targets"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags([]string{"-quick", "-duration", "2s"}); err != nil {
		t.Fatal(err)
	}
	if m.Options.Duration != 2*time.Second || m.Options.Interval != 100*time.Millisecond {
		t.Errorf("-quick -duration 2s: duration %v, interval %v; want 2s (given) and 100ms (quick)", m.Options.Duration, m.Options.Interval)
	}
	full := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := full.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if full.Options.Duration != 60*time.Second || full.Options.Interval != time.Second || full.Options.Writers != 64 {
		t.Errorf("defaults: %+v", full.Options)
	}
	pg := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := pg.ParseFlags([]string{"-store", "postgres", "-replicas", "3"}); err != nil {
		t.Fatal(err)
	}
	if pg.Options.EnqueueRate != 200 || pg.Options.Replicas != 3 || pg.Options.EnqueueOps != postgresEnqueueOps || pg.Options.MaxConns != 0 {
		t.Errorf("-store postgres: enqueue rate %v, replicas %d, enqueue ops %d, max conns %d; want 200 (PostgreSQL's paced target), 3, %d and 0",
			pg.Options.EnqueueRate, pg.Options.Replicas, pg.Options.EnqueueOps, pg.Options.MaxConns, postgresEnqueueOps)
	}
	given := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := given.ParseFlags([]string{"-store", "postgres", "-enqueue-ops", "30", "-max-conns", "4"}); err != nil {
		t.Fatal(err)
	}
	if given.Options.EnqueueOps != 30 || given.Options.MaxConns != 4 {
		t.Errorf("-store postgres -enqueue-ops 30 -max-conns 4: %d ops, %d conns", given.Options.EnqueueOps, given.Options.MaxConns)
	}
	for _, bad := range [][]string{
		{"-interval", "0"}, {"-writers", "0"}, {"-enqueue-ops", "500"}, {"extra"},
		{"-store", "sqlite"}, {"-replicas", "2"}, {"-store", "postgres", "-replicas", "0"}, {"-postgres-dsn", "postgres://x@y/z"},
		{"-max-conns", "4"}, {"-store", "postgres", "-max-conns", "-1"},
	} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		if err := m.ParseFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// quickRun runs the benchmark with args within limit and returns its JSON
// report, decoded, and as printed.
func quickRun(t *testing.T, limit time.Duration, args ...string) (Report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := NewMain(&stdout, &stderr)
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if _, err := m.Run(ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode report: %v\n%s", err, stdout.String())
	}
	return r, stdout.String()
}
