package dispatch_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/memstore"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
)

// The dispatcher's types as the gateway instantiates them: its operations
// carry the group mirror's effects.
type (
	Store       = queue.Store[groups.Effect]
	Outcome     = dispatch.Outcome[groups.Effect]
	Handler     = dispatch.Handler[groups.Effect]
	HandlerFunc = dispatch.HandlerFunc[groups.Effect]
	Config      = dispatch.Config[groups.Effect]
	Dispatcher  = dispatch.Dispatcher[groups.Effect]
	Dispatchers = dispatch.Dispatchers[groups.Effect]
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends are the stores every dispatcher test runs on, as the queue,
// groups and webhooks conformance suites do: a bbolt file, memory (which
// runs every transaction twice) and PostgreSQL (a fresh database; skipped
// without PostgreSQL installed, failed under CI=true).
var backends = []struct {
	name string
	open func(t *testing.T) groups.Store
}{
	{"bbolt", func(t *testing.T) groups.Store { return bolttest.MustOpen(t) }},
	{"memstore", func(*testing.T) groups.Store { return memstore.New() }},
	{"postgres", func(t *testing.T) groups.Store { return openPostgres(t, pgtest.DSN(t)) }},
}

// openPostgres opens a store (a replica's pool) on dsn, closed when t ends.
func openPostgres(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pgstore.Config{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatalf("pgstore.Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// onEachBackend runs test once on each backend, as a subtest named for it,
// with the queue over a fresh store.
func onEachBackend(t *testing.T, test func(t *testing.T, s *groups.Ledger)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, groups.NewLedger(b.open(t))) })
	}
}

// t0 is where fake clocks start.
var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// newFakeClock returns a clock at t0 that the test moves by hand.
func newFakeClock() *testkit.Clock { return testkit.NewClock(t0) }

// countingStore is a real store that counts Heads calls, so that a test can
// tell that a dispatcher has looked at its queue again, and records what
// RequeueRunning did.
type countingStore struct {
	Store
	heads    atomic.Int64
	requeued atomic.Int64 // operations requeued, or -1 before any call
}

func newCountingStore(s Store) *countingStore {
	c := &countingStore{Store: s}
	c.requeued.Store(-1)
	return c
}

func (s *countingStore) RequeueRunning(ctx context.Context, tenant string, now time.Time) (int, error) {
	n, err := s.Store.RequeueRunning(ctx, tenant, now)
	s.requeued.Store(int64(n))
	return n, err
}

func (s *countingStore) Heads(ctx context.Context, tenant string) ([]queue.Operation, error) {
	ops, err := s.Store.Heads(ctx, tenant)
	s.heads.Add(1)
	return ops, err
}

var _ Store = (*countingStore)(nil)

// settle wakes d until it has run two more queue steps, so that whatever
// the first of them would do (start an operation too early, say) has been
// done by the time it returns.
func settle(t *testing.T, d *Dispatcher, s *countingStore) {
	t.Helper()
	n := s.heads.Load()
	for i := int64(1); i <= 2; i++ {
		d.Wake()
		eventually(t, "the dispatcher to look at its queue", func() bool { return s.heads.Load() >= n+i })
	}
}

// retryAfter checks that d does not try attempt's operation again before
// wait (nothing on calls once d has settled), then moves clock on by wait
// and wakes d.
func retryAfter(t *testing.T, d *Dispatcher, s *countingStore, clock *testkit.Clock, calls <-chan queue.Operation, attempt int, wait time.Duration) {
	t.Helper()
	settle(t, d, s)
	if len(calls) != 0 {
		t.Fatalf("attempt %d was retried before its wait of %v", attempt, wait)
	}
	clock.Advance(wait)
	d.Wake()
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, what, cond)
}

// waitOp polls the store until operation id satisfies cond and returns it.
func waitOp(t *testing.T, s Store, id, what string, cond func(queue.Operation) bool) queue.Operation {
	t.Helper()
	var op queue.Operation
	eventually(t, what, func() bool {
		var err error
		op, err = s.Operation(context.Background(), id)
		if err != nil {
			t.Fatalf("Operation(%s): %v", id, err)
		}
		return cond(op)
	})
	return op
}

func waitSettled(t *testing.T, s Store, id string) queue.Operation {
	t.Helper()
	return waitOp(t, s, id, "operation "+id+" to reach a final state", func(op queue.Operation) bool { return op.State.Final() })
}

// receive waits for a value on ch, failing the test after a deadline.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// enqueue queues an operation of project MOH.
func enqueue(t *testing.T, s Store, tenant, target string) queue.Operation {
	t.Helper()
	return enqueueIn(t, s, tenant, "MOH", target)
}

