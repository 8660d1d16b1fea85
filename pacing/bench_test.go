package pacing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/groupgate/groupgate/pacing"
)

// BenchmarkGateAcquire measures the gate's own cost: Acquire and release
// with no interval to wait for, from one caller and from many contending
// for the one slot.
func BenchmarkGateAcquire(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		g := pacing.NewGate(0, nil)
		for b.Loop() {
			release, err := g.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	b.Run("contended", func(b *testing.B) {
		g := pacing.NewGate(0, nil)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				release, err := g.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				release()
			}
		})
	})
}

// BenchmarkGatePacing measures how precisely the gate paces back-to-back
// requests at a 1 ms and a 10 ms interval: each iteration is one paced
// start. It reports the smallest gap (never below the interval) and how far
// the mean gap overshoots the interval, which is what the achieved rate
// loses to timer wake-up latency.
func BenchmarkGatePacing(b *testing.B) {
	ctx := context.Background()
	for _, interval := range []time.Duration{time.Millisecond, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("interval=%v", interval), func(b *testing.B) {
			g := pacing.NewGate(interval, nil)
			var prev time.Time
			minGap := time.Duration(1<<63 - 1)
			var sum time.Duration
			gaps := 0
			for b.Loop() {
				release, err := g.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				if !prev.IsZero() {
					gap := now.Sub(prev)
					minGap = min(minGap, gap)
					sum += gap
					gaps++
				}
				prev = now
				release()
			}
			if gaps == 0 {
				return
			}
			if minGap < interval {
				b.Errorf("gap %v below the interval %v", minGap, interval)
			}
			b.ReportMetric(float64(minGap)/float64(time.Microsecond), "min-gap-us")
			b.ReportMetric(float64(sum/time.Duration(gaps)-interval)/float64(time.Microsecond), "overshoot-us")
		})
	}
}
