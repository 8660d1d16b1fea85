package pacing_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/pacing"
)

// TestDelay walks fixed timelines through the pacing arithmetic.
func TestDelay(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var never time.Time
	tests := []struct {
		name            string
		now, last, hold time.Time
		interval        time.Duration
		want            time.Duration
	}{
		{"first request goes at once", at(0), never, never, time.Second, 0},
		{"right after a start waits the whole interval", at(0), at(0), never, time.Second, time.Second},
		{"part-way waits the rest", at(400), at(0), never, time.Second, 600 * time.Millisecond},
		{"exactly on the interval goes", at(1000), at(0), never, time.Second, 0},
		{"1ns short still waits 1ns", at(0).Add(999999999), at(0), never, time.Second, 1},
		{"long idle goes at once", at(9000), at(0), never, time.Second, 0},
		{"hold later than the interval wins", at(500), at(0), at(3000), time.Second, 2500 * time.Millisecond},
		{"hold earlier than the interval loses", at(500), at(0), at(700), time.Second, 500 * time.Millisecond},
		{"hold in the past is ignored", at(5000), at(0), at(1000), time.Second, 0},
		{"hold with no previous start", at(0), never, at(2000), time.Second, 2 * time.Second},
		{"clock behind last start waits interval plus", at(0), at(100), never, time.Second, 1100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := pacing.Delay(tt.now, tt.last, tt.hold, tt.interval); got != tt.want {
			t.Errorf("%s: Delay = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestNewGateWaitsOneInterval: the first request after a (re)start waits an
// interval, because the previous process's last request counts upstream.
func TestNewGateWaitsOneInterval(t *testing.T) {
	const interval = 30 * time.Millisecond
	start := time.Now()
	g := pacing.NewGate(interval, nil)
	release, err := g.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // a second call is harmless
	if took := time.Since(start); took < interval {
		t.Fatalf("first Acquire after %v, want >= %v", took, interval)
	}
}

// TestGateSpacesAndSerializes runs concurrent callers through a real gate
// and checks start-to-start gaps and that no two overlap.
func TestGateSpacesAndSerializes(t *testing.T) {
	const interval = 20 * time.Millisecond
	g := pacing.NewGate(interval, nil)
	var (
		mu       sync.Mutex
		starts   []time.Time
		inFlight atomic.Int32
		maxIn    atomic.Int32
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			release, err := g.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			n := inFlight.Add(1)
			for {
				m := maxIn.Load()
				if n <= m || maxIn.CompareAndSwap(m, n) {
					break
				}
			}
			// As the TechPass client does, the start is the moment the
			// "request" is really sent, reported to the gate: a caller
			// descheduled after Acquire then cannot shorten the next gap.
			start := time.Now()
			g.Started(start)
			mu.Lock()
			starts = append(starts, start)
			mu.Unlock()
			time.Sleep(time.Millisecond) // the "request" takes a while
			inFlight.Add(-1)
			release()
		})
	}
	wg.Wait()
	if maxIn.Load() != 1 {
		t.Fatalf("max in flight %d, want 1", maxIn.Load())
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < interval {
			t.Errorf("gap %d = %v, want >= %v", i, gap, interval)
		}
	}
}

func TestGateAcquireHonoursContext(t *testing.T) {
	g := pacing.NewGate(time.Hour, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire during the interval = %v, want deadline exceeded", err)
	}
	// The failed Acquire must not keep the slot: another caller with a
	// different gate state can still get in once the hold is lifted.
	g2 := pacing.NewGate(0, nil)
	r1, _ := g2.Acquire(context.Background())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := g2.Acquire(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Acquire while one is in flight = %v, want deadline exceeded", err)
	}
	r1()
	r2, err := g2.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2()
}

func TestGateHoldAndNextStart(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := pacing.NewGate(time.Second, func() time.Time { return now })
	// A new gate counts its creation as a start (the previous process may
	// have just sent a request).
	if got := g.NextStart(); !got.Equal(now.Add(time.Second)) {
		t.Fatalf("NextStart on a fresh gate = %v, want now+1s", got)
	}
	now = now.Add(time.Second)
	release, _ := g.Acquire(context.Background())
	release()
	if got := g.NextStart(); !got.Equal(now.Add(time.Second)) {
		t.Fatalf("NextStart after a start = %v, want start+1s", got)
	}
	g.Hold(now.Add(5 * time.Second))
	g.Hold(now.Add(2 * time.Second)) // earlier: ignored
	if got := g.NextStart(); !got.Equal(now.Add(5 * time.Second)) {
		t.Fatalf("NextStart under hold = %v, want now+5s", got)
	}
}

// TestGateStartedMovesTheStart: a request sent later than it acquired its
// slot (a slow connection set-up) pushes the next start back.
func TestGateStartedMovesTheStart(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := pacing.NewGate(time.Second, func() time.Time { return now })
	now = now.Add(time.Second)
	release, _ := g.Acquire(context.Background())
	g.Started(now.Add(300 * time.Millisecond)) // headers written 300 ms later
	g.Started(now)                             // an earlier report changes nothing
	release()
	if got := g.NextStart(); !got.Equal(now.Add(1300 * time.Millisecond)) {
		t.Fatalf("NextStart = %v, want the write time + 1s", got)
	}
}

func ExampleGate() {
	gate := pacing.NewGate(10*time.Millisecond, nil)
	start := time.Now()
	for range 3 {
		release, err := gate.Acquire(context.Background())
		if err != nil {
			return
		}
		// ... send one upstream request and read its answer ...
		release()
	}
	// Three starts need at least two intervals.
	println(time.Since(start) >= 20*time.Millisecond)
}

// TestGateObservesLateness: the gate reports how long after its planned
// start each request was really sent: after the end of its wait for one
// that waited, after its asking for one that did not; once per request.
func TestGateObservesLateness(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// The clock's readings, in order: the gate's creation, then each time
	// Acquire looks.
	readings := []time.Time{ms(0), ms(5), ms(23), ms(100)}
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if len(readings) == 0 {
			t.Fatal("the clock was read more often than expected")
		}
		r := readings[0]
		readings = readings[1:]
		return r
	}
	g := pacing.NewGate(20*time.Millisecond, now)
	var late []time.Duration
	g.ObserveLateness(func(d time.Duration) { late = append(late, d) })

	// Asks at 5 ms, waits until 20 ms, the timer fires at 23 ms, and the
	// headers are written at 24 ms: 4 ms late.
	release, err := g.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g.Started(ms(24))
	g.Started(ms(26)) // a re-send on a fresh connection: not timed again
	release()
	// Asks at 100 ms, past its interval: no wait; written at 101 ms.
	release, err = g.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g.Started(ms(101))
	release()
	if want := []time.Duration{4 * time.Millisecond, time.Millisecond}; !slices.Equal(late, want) {
		t.Fatalf("lateness %v, want %v", late, want)
	}
}