func enqueueIn(t *testing.T, s Store, tenant, project, target string) queue.Operation {
	t.Helper()
	return enqueueOp(t, s, queue.Operation{
		ID: queue.NewID(), Tenant: tenant, Project: project, Kind: "test.op", Target: target, CreatedAt: t0, UpdatedAt: t0,
	})
}

func enqueueOp(t *testing.T, s Store, op queue.Operation) queue.Operation {
	t.Helper()
	op, err := s.Enqueue(t.Context(), op, queue.Limits{})
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return op
}

// startRun runs run(ctx) in a goroutine. The returned stop cancels ctx and
// waits for run to return nil; it is also registered with t.Cleanup.
func startRun(t *testing.T, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil on shutdown", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestDispatcherRunsInQueueOrderOneAtATime(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		var want []string
		for i := range 5 {
			want = append(want, enqueue(t, s, "SHIP", fmt.Sprint("op", i)).ID)
		}
		other := enqueue(t, s, "DOCK", "not mine")

		var (
			inFlight atomic.Int32
			mu       sync.Mutex
			got      []string
		)
		h := HandlerFunc(func(ctx context.Context, op queue.Operation) Outcome {
			if n := inFlight.Add(1); n != 1 {
				t.Errorf("handler called with %d calls in flight", n)
			}
			defer inFlight.Add(-1)
			runtime.Gosched() // give an overlapping call the chance to show itself
			if op.State != queue.Running || op.Attempts != 1 {
				t.Errorf("handler got %s in state %q, attempt %d; want running, attempt 1", op.Target, op.State, op.Attempts)
			}
			mu.Lock()
			got = append(got, op.ID)
			mu.Unlock()
			return Outcome{Kind: dispatch.Done}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h})
		startRun(t, d.Run)
		// More work arrives while it runs.
		for i := 5; i < 10; i++ {
			want = append(want, enqueue(t, s, "SHIP", fmt.Sprint("op", i)).ID)
			d.Wake()
		}
		for _, id := range want {
			if op := waitSettled(t, s, id); op.State != queue.Succeeded {
				t.Fatalf("%s: State = %q, want succeeded", op.Target, op.State)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("handled in order %q, want queue order %q", got, want)
		}
		if op, err := s.Operation(t.Context(), other.ID); err != nil || op.State != queue.Queued || op.Attempts != 0 {
			t.Fatalf("another tenant's operation: %s attempt %d, %v; want it untouched", op.State, op.Attempts, err)
		}
	})
}

// createGroup queues the creation of a group as groups.Service does.
func createGroup(t *testing.T, s *groups.Ledger, n groups.Name) queue.Operation {
	t.Helper()
	op := queue.Operation{ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate, Target: n.String(), CreatedAt: t0, UpdatedAt: t0}
	g := groups.Group{Name: n, State: groups.Creating, PendingOperation: op.ID, CreatedAt: t0, UpdatedAt: t0}
	op, err := s.CreatePending(t.Context(), g, op, groups.Limits{Groups: 50})
	if err != nil {
		t.Fatalf("CreatePending: %v", err)
	}
	return op
}

func TestDispatcherDoneStoresResultAndEffects(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		clock := newFakeClock()
		n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
		op := createGroup(t, s, n)

		settled := make(chan queue.Operation, 1)
		h := HandlerFunc(func(ctx context.Context, op queue.Operation) Outcome {
			// The operation is marked running in the store before the upstream call.
			if stored, err := s.Operation(ctx, op.ID); err != nil || stored.State != queue.Running || stored.Attempts != 1 {
				t.Errorf("stored operation during the call: %s attempt %d, %v; want running, attempt 1", stored.State, stored.Attempts, err)
			}
			clock.Advance(time.Second)
			return Outcome{
				Kind:    dispatch.Done,
				Result:  []byte(`{"upstreamId":"g-1"}`),
				Effects: []groups.Effect{groups.Created{Name: n, UpstreamID: "g-1", At: clock.Now()}},
			}
		})
		d := dispatch.NewDispatcher(Config{
			Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now,
			OnSettled: func(op queue.Operation) { settled <- op },
		})
		startRun(t, d.Run)

		notified := receive(t, settled, "OnSettled")
		got, err := s.Operation(t.Context(), op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if notified.ID != op.ID || notified.State != queue.Succeeded {
			t.Errorf("OnSettled got %s in state %q", notified.ID, notified.State)
		}
		if got.State != queue.Succeeded || string(got.Result) != `{"upstreamId":"g-1"}` || got.Failure != nil {
			t.Errorf("stored: State %q, Result %q, Failure %v", got.State, got.Result, got.Failure)
		}
		if got.Attempts != 1 || got.Failures != 0 || !got.StartedAt.Equal(t0) || !got.FinishedAt.Equal(t0.Add(time.Second)) || !got.NotBefore.IsZero() {
			t.Errorf("stored: Attempts %d, Failures %d, StartedAt %v, FinishedAt %v, NotBefore %v", got.Attempts, got.Failures, got.StartedAt, got.FinishedAt, got.NotBefore)
		}
		g, err := s.Group(t.Context(), n)
		if err != nil || g.State != groups.Active || g.UpstreamID != "g-1" || g.PendingOperation != "" {
			t.Errorf("group after the effect: %+v, %v; want active with upstream id g-1", g, err)
		}
		if depth, _ := s.Depth(t.Context(), "SHIP"); depth.Total != 0 {
			t.Errorf("Depth = %+v, want 0", depth)
		}
	})
}

