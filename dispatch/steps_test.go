package dispatch_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/queue"
)

// A Continue outcome stores the step's progress, keeps the operation at the
// head of its project, and lets other projects take their turn between
// steps.
func TestDispatcherContinueInterleavesProjects(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		long := enqueueIn(t, s, "SHIP", "BIG", "three steps")
		short := enqueueIn(t, s, "SHIP", "SMALL", "one step")

		var mu sync.Mutex
		var order []string
		h := HandlerFunc(func(ctx context.Context, op queue.Operation) Outcome {
			step, _ := strconv.Atoi(string(op.Progress))
			mu.Lock()
			order = append(order, op.Project+"#"+strconv.Itoa(step))
			mu.Unlock()
			if op.Project == "BIG" && step < 2 {
				return Outcome{Kind: dispatch.Continue, Progress: []byte(strconv.Itoa(step + 1))}
			}
			return Outcome{Kind: dispatch.Done, Result: op.Progress}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h})
		startRun(t, d.Run)
		got := waitSettled(t, s, long.ID)
		waitSettled(t, s, short.ID)
		if got.State != queue.Succeeded || string(got.Result) != "2" || got.Attempts != 3 {
			t.Fatalf("long operation: %s, result %q, %d attempts; want succeeded after 3 steps with progress 2", got.State, got.Result, got.Attempts)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"BIG#0", "SMALL#0", "BIG#1", "BIG#2"}
		if len(order) != len(want) {
			t.Fatalf("steps %q, want %q", order, want)
		}
		for i := range want {
			if order[i] != want[i] {
				t.Fatalf("steps %q, want %q (the other project's work between steps)", order, want)
			}
		}
	})
}

// fakeBackground counts its steps and is due while it has steps left.
type fakeBackground struct {
	left  atomic.Int32
	steps atomic.Int32
	gate  *pacing.Gate
	mu    sync.Mutex
	at    []time.Time
}

func (b *fakeBackground) Due(time.Time) (bool, time.Time) { return b.left.Load() > 0, time.Time{} }

func (b *fakeBackground) Step(ctx context.Context) {
	release, err := b.gate.Acquire(ctx)
	if err != nil {
		return
	}
	defer release()
	// Sent now, as a request reports its real start: the gate spaces the
	// next start from this moment, so the gaps between these are its to
	// keep (from Acquire's return alone they could be a few µs short).
	at := time.Now()
	b.gate.Started(at)
	b.mu.Lock()
	b.at = append(b.at, at)
	b.mu.Unlock()
	b.steps.Add(1)
	b.left.Add(-1)
}

// Background steps run only in slots no operation wants: an operation
// queued while the background work is busy starts next, after at most the
// one background step already chosen before it was queued (within two
// intervals, but for the machine's delays: those are logged, not judged,
// as the commits before the start take what the disk gives them).
func TestDispatcherBackgroundYieldsToOperations(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		const interval = 50 * time.Millisecond
		gate := pacing.NewGate(interval, nil)
		bg := &fakeBackground{gate: gate}
		bg.left.Store(1000)
		type start struct {
			at    time.Time
			steps int32 // background steps started before it
		}
		started := make(chan start, 10)
		h := HandlerFunc(func(ctx context.Context, op queue.Operation) Outcome {
			release, err := gate.Acquire(ctx)
			if err != nil {
				return Outcome{Kind: dispatch.Retry}
			}
			defer release()
			// Holding the gate: no background step starts meanwhile.
			started <- start{time.Now(), bg.steps.Load()}
			return Outcome{Kind: dispatch.Done}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Gate: gate, Background: bg})
		startRun(t, d.Run)
		eventually(t, "background steps", func() bool { return bg.steps.Load() >= 3 })
		for range 3 {
			queued := time.Now()
			enqueue(t, s, "SHIP", "client work")
			stepsQueued := bg.steps.Load()
			d.Wake()
			st := receive(t, started, "the operation to start")
			if n := st.steps - stepsQueued; n > 1 {
				t.Fatalf("%d background steps started between the operation's enqueue and its start, want at most 1", n)
			}
			t.Logf("operation started %v after it was queued (two intervals: %v)", st.at.Sub(queued), 2*interval)
			before := bg.steps.Load()
			eventually(t, "background work to resume", func() bool { return bg.steps.Load() > before })
		}
		bg.left.Store(0)
		bg.mu.Lock()
		defer bg.mu.Unlock()
		for i := 1; i < len(bg.at); i++ {
			if gap := bg.at[i].Sub(bg.at[i-1]); gap < interval {
				t.Fatalf("background steps %v apart, want the gate's interval %v", gap, interval)
			}
		}
	})
}

// A dispatcher with nothing to do and background work that is not due
// waits until the work's next time, then runs it.
func TestDispatcherBackgroundWaitsForNext(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		bg := &timedBackground{next: time.Now().Add(30 * time.Millisecond), ran: make(chan time.Time, 1)}
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: HandlerFunc(func(context.Context, queue.Operation) Outcome {
			return Outcome{Kind: dispatch.Done}
		}), Background: bg})
		startRun(t, d.Run)
		at := receive(t, bg.ran, "the background step")
		if at.Before(bg.next) {
			t.Fatalf("background step ran at %v, before it was due at %v", at, bg.next)
		}
	})
}

type timedBackground struct {
	next time.Time
	done atomic.Bool
	ran  chan time.Time
}

func (b *timedBackground) Due(now time.Time) (bool, time.Time) {
	if b.done.Load() {
		return false, time.Time{}
	}
	return !now.Before(b.next), b.next
}

func (b *timedBackground) Step(context.Context) {
	b.done.Store(true)
	b.ran <- time.Now()
}

// A head left running by a dispatcher that was replaced (its call cut off
// at the end of its grace) is run again by the new one, as after a crash,
// instead of blocking its project.
func TestDispatcherRerunsHeadLeftRunning(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		op := enqueue(t, s, "SHIP", "left running")
		if _, err := s.UpdateOperation(t.Context(), op.ID, func(o *queue.Operation) error {
			o.State, o.Attempts = queue.Running, 1
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		next := enqueue(t, s, "SHIP", "behind it")
		var calls atomic.Int32
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: HandlerFunc(func(context.Context, queue.Operation) Outcome {
			calls.Add(1)
			return Outcome{Kind: dispatch.Done}
		})})
		startRun(t, d.Run)
		got := waitSettled(t, s, op.ID)
		waitSettled(t, s, next.ID)
		if got.State != queue.Succeeded || got.Attempts != 2 {
			t.Fatalf("head left running: %s after %d attempts, want succeeded on attempt 2", got.State, got.Attempts)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("handler called %d times, want 2", n)
		}
	})
}
