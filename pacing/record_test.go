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
	ins      []time.Duration
	returned []time.Time     // when each Start returned
	lates    []time.Duration // as given to End
	// afterStart, if set, runs after Start number n (from 1) has
	// recorded, outside the record's lock.
	afterStart func(n int)
	interval   time.Duration // as asked by Wait
}

func (r *memRecord) Start(_ context.Context, in time.Duration) error {
	r.mu.Lock()
	if r.refuse != nil {
		r.log = append(r.log, "start refused")
		r.mu.Unlock()
		return r.refuse
	}
	// The clock is read when the write arrives; the time it takes is the
	// commit and the way back.
	r.log = append(r.log, "start")
	r.start, r.ended = time.Now().Add(in), false
	r.starts, r.ins = append(r.starts, r.start), append(r.ins, in)
	n, after, slow := len(r.starts), r.afterStart, r.slow
	r.mu.Unlock()
	time.Sleep(slow)
	r.mu.Lock()
	r.returned = append(r.returned, time.Now())
	r.mu.Unlock()
	if after != nil {
		after(n)
	}
	return nil
}

func (r *memRecord) End(_ context.Context, late time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "end")
	r.ended = true
	r.lates = append(r.lates, late)
	r.start = r.start.Add(late)
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

// recorded returns the starts recorded, the rests of the wait they were
// recorded with, and when each write returned.
func (r *memRecord) recorded() (starts []time.Time, ins []time.Duration, returned []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.starts), slices.Clone(r.ins), slices.Clone(r.returned)
}

// acquireAll runs n requests through g one after another and returns when
// each was sent.
func acquireAll(t *testing.T, g *pacing.Gate, n int) []time.Time {
	t.Helper()
	var sent []time.Time
	for range n {
		release, err := g.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, time.Now())
		release()
	}
	return sent
}