func TestDispatcherFailStoresFailure(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
		op := createGroup(t, s, n)
		next := enqueue(t, s, "SHIP", "next")

		failure := &queue.Failure{Status: 422, Title: "Rejected by TechPass", Detail: "TechPass refused the name"}
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			if o.ID == op.ID {
				return Outcome{Kind: dispatch.Fail, Failure: failure, Effects: []groups.Effect{groups.CreateFailed{Name: n}}}
			}
			return Outcome{} // no kind: a handler bug
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Endings: wording{}})
		startRun(t, d.Run)

		got := waitSettled(t, s, op.ID)
		if got.State != queue.Failed || got.Failure == nil || *got.Failure != *failure || len(got.Result) != 0 || got.FinishedAt.IsZero() {
			t.Errorf("stored: State %q, Failure %+v, Result %q, FinishedAt %v", got.State, got.Failure, got.Result, got.FinishedAt)
		}
		if g, err := s.Group(t.Context(), n); err == nil {
			t.Errorf("group after CreateFailed: %+v, want it gone", g)
		}
		// An outcome of no known kind fails the operation as unworkable.
		got = waitSettled(t, s, next.ID)
		if got.State != queue.Failed || got.Failure == nil || got.Failure.Status != 500 {
			t.Errorf("outcome without a kind: State %q, Failure %+v; want failed with status 500", got.State, got.Failure)
		}
	})
}

func TestDispatcherThrottledRetryWaitsWithoutFailure(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		s := newCountingStore(base)
		clock := newFakeClock()
		op := enqueue(t, s, "SHIP", "a")

		calls := make(chan queue.Operation, 10)
		const reason = "TechPass answered HTTP 429"
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- o
			if o.Attempts == 1 {
				return Outcome{Kind: dispatch.Retry, Throttled: true, RetryAfter: 30 * time.Second, Reason: reason}
			}
			return Outcome{Kind: dispatch.Done}
		})
		// One failure would end the operation: a throttling answer must not count.
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now, Retry: dispatch.RetryPolicy{MaxFailures: 1}})
		startRun(t, d.Run)

		receive(t, calls, "the first call")
		got := waitOp(t, s, op.ID, "the retry to be scheduled", func(o queue.Operation) bool { return o.State == queue.Queued && o.Attempts == 1 })
		if got.Failures != 0 || !got.NotBefore.Equal(t0.Add(30*time.Second)) || got.LastError != reason {
			t.Fatalf("rescheduled: Failures %d, NotBefore %v, LastError %q; want 0, t0+30s, %q", got.Failures, got.NotBefore, got.LastError, reason)
		}

		settle(t, d, s)
		clock.Advance(29 * time.Second)
		settle(t, d, s)
		if len(calls) != 0 {
			t.Fatalf("retried %v after the throttle answer, before its Retry-After of 30s", clock.Now().Sub(t0))
		}
		clock.Advance(time.Second)
		d.Wake()
		second := receive(t, calls, "the retry")
		if second.Attempts != 2 || second.Failures != 0 || second.State != queue.Running {
			t.Errorf("retry got Attempts %d, Failures %d, State %q; want 2, 0, running", second.Attempts, second.Failures, second.State)
		}
		if got := waitSettled(t, s, op.ID); got.State != queue.Succeeded || got.Failures != 0 {
			t.Errorf("final: State %q, Failures %d; want succeeded, 0", got.State, got.Failures)
		}
	})
}

