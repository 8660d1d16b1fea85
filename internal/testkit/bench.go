package testkit

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RunWriters runs fn b.N times in all from writers goroutines and reports
// the p50, p99 and max latency of the calls in microseconds. Each goroutine
// has its own writer index, so fn may keep per-writer state without locks
// in a slice of writers+GOMAXPROCS entries. RunParallel starts a multiple
// of GOMAXPROCS goroutines, so writers is rounded up to one; a single
// writer runs in the benchmark's goroutine. The first error fails b.
func RunWriters(b *testing.B, writers int, fn func(ctx context.Context, writer int) error) {
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
