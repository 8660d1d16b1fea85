package dispatch_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// TestRetryWindowCountsNoPause: an operation meets a transient failure, its
// tenant's queue is stopped for longer than the retry window (the tenant
// disabled, the gateway down), and its first try after the pause fails
// again: it is retried, with the window counted from the new dispatcher's
// start, and given up only when that window has run out.
func TestRetryWindowCountsNoPause(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		clock := newFakeClock()
		op := enqueue(t, s, "SHIP", "a")
		calls := make(chan queue.Operation, 10)
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- o
			return Outcome{Kind: dispatch.Retry, Reason: "HTTP 503"}
		})
		policy := dispatch.RetryPolicy{MaxDuration: 30 * time.Minute, BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second, Rand: func() float64 { return 0.5 }}
		newDispatcher := func() *Dispatcher {
			return dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now, Retry: policy})
		}

		stop := startRun(t, newDispatcher().Run)
		receive(t, calls, "the first try")
		got := waitOp(t, s, op.ID, "the retry to be scheduled", func(o queue.Operation) bool { return o.State == queue.Queued && o.Attempts == 1 })
		if !got.FailingSince.Equal(t0) {
			t.Fatalf("FailingSince %v, want t0", got.FailingSince)
		}
		stop()

		clock.Advance(40 * time.Minute) // paused: no dispatcher runs
		resumed := clock.Now()
		d := newDispatcher()
		startRun(t, d.Run)
		receive(t, calls, "the first try after the pause")
		got = waitOp(t, s, op.ID, "the second retry to be scheduled", func(o queue.Operation) bool {
			return o.State.Final() || o.State == queue.Queued && o.Attempts == 2
		})
		if got.State != queue.Queued || !got.FailingSince.Equal(resumed) || !got.NotBefore.Equal(resumed.Add(5*time.Second)) {
			t.Fatalf("after a pause of 40m, a failure: State %q, FailingSince t0+%v, NotBefore t0+%v, Failure %+v; want queued, window from t0+40m, retry 5s later",
				got.State, got.FailingSince.Sub(t0), got.NotBefore.Sub(t0), got.Failure)
		}

		// The window still ends: 30 minutes of retries after the restart.
		clock.Advance(30 * time.Minute)
		d.Wake()
		receive(t, calls, "the try at the window's end")
		if got := waitSettled(t, s, op.ID); got.State != queue.Failed {
			t.Fatalf("after the window: State %q, want failed", got.State)
		}
	})
}

// TestAdoptionCheckIsNoAttempt: a try that sent only a check (Outcome.
// CheckOnly) is not counted in Attempts, whether it is retried or ends
// the operation, while a try that sent the work itself is.
func TestAdoptionCheckIsNoAttempt(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		clock := newFakeClock()
		op := enqueue(t, s, "SHIP", "a")
		outcomes := []Outcome{
			{Kind: dispatch.Retry, Reason: "timeout"},                                      // an unclear attempt
			{Kind: dispatch.Retry, Check: true, CheckOnly: true, Reason: "list: HTTP 503"}, // its adoption check fails
			{Kind: dispatch.Retry, Check: true, CheckOnly: true, Reason: "list: HTTP 503"}, // and again
			{Kind: dispatch.Done, CheckOnly: true, Result: []byte(`"adopted"`)},            // then finds the group
			{Kind: dispatch.Fail, Failure: &queue.Failure{Status: 500, Title: "too many"}}, // not reached
		}
		n := 0 // only the handler's goroutine uses it
		calls := make(chan queue.Operation, len(outcomes))
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- o
			n++
			return outcomes[n-1]
		})
		// No backoff: each retry is due at once on the fixed clock.
		policy := dispatch.RetryPolicy{BaseDelay: time.Second, MaxDelay: time.Second, Rand: func() float64 { return 0 }}
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now, Retry: policy})
		startRun(t, d.Run)
		var tries []int
		for range 4 {
			tries = append(tries, receive(t, calls, "a try").Attempts)
		}
		got := waitSettled(t, s, op.ID)
		// Each try after the first sees Attempts 2: the checks before it were
		// not counted, and the handler still knows an attempt was made.
		if want := []int{1, 2, 2, 2}; !slices.Equal(tries, want) || got.State != queue.Succeeded || got.Attempts != 1 {
			t.Fatalf("tries saw Attempts %v, final State %q, Attempts %d; want %v, succeeded, 1", tries, got.State, got.Attempts, want)
		}
	})
}