func TestDispatcherRetryCountsFailuresThenGivesUp(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		s := newCountingStore(base)
		clock := newFakeClock()
		n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
		op := createGroup(t, base, n)
		next := enqueue(t, s, "SHIP", "b")

		calls := make(chan queue.Operation, 10)
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- o
			if o.ID == next.ID {
				return Outcome{Kind: dispatch.Done}
			}
			// A retry carries the effects to commit if the dispatcher gives up.
			out := Outcome{Kind: dispatch.Retry, Reason: fmt.Sprintf("TechPass answered HTTP 50%d", o.Attempts),
				Effects: []groups.Effect{groups.CreateFailed{Name: n}}}
			if o.Attempts == 2 {
				out.RetryAfter = 42 * time.Second // a 503 with Retry-After: its wait is used, and it still counts
			}
			return out
		})
		policy := dispatch.RetryPolicy{MaxFailures: 3, BaseDelay: 10 * time.Second, MaxDelay: time.Minute, Rand: func() float64 { return 0.5 }}
		settled := make(chan queue.Operation, 2)
		d := dispatch.NewDispatcher(Config{
			Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now, Retry: policy, Endings: wording{},
			OnSettled: func(o queue.Operation) { settled <- o },
		})
		startRun(t, d.Run)

		steps := []struct {
			wait      time.Duration // the backoff expected after this attempt
			lastError string
		}{
			{5 * time.Second, "TechPass answered HTTP 501"}, // half of BaseDelay
			{42 * time.Second, "TechPass answered HTTP 502"},
		}
		for i, step := range steps {
			attempt := i + 1
			if got := receive(t, calls, fmt.Sprint("attempt ", attempt)); got.Attempts != attempt || got.Failures != i {
				t.Fatalf("attempt %d: handler got Attempts %d, Failures %d", attempt, got.Attempts, got.Failures)
			}
			got := waitOp(t, s, op.ID, fmt.Sprint("retry ", attempt, " to be scheduled"), func(o queue.Operation) bool {
				return o.State == queue.Queued && o.Attempts == attempt
			})
			if want := clock.Now().Add(step.wait); got.Failures != attempt || !got.NotBefore.Equal(want) || got.LastError != step.lastError {
				t.Fatalf("after attempt %d: Failures %d, NotBefore %v, LastError %q; want %d, %v, %q",
					attempt, got.Failures, got.NotBefore, got.LastError, attempt, want, step.lastError)
			}
			if g, err := base.Group(t.Context(), n); err != nil || g.State != groups.Creating {
				t.Fatalf("after attempt %d: group %+v, %v; want it still creating (a retry's effects wait for giving up)", attempt, g, err)
			}
			retryAfter(t, d, s, clock, calls, attempt, step.wait)
		}

		receive(t, calls, "attempt 3")
		got := waitSettled(t, s, op.ID)
		if got.State != queue.Failed || got.Failure == nil || got.Failure.Status != 502 {
			t.Fatalf("after %d failures: State %q, Failure %+v; want failed with status 502", policy.MaxFailures, got.State, got.Failure)
		}
		if !strings.Contains(got.Failure.Detail, "TechPass answered HTTP 503") {
			t.Errorf("Failure.Detail = %q, want it to name the last reason", got.Failure.Detail)
		}
		if g, err := base.Group(t.Context(), n); err == nil {
			t.Errorf("group after giving up: %+v, want the last retry's CreateFailed applied", g)
		}
		if notified := receive(t, settled, "OnSettled"); notified.ID != op.ID || notified.State != queue.Failed {
			t.Errorf("OnSettled got %s in state %q", notified.Target, notified.State)
		}
		// The queue moves on.
		if got := receive(t, calls, "the next operation"); got.ID != next.ID {
			t.Fatalf("after giving up, handler got %s, want %s", got.Target, next.Target)
		}
		if got := waitSettled(t, s, next.ID); got.State != queue.Succeeded {
			t.Fatalf("next operation: State %q", got.State)
		}
	})
}

func TestDispatcherRespectsNotBefore(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		s := newCountingStore(base)
		clock := newFakeClock()
		later := enqueueOp(t, s, queue.Operation{
			ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op", Target: "later", NotBefore: t0.Add(time.Minute),
		})
		behind := enqueue(t, s, "SHIP", "behind it")

		type call struct {
			target string
			at     time.Time
		}
		calls := make(chan call, 10)
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- call{o.Target, clock.Now()}
			return Outcome{Kind: dispatch.Done}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now})
		startRun(t, d.Run)

		settle(t, d, s)
		clock.Advance(59 * time.Second)
		settle(t, d, s)
		if len(calls) != 0 {
			c := <-calls
			t.Fatalf("started %s at t0+%v, before its project's head may start at t0+1m (nothing of the project may overtake it)", c.target, c.at.Sub(t0))
		}
		// Another project's work is not held up by it.
		other := enqueueIn(t, s, "SHIP", "HR", "other project")
		d.Wake()
		if c := receive(t, calls, "the other project's operation"); c.target != other.Target {
			t.Fatalf("handled %s, want %s", c.target, other.Target)
		}
		clock.Advance(time.Second)
		d.Wake()
		for _, want := range []queue.Operation{later, behind} {
			c := receive(t, calls, "a call")
			if c.target != want.Target {
				t.Fatalf("handled %s, want %s", c.target, want.Target)
			}
			if c.at.Before(t0.Add(time.Minute)) {
				t.Fatalf("%s started at t0+%v, before t0+1m", want.Target, c.at.Sub(t0))
			}
		}
	})
}

