package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/groupgate/groupgate/config"
)

// enqueueWarmup is how many unmeasured creates each writer sends first, to
// open its connection and create its buckets.
const enqueueWarmup = 2

// EnqueueResult is the latency of durable enqueues (HTTP creates answered
// 202 after the fsync) with many concurrent writers.
type EnqueueResult struct {
	Writers      int `json:"writers"`
	OpsPerWriter int `json:"opsPerWriter"`
	Tenants      int `json:"tenants"`
	// Ops is how many creates were measured, all answered 202.
	Ops        int     `json:"ops"`
	P50Ms      float64 `json:"p50Ms"`
	P90Ms      float64 `json:"p90Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	MeanMs     float64 `json:"meanMs"`
	Throughput float64 `json:"opsPerS"`
	// Paced is the same writers sending at a fixed aggregate rate the
	// machine can carry, so latency is not queueing for the CPU; nil if
	// not run.
	Paced  *PacedEnqueue `json:"paced,omitempty"`
	Checks []Check       `json:"checks"`
}

// PacedEnqueue is the latency of creates sent on a schedule (open loop):
// each is timed from when it was due, so a slow answer that delays the
// next request is not hidden.
type PacedEnqueue struct {
	RatePerS float64 `json:"ratePerS"`
	Ops      int     `json:"ops"`
	P50Ms    float64 `json:"p50Ms"`
	P90Ms    float64 `json:"p90Ms"`
	P99Ms    float64 `json:"p99Ms"`
	MaxMs    float64 `json:"maxMs"`
}

// enqueueTenant names tenant i of the enqueue phase.
func enqueueTenant(i int) string { return fmt.Sprintf("ENQ%02d", i) }

// enqueueWho is writer w's project.
func enqueueWho(o Options, w int) string {
	return enqueueTenant(w%o.EnqueueTenants) + "/" + fmt.Sprintf("W%02d", w)
}

// enqueueSpecs are the enqueue phase's tenants: their writers' projects, a
// group limit that fits every create, and an interval so long that nothing
// is dispatched during the phase, which measures the enqueue path alone.
func enqueueSpecs(o Options) []tenantSpec {
	specs := make([]tenantSpec, o.EnqueueTenants)
	perTenant := (o.Writers + o.EnqueueTenants - 1) / o.EnqueueTenants
	for i := range specs {
		specs[i] = tenantSpec{
			name: enqueueTenant(i), interval: time.Hour,
			groupLimit: perTenant * (2*o.EnqueueOps + enqueueWarmup),
		}
	}
	for w := range o.Writers {
		specs[w%o.EnqueueTenants].projects = append(specs[w%o.EnqueueTenants].projects, fmt.Sprintf("W%02d", w))
	}
	return specs
}

// runEnqueue has o.Writers clients each send o.EnqueueOps creates one
// after another, all at once, and reports the latency of each: from
// sending the request to reading the 202. Then, if o.EnqueueRate is set,
// the same writers send as many creates again on a schedule at that
// aggregate rate.
func runEnqueue(ctx context.Context, h *harness, o Options, progress func(string, ...any)) (*EnqueueResult, error) {
	for w := range o.Writers {
		for i := range enqueueWarmup {
			if _, err := h.create(ctx, enqueueWho(o, w), fmt.Sprintf("warm-%03d", i)); err != nil {
				return nil, fmt.Errorf("enqueue: warm up: %w", err)
			}
		}
	}
	all, elapsed, err := enqueueAll(ctx, h, o, "g", nil)
	if err != nil {
		return nil, err
	}
	d := summarize(all)
	r := &EnqueueResult{
		Writers: o.Writers, OpsPerWriter: o.EnqueueOps, Tenants: o.EnqueueTenants, Ops: len(all),
		P50Ms: ms(d.p50), P90Ms: ms(d.p90), P99Ms: ms(d.p99), MaxMs: ms(d.max), MeanMs: ms(d.mean),
		Throughput: float64(len(all)) / elapsed.Seconds(),
	}
	progress("enqueue: %d creates from %d writers: p50 %.2f ms, p99 %.2f ms", r.Ops, r.Writers, r.P50Ms, r.P99Ms)
	if o.Store == config.StorePostgres {
		// A commit to PostgreSQL is a network round trip and a WAL flush:
		// the target is throughput, and p99 when paced (issue 13).
		r.Checks = []Check{
			check(r.Throughput >= 1000, "enqueue >= 1000/s at %d writers on PostgreSQL (%.0f/s, p99 %.2f ms)", r.Writers, r.Throughput, r.P99Ms),
		}
	} else {
		r.Checks = []Check{
			check(r.P99Ms <= 2, "enqueue p99 <= 2 ms at %d writers (%.2f ms)", r.Writers, r.P99Ms),
		}
	}
	if o.EnqueueRate > 0 {
		// Writer w sends at start + w*period/writers + i*period.
		period := time.Duration(float64(o.Writers) / o.EnqueueRate * float64(time.Second))
		start := time.Now().Add(50 * time.Millisecond)
		due := func(w, i int) time.Time {
			return start.Add(time.Duration(w)*period/time.Duration(o.Writers) + time.Duration(i)*period)
		}
		all, _, err := enqueueAll(ctx, h, o, "p", due)
		if err != nil {
			return nil, err
		}
		d := summarize(all)
		r.Paced = &PacedEnqueue{
			RatePerS: o.EnqueueRate, Ops: len(all),
			P50Ms: ms(d.p50), P90Ms: ms(d.p90), P99Ms: ms(d.p99), MaxMs: ms(d.max),
		}
		progress("enqueue: %d creates paced at %.0f/s: p50 %.2f ms, p99 %.2f ms", len(all), o.EnqueueRate, r.Paced.P50Ms, r.Paced.P99Ms)
		if o.Store == config.StorePostgres {
			r.Checks = append(r.Checks, check(r.Paced.P99Ms <= 20, "enqueue paced at %.0f/s on PostgreSQL: p99 <= 20 ms (%.2f ms)", o.EnqueueRate, r.Paced.P99Ms))
		}
	}
	return r, nil
}

// enqueueAll has every writer send o.EnqueueOps creates (named prefix-i)
// and returns their latencies and the time they all took. With due nil the
// writers start together and send back to back, each timing a create from
// its send; otherwise writer w sends create i at due(w, i) and times it
// from then.
func enqueueAll(ctx context.Context, h *harness, o Options, prefix string, due func(w, i int) time.Time) ([]time.Duration, time.Duration, error) {
	lat := make([][]time.Duration, o.Writers)
	errs := make([]error, o.Writers)
	var ready, finished sync.WaitGroup
	start := make(chan struct{})
	for w := range o.Writers {
		ready.Add(1)
		finished.Go(func() {
			who := enqueueWho(o, w)
			lat[w] = make([]time.Duration, 0, o.EnqueueOps)
			ready.Done()
			<-start
			for i := range o.EnqueueOps {
				body := map[string]string{"name": fmt.Sprintf("%s-%05d", prefix, i), "description": "benchmark group"}
				t := time.Now()
				if due != nil {
					t = due(w, i)
					if wait := time.Until(t); wait > 0 {
						time.Sleep(wait)
					}
				}
				r, err := h.do(ctx, http.MethodPost, groupsPath(who), who, body)
				d := time.Since(t)
				if err == nil && r.status != http.StatusAccepted {
					err = fmt.Errorf("status %d: %s", r.status, r.body)
				}
				if err != nil {
					errs[w] = fmt.Errorf("enqueue: writer %s: create %d: %w", who, i, err)
					return
				}
				lat[w] = append(lat[w], d)
			}
		})
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	finished.Wait()
	elapsed := time.Since(t0)
	var all []time.Duration
	for w := range o.Writers {
		if errs[w] != nil {
			return nil, 0, errs[w]
		}
		all = append(all, lat[w]...)
	}
	return all, elapsed, nil
}
