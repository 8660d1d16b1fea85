package pacing_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/pacing"
)

// memRecord is a pacing.Record in memory, on the local clock, that logs
// what the gate recorded and can refuse starts (a fenced lead).
type memRecord struct {
	mu       sync.Mutex
	log      []string
	start    time.Time
	ended    bool
	hold     time.Time
	refuse   error
	interval time.Duration // as asked by Wait
}

func (r *memRecord) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse != nil {
		r.log = append(r.log, "start refused")
		return r.refuse
	}
	r.log = append(r.log, "start")
	r.start, r.ended = time.Now(), false
	return nil
}

func (r *memRecord) End(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "end")
	r.ended = true
	return nil
}

func (r *memRecord) Hold(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "hold")
	if until := time.Now().Add(d); until.After(r.hold) {
		r.hold = until
	}
	return nil
}

func (r *memRecord) Wait(_ context.Context, interval time.Duration) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.interval = interval
	next := time.Now()
	if !r.start.IsZero() {
		n := r.start.Add(interval)
		if !r.ended {
			n = n.Add(interval)
		}
		if n.After(next) {
			next = n
		}
	}
	if r.hold.After(next) {
		next = r.hold
	}
	return time.Until(next), nil
}

func (r *memRecord) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// TestGateKeepsItsRecord: a gate given a record (a new leader) first waits
// for what the record holds (a start with no end: two intervals), then
// records each start before the request goes and each end after, and
// every hold; a refused start refuses the request and frees the slot;
// after Detach nothing more is recorded.
func TestGateKeepsItsRecord(t *testing.T) {
	const interval = 150 * time.Millisecond
	ctx := t.Context()
	old := time.Now()
	rec := &memRecord{start: old} // the old leader's request, unended
	g := pacing.NewGate(interval, nil)
	if err := g.Attach(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if rec.interval != interval {
		t.Errorf("Wait asked with %v, want the gate's interval %v", rec.interval, interval)
	}
	release, err := g.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	if waited := first.Sub(old); waited < 2*interval {
		t.Errorf("the new leader's first request went %v after the unended one, want >= %v", waited, 2*interval)
	}
	if got := rec.events(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("recorded %v before the request, want [start]", got)
	}
	release()
	g.Hold(time.Now().Add(50 * time.Millisecond))
	if got := rec.events(); !slices.Equal(got, []string{"start", "end", "hold"}) {
		t.Errorf("recorded %v, want [start end hold]", got)
	}

	fenced := errors.New("fenced")
	rec.mu.Lock()
	rec.refuse = fenced
	rec.mu.Unlock()
	if _, err := g.Acquire(ctx); !errors.Is(err, fenced) {
		t.Errorf("Acquire with a refused start: %v, want the record's error", err)
	}
	g.Detach()
	release, err = g.Acquire(ctx) // the slot was freed
	if err != nil {
		t.Fatalf("Acquire after Detach: %v", err)
	}
	release()
	if got := rec.events(); !slices.Equal(got, []string{"start", "end", "hold", "start refused"}) {
		t.Errorf("recorded %v, want nothing after Detach", got)
	}
}