// TestDispatcherTakesProjectsInTurn: the projects with work take turns,
// one operation each, in name order; within a project, submission order.
func TestDispatcherTakesProjectsInTurn(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		for _, p := range []struct{ project, target string }{
			{"ADM", "a1"}, {"ADM", "a2"}, {"ADM", "a3"}, {"HR", "h1"}, {"MOH", "m1"}, {"MOH", "m2"},
		} {
			enqueueIn(t, s, "SHIP", p.project, p.target)
		}
		var mu sync.Mutex
		var got []string
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			mu.Lock()
			got = append(got, o.Target)
			mu.Unlock()
			return Outcome{Kind: dispatch.Done}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h})
		startRun(t, d.Run)
		eventually(t, "the queue to drain", func() bool {
			depth, err := s.Depth(context.Background(), "SHIP")
			return err == nil && depth.Total == 0
		})
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"a1", "h1", "m1", "a2", "m2", "a3"}; !slices.Equal(got, want) {
			t.Fatalf("handled %q, want %q", got, want)
		}
	})
}

func TestDispatcherSurvivesPanickingHandler(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		always := enqueue(t, s, "SHIP", "always panics")
		once := enqueue(t, s, "SHIP", "panics once")
		fine := enqueue(t, s, "SHIP", "fine")

		var mu sync.Mutex
		var order []string
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			mu.Lock()
			order = append(order, o.Target)
			mu.Unlock()
			switch {
			case o.ID == always.ID, o.ID == once.ID && o.Attempts == 1:
				panic("handler bug")
			}
			return Outcome{Kind: dispatch.Done}
		})
		policy := dispatch.RetryPolicy{MaxFailures: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Retry: policy, Endings: wording{}})
		startRun(t, d.Run)

		got := waitSettled(t, s, fine.ID)
		if got.State != queue.Succeeded {
			t.Fatalf("operation after the panicking ones: State %q", got.State)
		}
		if got := waitSettled(t, s, always.ID); got.State != queue.Failed || got.Failure == nil || got.Failure.Status != 502 ||
			!strings.Contains(got.Failure.Detail, "internal error") {
			t.Errorf("always-panicking operation: State %q, Failure %+v; want failed, 502, naming an internal error", got.State, got.Failure)
		}
		if got := waitSettled(t, s, once.ID); got.State != queue.Succeeded || got.Attempts != 2 || got.Failures != 1 {
			t.Errorf("operation that panicked once: State %q, Attempts %d, Failures %d; want succeeded, 2, 1", got.State, got.Attempts, got.Failures)
		}
		if !d.Running() {
			t.Error("dispatcher stopped after handler panics")
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"always panics", "always panics", "panics once", "panics once", "fine"}
		if !slices.Equal(order, want) {
			t.Errorf("calls %q, want %q", order, want)
		}
	})
}

func TestDispatcherWakeStartsIdleDispatcher(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		s := newCountingStore(base)
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			return Outcome{Kind: dispatch.Done}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h})
		startRun(t, d.Run)
		eventually(t, "the dispatcher to find its queue empty", func() bool { return s.heads.Load() >= 1 })

		start := time.Now()
		op := enqueue(t, s, "SHIP", "a")
		d.Wake()
		if got := waitSettled(t, s, op.ID); got.State != queue.Succeeded {
			t.Fatalf("State %q", got.State)
		}
		// An idle dispatcher waits without a timer: only Wake can have started it.
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("woken dispatcher took %v to finish one operation", took)
		} else {
			t.Logf("woken dispatcher finished one operation in %v", took)
		}
	})
}

