package boltstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// benchBacklog bounds the operations one tenant holds pending during an
// enqueue benchmark: the benchmark moves on to a fresh tenant after it, so
// ns/op does not drift with b.N. It is the default per-project queue limit.
const benchBacklog = 1000

// BenchmarkEnqueue measures durable enqueues (Store.Enqueue: one fsynced
// group commit per batch of concurrent writers) through a real store file,
// with 1 and 64 writers, and reports each call's latency percentiles.
// Every writer is its own project of one tenant; the tenant changes every
// benchBacklog operations (see there).
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := openBenchStore(b)
			limits := queue.Limits{Tenant: 10000, Project: benchBacklog}
			var seq atomic.Int64
			runWriters(b, writers, func(ctx context.Context, writer int) error {
				n := seq.Add(1)
				_, err := groups.NewLedger(st).Enqueue(ctx, benchOperation(n, writer), limits)
				return err
			})
		})
	}
}

// BenchmarkCreatePending is BenchmarkEnqueue for what a POST create
// commits: the operation and the group's mirror record together, after the
// namespace group limit check. Each writer fills its own namespace up to
// the default limit (50 groups), then moves to a fresh one.
func BenchmarkCreatePending(b *testing.B) {
	const groupLimit = 50
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := openBenchStore(b)
			limits := groups.Limits{Groups: groupLimit, Queue: queue.Limits{Tenant: 10000, Project: 1000}}
			counts := make([]int, writers+runtime.GOMAXPROCS(0))
			runWriters(b, writers, func(ctx context.Context, writer int) error {
				i := counts[writer]
				counts[writer]++
				name := groups.Name{
					Tenant:  fmt.Sprintf("W%02dN%06d", writer, i/groupLimit),
					Project: "MOH",
					Group:   fmt.Sprintf("team-%02d", i%groupLimit),
				}
				now := time.Now()
				op := benchOperation(int64(i), writer)
				op.Tenant, op.Project, op.Target = name.Tenant, name.Project, name.String()
				g := groups.Group{Name: name, Description: "bench", State: groups.Creating, PendingOperation: op.ID, CreatedAt: now, UpdatedAt: now}
				_, err := groups.NewLedger(st).CreatePending(ctx, g, op, limits)
				return err
			})
		})
	}
}

// runWriters runs fn b.N times in all from writers goroutines and reports
// the p50, p99 and max latency of the calls in microseconds. Each goroutine
// has its own writer index, so fn may keep per-writer state without locks.
// RunParallel starts a multiple of GOMAXPROCS goroutines, so writers is
// rounded up to one; a single writer runs in the benchmark's goroutine.
func runWriters(b *testing.B, writers int, fn func(ctx context.Context, writer int) error) {
	b.Helper()
	ctx := context.Background()
	var (
		mu     sync.Mutex
		all    []time.Duration
		failed atomic.Value
	)
	measure := func(writer int, next func() bool) {
		var lat []time.Duration
		for next() {
			t := time.Now()
			if err := fn(ctx, writer); err != nil {
				failed.CompareAndSwap(nil, err)
				return
			}
			lat = append(lat, time.Since(t))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	}
	b.ResetTimer()
	if writers == 1 {
		i := 0
		measure(0, func() bool { i++; return i <= b.N })
	} else {
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((writers + procs - 1) / procs)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			measure(int(next.Add(1)-1), pb.Next)
		})
	}
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	at := func(p int) float64 {
		i := max((p*len(all)+99)/100-1, 0)
		return float64(all[i]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(50), "p50-us")
	b.ReportMetric(at(99), "p99-us")
	b.ReportMetric(float64(all[len(all)-1])/float64(time.Microsecond), "max-us")
}

// benchOperation is the n-th group create of writer, shaped like the ones
// the API queues.
func benchOperation(n int64, writer int) queue.Operation {
	tenant := fmt.Sprintf("T%04d", n/benchBacklog)
	project := fmt.Sprintf("P%02d", writer)
	target := fmt.Sprintf("%s:%s:group-%07d", tenant, project, n)
	payload, _ := json.Marshal(map[string]string{"fullName": target, "description": "Staff who can issue and void invoices."})
	now := time.Now()
	return queue.Operation{
		ID: queue.NewID(), Tenant: tenant, Project: project, Kind: "group.create",
		Target: target, Payload: payload, Actor: "key:0123456789abcdef0123", State: queue.Queued,
		CreatedAt: now, UpdatedAt: now,
	}
}

// openBenchStore opens a store in b.TempDir(), closing it and checking its
// integrity at the end.
func openBenchStore(b *testing.B) *boltstore.Store {
	b.Helper()
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := st.Check(); err != nil {
			b.Errorf("store integrity: %v", err)
		}
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})
	return st
}