// TestGateRecordsDuringTheWait: the record's write is made before the
// gate's wait is over (with the rest of the wait), and the request goes
// only once it has returned; so a slow record does not lengthen the gap
// between two requests. With the write after the wait, no gap could be
// shorter than the interval plus the write.
func TestGateRecordsDuringTheWait(t *testing.T) {
	const interval, slow, n = 300 * time.Millisecond, 60 * time.Millisecond, 6
	rec := &memRecord{slow: slow}
	g := pacing.NewGate(interval, nil) // every request waits, the first too
	if err := g.Attach(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	sent := acquireAll(t, g, n)
	starts, ins, returned := rec.recorded()
	if len(starts) != n {
		t.Fatalf("%d starts recorded for %d requests: %v", len(starts), n, rec.events())
	}
	minGap := time.Duration(1 << 62)
	for i := range sent {
		if ins[i] <= 0 {
			t.Errorf("request %d: start recorded with %v of the wait left, want it recorded during the wait", i, ins[i])
		}
		if sent[i].Before(returned[i]) {
			t.Errorf("request %d sent %v before its record's write returned", i, returned[i].Sub(sent[i]))
		}
		if i > 0 {
			gap := sent[i].Sub(sent[i-1])
			if gap < interval {
				t.Errorf("gap %d: %v, under the interval %v", i, gap, interval)
			}
			minGap = min(minGap, gap)
		}
	}
	if minGap >= interval+slow {
		t.Errorf("smallest gap %v: every gap carries the record's write (%v); want it overlapped with the wait", minGap, slow)
	}
}

// TestGateSendsAfterASlowRecord: a write that takes longer than the rest
// of the wait holds the request until it returns.
func TestGateSendsAfterASlowRecord(t *testing.T) {
	const interval, slow = 100 * time.Millisecond, 150 * time.Millisecond
	rec := &memRecord{slow: slow}
	g := pacing.NewGate(interval, nil)
	if err := g.Attach(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	sent := acquireAll(t, g, 3)
	_, _, returned := rec.recorded()
	if len(returned) != len(sent) {
		t.Fatalf("%d starts recorded for %d requests", len(returned), len(sent))
	}
	for i := range sent {
		if sent[i].Before(returned[i]) {
			t.Errorf("request %d sent %v before its record's write returned", i, returned[i].Sub(sent[i]))
		}
	}
}

// TestGateRecordsAMovedStartAgain: a hold given after a request's start
// was recorded, while it waits, moves the start later; the later start is
// recorded before the request goes.
func TestGateRecordsAMovedStartAgain(t *testing.T) {
	const interval, hold = 150 * time.Millisecond, 300 * time.Millisecond
	rec := &memRecord{}
	g := pacing.NewGate(interval, nil) // the first request waits one interval
	if err := g.Attach(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	var until time.Time
	rec.afterStart = func(n int) {
		if n == 1 {
			until = time.Now().Add(hold)
			g.Hold(until)
		}
	}
	sent := acquireAll(t, g, 1)[0]
	if sent.Before(until) {
		t.Errorf("request sent %v before the hold's end", until.Sub(sent))
	}
	starts, _, _ := rec.recorded()
	if len(starts) != 2 {
		t.Fatalf("%d starts recorded (%v), want 2: the planned one and the moved one", len(starts), rec.events())
	}
	if starts[1].Before(until) {
		t.Errorf("moved start recorded as %v, before the hold's end %v", starts[1], until)
	}
}

// TestGateRecordsAgainInANewRecord: a record attached while a request
// waits (a new lead) gets the request's start too, before it goes.
func TestGateRecordsAgainInANewRecord(t *testing.T) {
	const interval = 150 * time.Millisecond
	first, second := &memRecord{}, &memRecord{}
	g := pacing.NewGate(interval, nil)
	if err := g.Attach(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	first.afterStart = func(int) {
		if err := g.Attach(t.Context(), second); err != nil {
			t.Error(err)
		}
	}
	acquireAll(t, g, 1)
	if got := first.events(); !slices.Equal(got, []string{"start"}) {
		t.Errorf("first record: %v, want [start] (its lead was over before the request went)", got)
	}
	if got := second.events(); !slices.Equal(got, []string{"start", "end"}) {
		t.Errorf("the record attached during the wait: %v, want [start end]", got)
	}
}

// TestGateEndsAStartNotSent: a request whose wait is cut off (its lead
// ends) after its start was recorded is recorded as ended, so the next
// leader does not wait for it to end.
func TestGateEndsAStartNotSent(t *testing.T) {
	const interval = 150 * time.Millisecond
	rec := &memRecord{}
	g := pacing.NewGate(interval, nil)
	if err := g.Attach(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	rec.afterStart = func(int) { cancel() }
	if _, err := g.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire cut off during its wait: %v, want context.Canceled", err)
	}
	if got := rec.events(); !slices.Equal(got, []string{"start", "end"}) {
		t.Errorf("recorded %v, want [start end]", got)
	}
	release, err := g.Acquire(t.Context()) // the slot was freed
	if err != nil {
		t.Fatal(err)
	}
	release()
}

// TestGateEndCarriesTheRealStart: a request sent later than its recorded
// start (Started: its connection was set up first) has its end recorded
// with that lateness, which moves the recorded start to the real send.
func TestGateEndCarriesTheRealStart(t *testing.T) {
	const interval, setup = 100 * time.Millisecond, 40 * time.Millisecond
	rec := &memRecord{}
	g := pacing.NewGate(interval, nil)
	if err := g.Attach(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	release, err := g.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(setup)
	sent := time.Now()
	g.Started(sent)
	release()
	starts, _, _ := rec.recorded()
	rec.mu.Lock()
	lates, moved := slices.Clone(rec.lates), rec.start
	rec.mu.Unlock()
	if len(starts) != 1 || len(lates) != 1 {
		t.Fatalf("recorded %v, want one start and one end", rec.events())
	}
	if lates[0] < setup {
		t.Errorf("end recorded %v late, want at least the %v the request waited for its connection", lates[0], setup)
	}
	// The record's clock is this one: the moved start is the real send,
	// later by the gap between the gate's clock reading and Start's.
	if d := moved.Sub(sent); d < 0 || d > 100*time.Millisecond {
		t.Errorf("recorded start moved to %v after the real send, want the real send (within [0, 100ms])", d)
	}
}