func TestDispatchersRunReplaysInterruptedOperation(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		s := newCountingStore(base)
		op := enqueue(t, s, "SHIP", "interrupted")
		next := enqueue(t, s, "SHIP", "next")
		// A dispatcher started it, then the process died.
		if _, err := s.UpdateOperation(t.Context(), op.ID, func(o *queue.Operation) error {
			o.State, o.Attempts, o.StartedAt = queue.Running, 1, t0
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		calls := make(chan queue.Operation, 10)
		q := dispatch.NewDispatchers[groups.Effect](s, nil, nil)
		q.Put(Config{Tenant: "SHIP", Handler: HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			if n := s.requeued.Load(); n != 1 {
				t.Errorf("handler called with RequeueRunning's count at %d, want 1: requeue before dispatching", n)
			}
			calls <- o
			return Outcome{Kind: dispatch.Done}
		})})
		startRun(t, q.Run)

		got := receive(t, calls, "the replay")
		if got.ID != op.ID || got.Attempts != 2 || got.State != queue.Running || !got.StartedAt.Equal(t0) {
			t.Fatalf("first call: %s, Attempts %d, State %q, StartedAt %v; want the interrupted operation, attempt 2, running, first start kept",
				got.Target, got.Attempts, got.State, got.StartedAt)
		}
		if got := receive(t, calls, "the next operation"); got.ID != next.ID || got.Attempts != 1 {
			t.Fatalf("second call: %s attempt %d, want %s attempt 1", got.Target, got.Attempts, next.Target)
		}
		for _, id := range []string{op.ID, next.ID} {
			if got := waitSettled(t, s, id); got.State != queue.Succeeded {
				t.Fatalf("%s: State %q", got.Target, got.State)
			}
		}
	})
}

func TestDispatcherShutdownFinishesCallWithinGrace(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		op := enqueue(t, s, "SHIP", "in flight")
		waiting := enqueue(t, s, "SHIP", "waiting")

		started, release := make(chan struct{}), make(chan struct{})
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			if o.ID != op.ID {
				t.Errorf("handler started %s after shutdown", o.Target)
				return Outcome{Kind: dispatch.Done}
			}
			close(started)
			<-release
			if ctx.Err() != nil {
				t.Errorf("the call's context ended within the grace period: %v", ctx.Err())
			}
			return Outcome{Kind: dispatch.Done, Result: []byte("finished during shutdown")}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Grace: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()

		receive(t, started, "the call to start")
		cancel()
		select {
		case <-done:
			t.Fatal("Run returned while a call was in flight")
		default:
		}
		close(release)
		if err := receive(t, done, "Run to return"); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if d.Running() {
			t.Error("Running() = true after Run returned")
		}
		got, err := s.Operation(t.Context(), op.ID)
		if err != nil || got.State != queue.Succeeded || string(got.Result) != "finished during shutdown" {
			t.Fatalf("operation finished during shutdown: State %q, Result %q, %v; want its outcome committed", got.State, got.Result, err)
		}
		if got, err := s.Operation(t.Context(), waiting.ID); err != nil || got.State != queue.Queued || got.Attempts != 0 {
			t.Fatalf("next operation after shutdown: State %q, Attempts %d, %v; want untouched", got.State, got.Attempts, err)
		}
	})
}

func TestDispatcherShutdownPastGraceLeavesOperationRunning(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		op := enqueue(t, s, "SHIP", "slow")
		waiting := enqueue(t, s, "SHIP", "waiting")

		const grace = 50 * time.Millisecond
		started := make(chan struct{})
		var cutOff atomic.Int64 // nanoseconds from cancel to the call's context ending
		var cancelledAt atomic.Pointer[time.Time]
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			close(started)
			<-ctx.Done() // an upstream call that outlasts the grace period
			if at := cancelledAt.Load(); at != nil {
				cutOff.Store(int64(time.Since(*at)))
			}
			// Whatever it reports, the dispatcher cannot trust it: the call was cut off.
			return Outcome{Kind: dispatch.Done, Result: []byte("cut off")}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Grace: grace})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()

		receive(t, started, "the call to start")
		now := time.Now()
		cancelledAt.Store(&now)
		cancel()
		if err := receive(t, done, "Run to return"); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if c := time.Duration(cutOff.Load()); c < grace {
			t.Errorf("the call was cut off %v after shutdown began, before the %v grace period", c, grace)
		}
		got, err := s.Operation(t.Context(), op.ID)
		if err != nil || got.State != queue.Running || got.Attempts != 1 || len(got.Result) != 0 || !got.FinishedAt.IsZero() {
			t.Fatalf("cut-off operation: State %q, Attempts %d, Result %q, %v; want left running for replay", got.State, got.Attempts, got.Result, err)
		}
		if got, err := s.Operation(t.Context(), waiting.ID); err != nil || got.State != queue.Queued || got.Attempts != 0 {
			t.Fatalf("next operation: State %q, Attempts %d, %v; want untouched", got.State, got.Attempts, err)
		}

		// The next start replays it.
		calls := make(chan queue.Operation, 10)
		q := dispatch.NewDispatchers[groups.Effect](s, nil, nil)
		q.Put(Config{Tenant: "SHIP", Handler: HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- o
			return Outcome{Kind: dispatch.Done}
		})})
		startRun(t, q.Run)
		if got := receive(t, calls, "the replay"); got.ID != op.ID || got.Attempts != 2 {
			t.Fatalf("replay: %s attempt %d, want %s attempt 2", got.Target, got.Attempts, op.Target)
		}
		waitSettled(t, s, waiting.ID)
	})
}

