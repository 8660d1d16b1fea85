package pgstore_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
)

// BenchmarkCreatePending measures what a POST create commits on
// PostgreSQL (groups.Ledger.CreatePending: the idempotency check, the
// queue limits, the group limit and name check, the group and the queued
// operation with its idempotency key, in one Update), with 1 and 64
// writers on a pool of 16 connections, and reports each call's latency
// percentiles. Each writer has its own tenant, filled up to the default
// group limit (50) and then replaced by a fresh one, so writers contend
// for connections and the database, not for a tenant's lock.
//
// The test cluster runs with fsync off (internal/pgtest), so this measures
// the store's statements and round trips, not a disk's flush.
func BenchmarkCreatePending(b *testing.B) {
	const groupLimit = 50
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st, err := pgstore.Open(b.Context(), pgstore.Config{DSN: pgtest.DSN(b), MaxConns: 16})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(st.Close)
			ledger := groups.NewLedger(st)
			limits := groups.Limits{Groups: groupLimit, Queue: queue.Limits{Tenant: 10000, Project: 1000}}
			counts := make([]int, writers+runtime.GOMAXPROCS(0))
			runWriters(b, writers, func(ctx context.Context, writer int) error {
				i := counts[writer]
				counts[writer]++
				name := groups.Name{Tenant: fmt.Sprintf("W%02dN%06d", writer, i/groupLimit), Project: "MOH", Group: fmt.Sprintf("team-%02d", i%groupLimit)}
				now := time.Now()
				op := queue.Operation{
					ID: queue.NewID(), Tenant: name.Tenant, Project: name.Project, Kind: groups.KindCreate,
					Target: name.String(), Payload: []byte(`{"fullName":"` + name.String() + `","description":"Staff who can issue and void invoices."}`),
					Actor: "key:0123456789abcdef0123", State: queue.Queued, CreatedAt: now, UpdatedAt: now,
					Idempotency: &queue.Idempotency{Scope: "key:0123456789abcdef0123", Key: idemKey(writer, i), Fingerprint: "f", Expires: now.Add(24 * time.Hour)},
				}
				g := groups.Group{Name: name, Description: "bench", State: groups.Creating, PendingOperation: op.ID, CreatedAt: now, UpdatedAt: now}
				_, err := ledger.CreatePending(ctx, g, op, limits)
				return err
			})
		})
	}
}

func idemKey(writer, i int) string { return fmt.Sprintf("bench-%02d-%07d", writer, i) }

// runWriters runs fn b.N times in all from writers goroutines and reports
// the p50, p99 and max latency of the calls in microseconds (as
// boltstore's benchmarks do).
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
