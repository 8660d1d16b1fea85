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
	slow     time.Duration // how long Start takes
	starts   []time.Time   // the starts recorded
	interval time.Duration // as asked by Wait
}

func (r *memRecord) Start(_ context.Context, in time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The clock is read when the write arrives; the time it takes is the
	// commit and the way back.
	defer time.Sleep(r.slow)
	if r.refuse != nil {
		r.log = append(r.log, "start refused")
		return r.refuse
	}
	r.log = append(r.log, "start")
	r.start, r.ended = time.Now().Add(in), false
	r.starts = append(r.starts, r.start)
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

// TestGateRecordsDuringTheWait: a record's write is made during the end of
// the gate's wait, so a slow record does not lengthen the gap between two
// requests; the start it records is when the request really goes (within
// timer jitter), never later than the write could know.
func TestGateRecordsDuringTheWait(t *testing.T) {
	const interval, slow = 200 * time.Millisecond, 40 * time.Millisecond
	ctx := t.Context()
	rec := &memRecord{slow: slow}
	g := pacing.NewGate(interval, nil)
	if err := g.Attach(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	for range 4 {
		release, err := g.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, time.Now())
		release()
	}
	rec.mu.Lock()
	starts := slices.Clone(rec.starts)
	rec.mu.Unlock()
	if len(starts) != len(sent) {
		t.Fatalf("%d starts recorded for %d requests", len(starts), len(sent))
	}
	for i := range sent {
		if d := sent[i].Sub(starts[i]); d < 0 || d > 20*time.Millisecond {
			t.Errorf("request %d went %v after its recorded start, want within [0, 20ms]", i, d)
		}
		if i == 0 {
			continue
		}
		// A synchronous write after the wait would make every gap
		// interval + slow.
		if gap := sent[i].Sub(sent[i-1]); gap < interval || gap >= interval+slow/2 {
			t.Errorf("gap %d: %v, want in [%v, %v): the write overlaps the wait", i, gap, interval, interval+slow/2)
		}
	}
}

// TestGateRecordsAMovedStartAgain: a hold given while a request waits,
// after its start was recorded, moves the start later; the later start is
// recorded before the request goes.
func TestGateRecordsAMovedStartAgain(t *testing.T) {
	const interval = 150 * time.Millisecond
	ctx := t.Context()
	rec := &memRecord{}
	g := pacing.NewGate(interval, nil) // the first request waits one interval
	if err := g.Attach(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// Hold once the start is recorded (the last 100 ms of the wait).
	held := make(chan time.Time, 1)
	go func() {
		for len(rec.events()) == 0 {
			time.Sleep(time.Millisecond)
		}
		until := time.Now().Add(300 * time.Millisecond)
		g.Hold(until)
		held <- until
	}()
	release, err := g.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	release()
	until := <-held
	if sent.Before(until) {
		t.Errorf("request sent %v before the hold's end", until.Sub(sent))
	}
	rec.mu.Lock()
	starts := slices.Clone(rec.starts)
	rec.mu.Unlock()
	if len(starts) != 2 {
		t.Fatalf("%d starts recorded (%v), want 2: the planned one and the moved one", len(starts), rec.events())
	}
	if last := starts[len(starts)-1]; last.Before(until) || sent.Sub(last) > 20*time.Millisecond {
		t.Errorf("last recorded start %v; the hold ended %v, the request went %v", last, until, sent)
	}
}