func TestDispatchersRunningReportsStopped(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		q := dispatch.NewDispatchers[groups.Effect](s, nil, nil)
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			return Outcome{Kind: dispatch.Done}
		})
		for _, tenant := range []string{"SHIP", "DOCK"} {
			q.Put(Config{Tenant: tenant, Handler: h})
		}
		check := func(wantOK bool, wantStopped ...string) {
			t.Helper()
			ok, stopped := q.Running()
			slices.Sort(stopped)
			if ok != wantOK || !slices.Equal(stopped, wantStopped) {
				t.Fatalf("Running() = %v, %q; want %v, %q", ok, stopped, wantOK, wantStopped)
			}
		}
		check(false, "DOCK", "SHIP")

		stop := startRun(t, q.Run)
		eventually(t, "every dispatcher to run", func() bool { ok, _ := q.Running(); return ok })
		check(true)

		// Wake reaches the tenant's dispatcher; an unknown tenant is ignored.
		// Settled signals the operation's end.
		op := enqueue(t, s, "DOCK", "a")
		settled, stopWaiting := q.Settled().Wait(op.ID)
		defer stopWaiting()
		q.Wake("NOBODY")
		q.Wake("DOCK")
		receive(t, settled, "the Settled signal")
		if got, err := s.Operation(t.Context(), op.ID); err != nil || got.State != queue.Succeeded {
			t.Fatalf("State %q, %v; want succeeded when Settled signals", got.State, err)
		}

		stop()
		check(false, "DOCK", "SHIP")
	})
}

// TestDispatcherThrottledWithoutRetryAfterBacksOff: Outcome.RetryAfter says
// "zero lets the retry policy choose", but a throttled retry without one is
// rescheduled at once.
func TestDispatcherThrottledWithoutRetryAfterBacksOff(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		clock := newFakeClock()
		op := enqueue(t, s, "SHIP", "a")
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			return Outcome{Kind: dispatch.Retry, Throttled: true, Reason: "TechPass answered HTTP 429"}
		})
		policy := dispatch.RetryPolicy{BaseDelay: 10 * time.Second, Rand: func() float64 { return 0.5 }}
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now, Retry: policy})
		startRun(t, d.Run)
		got := waitOp(t, s, op.ID, "the retry to be scheduled", func(o queue.Operation) bool { return o.State == queue.Queued && o.Attempts >= 1 })
		if got.Attempts != 1 || !got.NotBefore.After(t0) || got.Failures != 0 {
			t.Fatalf("after a throttled answer without Retry-After: Attempts %d, NotBefore t0+%v, Failures %d; want 1, a policy backoff, 0",
				got.Attempts, got.NotBefore.Sub(t0), got.Failures)
		}
	})
}

// TestDispatcherRetriesForAWindowNotACount: with a retry window and no
// bound on the count, an operation is retried through any number of
// transient failures, throttling answers and failed checks until the window
// (from its first failure) runs out; only attempts' failures are counted,
// the last try comes at the window's end, and a step's progress starts the
// window over.
func TestDispatcherRetriesForAWindowNotACount(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		s := newCountingStore(base)
		clock := newFakeClock()
		op := enqueue(t, s, "SHIP", "a")

		outcomes := []Outcome{
			{Kind: dispatch.Retry, Reason: "HTTP 503"},                                           // t0: a window opens
			{Kind: dispatch.Continue, Progress: []byte("1")},                                     // t0+20s: progress closes it
			{Kind: dispatch.Retry, Reason: "HTTP 502"},                                           // t0+20s: the next opens
			{Kind: dispatch.Retry, Check: true, Reason: "list: HTTP 500"},                        // t0+40s: not counted
			{Kind: dispatch.Retry, Throttled: true, RetryAfter: 30 * time.Second, Reason: "429"}, // t0+60s: not counted
			{Kind: dispatch.Retry, Reason: "HTTP 503"},                                           // t0+90s
			{Kind: dispatch.Retry, Reason: "HTTP 503"},                                           // t0+110s
			{Kind: dispatch.Retry, Reason: "HTTP 503"},                                           // t0+130s: 20s would pass the end
			{Kind: dispatch.Retry, Reason: "timeout"},                                            // t0+140s: the window is over
		}
		calls := make(chan queue.Operation, len(outcomes))
		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- o
			return outcomes[o.Attempts-1]
		})
		policy := dispatch.RetryPolicy{MaxDuration: 2 * time.Minute, BaseDelay: 40 * time.Second, MaxDelay: 40 * time.Second, Rand: func() float64 { return 0.5 }}
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Now: clock.Now, Retry: policy, Endings: wording{}})
		startRun(t, d.Run)

		steps := []struct {
			wait     time.Duration // until the next try
			failures int
			since    time.Duration // FailingSince after t0; -1 for zero
		}{
			{20 * time.Second, 1, 0},
			{0, 0, -1},
			{20 * time.Second, 1, 20 * time.Second},
			{20 * time.Second, 1, 20 * time.Second},
			{30 * time.Second, 1, 20 * time.Second},
			{20 * time.Second, 2, 20 * time.Second},
			{20 * time.Second, 3, 20 * time.Second},
			{10 * time.Second, 4, 20 * time.Second}, // the window ends at t0+140s
		}
		for i, step := range steps {
			attempt := i + 1
			receive(t, calls, fmt.Sprint("attempt ", attempt))
			if step.since < 0 {
				// A step's progress: the next step runs at once. That the
				// window started over shows in the next attempt's FailingSince.
				continue
			}
			got := waitOp(t, s, op.ID, fmt.Sprint("attempt ", attempt, " to be committed"), func(o queue.Operation) bool {
				return o.State == queue.Queued && o.Attempts == attempt
			})
			wantSince, wantNotBefore := t0.Add(step.since), clock.Now().Add(step.wait)
			if got.Failures != step.failures || !got.FailingSince.Equal(wantSince) || !got.NotBefore.Equal(wantNotBefore) {
				t.Fatalf("after attempt %d: Failures %d, FailingSince %v, NotBefore %v; want %d, %v, %v",
					attempt, got.Failures, got.FailingSince, got.NotBefore, step.failures, wantSince, wantNotBefore)
			}
			retryAfter(t, d, s, clock, calls, attempt, step.wait)
		}
		receive(t, calls, "the last attempt")
		got := waitSettled(t, s, op.ID)
		if got.State != queue.Failed || got.Failure == nil || got.Failure.Status != 502 ||
			!strings.Contains(got.Failure.Detail, "within 2m0s") || !strings.Contains(got.Failure.Detail, "timeout") {
			t.Fatalf("after the window: State %q, Failure %+v; want failed, 502, naming the window and the last error", got.State, got.Failure)
		}
	})
}

// TestDispatcherUnusableEffectFailsOnce: an outcome whose effects can never
// be applied (a handler's bug: a nil effect) fails its operation once as
// unworkable, with its Undo effects, instead of retrying the commit until
// shutdown; the queue goes on. Before, the commit was retried for ever and
// the operations behind it never ran.
func TestDispatcherUnusableEffectFailsOnce(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
		n := groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
		created := createGroup(t, s, n)
		stepped := enqueue(t, s, "SHIP", "a step with a nil effect")
		next := enqueue(t, s, "SHIP", "next")

		h := HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			switch o.ID {
			case created.ID:
				return Outcome{Kind: dispatch.Done, Effects: []groups.Effect{groups.Created{Name: n, UpstreamID: "g-1", At: t0}, nil}}
			case stepped.ID:
				return Outcome{Kind: dispatch.Continue, Progress: []byte(`{}`), Effects: []groups.Effect{nil}}
			}
			return Outcome{Kind: dispatch.Done}
		})
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: h, Endings: wording{}, Undo: groups.Undo})
		startRun(t, d.Run)

		if got := waitSettled(t, s, next.ID); got.State != queue.Succeeded {
			t.Fatalf("the operation behind them: State %q, want succeeded", got.State)
		}
		for _, id := range []string{created.ID, stepped.ID} {
			got := waitSettled(t, s, id)
			if got.State != queue.Failed || got.Failure == nil || got.Failure.Title != "Unworkable" || got.Attempts != 1 {
				t.Errorf("operation %s: State %q, Failure %+v, Attempts %d; want failed once as unworkable", id, got.State, got.Failure, got.Attempts)
			}
		}
		// The create's Undo released the reservation; Created was not applied.
		if g, err := s.Group(t.Context(), n); err == nil {
			t.Errorf("group after the failed create: %+v, want the reservation released", g)
		}
		if depth, _ := s.Depth(t.Context(), "SHIP"); depth.Total != 0 {
			t.Errorf("Depth = %+v, want 0", depth)
		}
	})
}
