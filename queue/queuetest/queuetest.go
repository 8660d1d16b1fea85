// Package queuetest is the conformance suite for queue.Store
// implementations.
//
// Every backend runs the same cases, so the behaviour the Dispatcher and the
// API rely on (per-project queue order, atomic read-modify-write, completion
// that takes an operation off the queue, crash recovery, queue limits,
// idempotency keys) is specified once, and a new backend, such as the
// PostgreSQL one planned for multi-replica use, is checked against it by a
// ten-line test:
//
//	func TestQueueStore(t *testing.T) {
//		queuetest.RunStoreTests(t, func(t *testing.T) queue.Store[Effect] { return MustOpenStore(t) }, failingEffect)
//	}
//
// newStore must return a new, empty store for each call and arrange its own
// clean-up (and any integrity check) with t.Cleanup.
//
// Time is passed in: the cases use a fixed timeline starting in 2026, with
// whole-millisecond times, so a backend may round stored times to the
// microsecond. Enqueue has no now argument; it must judge whether an
// idempotency key has expired at the operation's CreatedAt, never at the
// wall clock.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
)

// t0 is the fixed time the cases stamp operations with.
var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// RunStoreTests runs the sequential conformance cases, each in its own
// subtest on a fresh store from newStore. failing is an effect of the
// store's type whose application fails: the cases commit it to check that a
// failed commit writes nothing.
func RunStoreTests[E any](t *testing.T, newStore func(*testing.T) queue.Store[E], failing E) {
	t.Helper()
	testkit.RunCases(t, adapt(newStore, failing), []testkit.Case[Store]{
		{Name: "EnqueueStoresQueuedWithIncreasingSeq", Run: testEnqueue},
		{Name: "EnqueueRoundTripsEveryField", Run: testRoundTrip},
		{Name: "OperationUnknownID", Run: testOperationNotFound},
		{Name: "HeadFollowsQueueOrder", Run: testHeadOrder},
		{Name: "HeadEmpty", Run: testHeadEmpty},
		{Name: "HeadIncludesRunning", Run: testHeadRunning},
		{Name: "HeadIsLowestSeqAcrossProjects", Run: testHeadAcrossProjects},
		{Name: "HeadsOnePerProject", Run: testHeads},
		{Name: "TenantsAreIndependent", Run: testTenantsIndependent},
		{Name: "UpdateOperationApplies", Run: testUpdateApplies},
		{Name: "UpdateOperationErrorWritesNothing", Run: testUpdateFnError},
		{Name: "UpdateOperationUnknownID", Run: testUpdateNotFound},
		{Name: "CompleteSucceeded", Run: testCompleteSucceeded},
		{Name: "CompleteFailed", Run: testCompleteFailed},
		{Name: "CompleteOutOfOrder", Run: testCompleteOutOfOrder},
		{Name: "CompleteFailingEffectWritesNothing", Run: testCompleteFailingEffect},
		{Name: "ProgressKeepsPlace", Run: testProgress},
		{Name: "ProgressFailingEffectWritesNothing", Run: testProgressFailingEffect},
		{Name: "FinishCancels", Run: testFinish},
		{Name: "FinishErrorWritesNothing", Run: testFinishFnError},
		{Name: "RequeueRunning", Run: testRequeueRunning},
		{Name: "Depth", Run: testDepth},
		{Name: "Place", Run: testPlace},
		{Name: "EnqueueQueueFull", Run: testQueueFull},
		{Name: "IdempotencyReplayAndMismatch", Run: testIdempotency},
		{Name: "IdempotencyExpiryAndPurge", Run: testIdempotencyExpiry},
	})
}

// RunConcurrencyTests runs the cases that hammer a store from many
// goroutines. Run them under the race detector.
func RunConcurrencyTests[E any](t *testing.T, newStore func(*testing.T) queue.Store[E], failing E) {
	t.Helper()
	testkit.RunCases(t, adapt(newStore, failing), []testkit.Case[Store]{
		{Name: "ConcurrentEnqueue", Run: testConcurrentEnqueue},
		{Name: "ConcurrentUpdateIsAtomic", Run: testConcurrentUpdate},
		{Name: "ConcurrentEnqueueAndComplete", Run: testConcurrentEnqueueAndComplete},
		{Name: "ConcurrentEnqueueRespectsLimits", Run: testConcurrentLimits},
		{Name: "ConcurrentIdempotentTwins", Run: testConcurrentTwins},
	})
}

// Effect stands for the store's effects in the cases: they commit none, or
// Failing, the RunStoreTests argument whose application fails.
type Effect int

// Failing is the failing effect.
const Failing Effect = 1

// Store is a queue.Store[E] as the cases see it (see Effect).
type Store interface {
	Enqueue(ctx context.Context, op queue.Operation, limits queue.Limits) (queue.Operation, error)
	Operation(ctx context.Context, id string) (queue.Operation, error)
	Heads(ctx context.Context, tenant string) ([]queue.Operation, error)
	Head(ctx context.Context, tenant string) (queue.Operation, error)
	UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error)
	Complete(ctx context.Context, op queue.Operation, effects []Effect) error
	Progress(ctx context.Context, op queue.Operation, effects []Effect) error
	Finish(ctx context.Context, id string, fn func(*queue.Operation) ([]Effect, error)) (queue.Operation, error)
	RequeueRunning(ctx context.Context, tenant string, now time.Time) (int, error)
	Depth(ctx context.Context, tenant string) (queue.Depth, error)
	Place(ctx context.Context, op queue.Operation) (int, queue.Depth, error)
	Idempotent(ctx context.Context, scope, key string, now time.Time) (opID, fingerprint string, ok bool, err error)
	PurgeIdempotency(ctx context.Context, now time.Time) (int, error)
}

// adapt turns newStore into the cases' newStore.
func adapt[E any](newStore func(*testing.T) queue.Store[E], failing E) func(*testing.T) Store {
	return func(t *testing.T) Store { return adapter[E]{newStore(t), failing} }
}

// adapter is a queue.Store[E] as a Store.
type adapter[E any] struct {
	s       queue.Store[E]
	failing E
}

func (a adapter[E]) effects(es []Effect) []E {
	var out []E
	for range es {
		out = append(out, a.failing)
	}
	return out
}

func (a adapter[E]) Enqueue(ctx context.Context, op queue.Operation, limits queue.Limits) (queue.Operation, error) {
	return a.s.Enqueue(ctx, op, limits)
}
func (a adapter[E]) Operation(ctx context.Context, id string) (queue.Operation, error) {
	return a.s.Operation(ctx, id)
}
func (a adapter[E]) Heads(ctx context.Context, tenant string) ([]queue.Operation, error) {
	return a.s.Heads(ctx, tenant)
}
func (a adapter[E]) Head(ctx context.Context, tenant string) (queue.Operation, error) {
	return a.s.Head(ctx, tenant)
}
func (a adapter[E]) UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error) {
	return a.s.UpdateOperation(ctx, id, fn)
}
func (a adapter[E]) Complete(ctx context.Context, op queue.Operation, effects []Effect) error {
	return a.s.Complete(ctx, op, a.effects(effects))
}
func (a adapter[E]) Progress(ctx context.Context, op queue.Operation, effects []Effect) error {
	return a.s.Progress(ctx, op, a.effects(effects))
}
func (a adapter[E]) Finish(ctx context.Context, id string, fn func(*queue.Operation) ([]Effect, error)) (queue.Operation, error) {
	return a.s.Finish(ctx, id, func(op *queue.Operation) ([]E, error) {
		es, err := fn(op)
		return a.effects(es), err
	})
}
func (a adapter[E]) RequeueRunning(ctx context.Context, tenant string, now time.Time) (int, error) {
	return a.s.RequeueRunning(ctx, tenant, now)
}
func (a adapter[E]) Depth(ctx context.Context, tenant string) (queue.Depth, error) {
	return a.s.Depth(ctx, tenant)
}
func (a adapter[E]) Place(ctx context.Context, op queue.Operation) (int, queue.Depth, error) {
	return a.s.Place(ctx, op)
}
func (a adapter[E]) Idempotent(ctx context.Context, scope, key string, now time.Time) (string, string, bool, error) {
	return a.s.Idempotent(ctx, scope, key, now)
}
func (a adapter[E]) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	return a.s.PurgeIdempotency(ctx, now)
}

// noLimits is no queue limit.
var noLimits = queue.Limits{}

// newOp returns an operation of project MOH ready to enqueue, with every
// field the caller sets filled in.
func newOp(tenant, target string) queue.Operation {
	return newOpIn(tenant, "MOH", target)
}

func newOpIn(tenant, project, target string) queue.Operation {
	return queue.Operation{
		ID: queue.NewID(), Tenant: tenant, Project: project, Kind: "test.op", Target: target,
		Payload: []byte(`{"target":"` + target + `"}`), Actor: "key:ci", State: queue.Queued,
		CreatedAt: t0, UpdatedAt: t0,
	}
}

func mustEnqueue(t *testing.T, s Store, tenant, target string) queue.Operation {
	t.Helper()
	return mustEnqueueOp(t, s, newOp(tenant, target))
}

func mustEnqueueIn(t *testing.T, s Store, tenant, project, target string) queue.Operation {
	t.Helper()
	return mustEnqueueOp(t, s, newOpIn(tenant, project, target))
}

func mustEnqueueOp(t *testing.T, s Store, op queue.Operation) queue.Operation {
	t.Helper()
	got, err := s.Enqueue(t.Context(), op, noLimits)
	return must(t, fmt.Sprintf("Enqueue(%s %s:%s)", op.Target, op.Tenant, op.Project), got, err)
}

// must returns v, failing t with what and err when err is not nil.
func must[T any](t *testing.T, what string, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func mustOperation(t *testing.T, s Store, id string) queue.Operation {
	t.Helper()
	op, err := s.Operation(t.Context(), id)
	return must(t, "Operation("+id+")", op, err)
}

func mustUpdate(t *testing.T, s Store, id string, fn func(*queue.Operation)) queue.Operation {
	t.Helper()
	op, err := s.UpdateOperation(t.Context(), id, func(o *queue.Operation) error { fn(o); return nil })
	return must(t, "UpdateOperation("+id+")", op, err)
}

// markRunning does what a Dispatcher does when it starts an operation.
func markRunning(t *testing.T, s Store, id string) queue.Operation {
	t.Helper()
	return mustUpdate(t, s, id, func(o *queue.Operation) {
		o.State, o.Attempts, o.StartedAt, o.UpdatedAt = queue.Running, o.Attempts+1, t0, t0
	})
}

// succeed completes op as Succeeded with result.
func succeed(t *testing.T, s Store, op queue.Operation, result string) queue.Operation {
	t.Helper()
	op.State, op.Result, op.FinishedAt, op.UpdatedAt = queue.Succeeded, []byte(result), t0.Add(time.Second), t0.Add(time.Second)
	if err := s.Complete(t.Context(), op, nil); err != nil {
		t.Fatalf("Complete(%s): %v", op.ID, err)
	}
	return op
}

func mustHead(t *testing.T, s Store, tenant string) queue.Operation {
	t.Helper()
	op, err := s.Head(t.Context(), tenant)
	return must(t, "Head("+tenant+")", op, err)
}

func wantHead(t *testing.T, s Store, tenant, id string) {
	t.Helper()
	if got := mustHead(t, s, tenant); got.ID != id {
		t.Fatalf("Head(%s) = %s (%s), want %s", tenant, got.ID, got.Target, id)
	}
}

func wantEmpty(t *testing.T, s Store, tenant string) {
	t.Helper()
	op, err := s.Head(t.Context(), tenant)
	if !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("Head(%s) = %s, %v; want ErrEmpty", tenant, op.ID, err)
	}
}

// WantDepth fails t unless s holds want operations, queued or running, for
// tenant. Other conformance suites whose stores queue operations use it too.
func WantDepth(t *testing.T, s interface {
	Depth(ctx context.Context, tenant string) (queue.Depth, error)
}, tenant string, want int) {
	t.Helper()
	got, err := s.Depth(t.Context(), tenant)
	if err != nil {
		t.Fatalf("Depth(%s): %v", tenant, err)
	}
	if got.Total != want {
		t.Fatalf("Depth(%s).Total = %d, want %d", tenant, got.Total, want)
	}
}

// WantNoOp fails t unless s has no operation id: nothing was written.
func WantNoOp(t *testing.T, s interface {
	Operation(ctx context.Context, id string) (queue.Operation, error)
}, id string) {
	t.Helper()
	if op, err := s.Operation(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Operation(%s) = %s %s, %v; want ErrNotFound (nothing written)", id, op.Kind, op.State, err)
	}
}

// normalize makes operations comparable across a store round trip: times
// lose their monotonic reading and location, and empty byte slices are nil.
func normalize(op queue.Operation) queue.Operation {
	for _, p := range []*time.Time{&op.NotBefore, &op.CreatedAt, &op.UpdatedAt, &op.StartedAt, &op.FinishedAt} {
		if !p.IsZero() {
			*p = p.Round(0).UTC()
		}
	}
	if len(op.Payload) == 0 {
		op.Payload = nil
	}
	if len(op.Result) == 0 {
		op.Result = nil
	}
	return op
}

// wantSame fails unless got and want are the same operation, field by field.
func wantSame(t *testing.T, what string, got, want queue.Operation) {
	t.Helper()
	got, want = normalize(got), normalize(want)
	if reflect.DeepEqual(got, want) {
		return
	}
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s: %s = %s, want %s", what, gv.Type().Field(i).Name, show(gv.Field(i).Interface()), show(wv.Field(i).Interface()))
		}
	}
	t.FailNow()
}

func show(v any) string {
	switch v := v.(type) {
	case []byte:
		return fmt.Sprintf("%q", v)
	case *queue.Failure:
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%+v", *v)
	}
	return fmt.Sprintf("%v", v)
}

// --- cases ------------------------------------------------------------------

func testEnqueue(t *testing.T, s Store) {
	var last uint64
	for i := range 5 {
		op := newOp("SHIP", fmt.Sprint("g", i))
		// The store, not the caller, decides State and Seq.
		op.State, op.Seq = queue.Failed, 999
		got, err := s.Enqueue(t.Context(), op, noLimits)
		if err != nil {
			t.Fatalf("Enqueue #%d: %v", i, err)
		}
		if got.State != queue.Queued {
			t.Errorf("Enqueue #%d: State = %q, want %q", i, got.State, queue.Queued)
		}
		if i > 0 && got.Seq <= last {
			t.Errorf("Enqueue #%d: Seq = %d, not after the previous %d", i, got.Seq, last)
		}
		last = got.Seq
		wantSame(t, "Operation after Enqueue", mustOperation(t, s, op.ID), got)
	}
}

func testRoundTrip(t *testing.T, s Store) {
	op := newOp("SHIP", "SHIP:MOH:billing")
	op.Attempts, op.Failures, op.LastError = 2, 1, "TechPass answered HTTP 503"
	op.NotBefore = t0.Add(1500 * time.Millisecond)
	op.StartedAt = t0.Add(time.Millisecond)
	got, err := s.Enqueue(t.Context(), op, noLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := op
	want.Seq = got.Seq
	wantSame(t, "Enqueue result", got, want)
	wantSame(t, "Operation", mustOperation(t, s, op.ID), want)
}

func testOperationNotFound(t *testing.T, s Store) {
	if _, err := s.Operation(t.Context(), queue.NewID()); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Operation(empty store) error = %v, want ErrNotFound", err)
	}
	mustEnqueue(t, s, "SHIP", "a")
	if _, err := s.Operation(t.Context(), queue.NewID()); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Operation(unknown id) error = %v, want ErrNotFound", err)
	}
}

func testHeadOrder(t *testing.T, s Store) {
	ops := make([]queue.Operation, 4)
	for i := range ops {
		ops[i] = mustEnqueue(t, s, "SHIP", fmt.Sprint("g", i))
	}
	for i, op := range ops {
		head := mustHead(t, s, "SHIP")
		wantSame(t, fmt.Sprintf("Head before completing #%d", i), head, op)
		succeed(t, s, head, "ok")
	}
	wantEmpty(t, s, "SHIP")
}

func testHeadEmpty(t *testing.T, s Store) {
	wantEmpty(t, s, "SHIP")
	op := mustEnqueue(t, s, "SHIP", "a")
	wantEmpty(t, s, "OTHER")
	succeed(t, s, op, "ok")
	wantEmpty(t, s, "SHIP")
}

func testHeadRunning(t *testing.T, s Store) {
	first := mustEnqueue(t, s, "SHIP", "a")
	mustEnqueue(t, s, "SHIP", "b")
	running := markRunning(t, s, first.ID)
	head := mustHead(t, s, "SHIP")
	wantSame(t, "Head with a running first operation", head, running)
}

func testTenantsIndependent(t *testing.T, s Store) {
	a1 := mustEnqueue(t, s, "SHIP", "a1")
	b1 := mustEnqueue(t, s, "DOCK", "b1")
	a2 := mustEnqueue(t, s, "SHIP", "a2")
	b2 := mustEnqueue(t, s, "DOCK", "b2")
	wantHead(t, s, "SHIP", a1.ID)
	wantHead(t, s, "DOCK", b1.ID)
	WantDepth(t, s, "SHIP", 2)
	WantDepth(t, s, "DOCK", 2)

	succeed(t, s, a1, "ok")
	wantHead(t, s, "SHIP", a2.ID)
	wantHead(t, s, "DOCK", b1.ID)
	WantDepth(t, s, "DOCK", 2)

	markRunning(t, s, b1.ID)
	if n, err := s.RequeueRunning(t.Context(), "SHIP", t0); err != nil || n != 0 {
		t.Fatalf("RequeueRunning(SHIP) = %d, %v; want 0 (the running one is DOCK's)", n, err)
	}
	if n, err := s.RequeueRunning(t.Context(), "DOCK", t0); err != nil || n != 1 {
		t.Fatalf("RequeueRunning(DOCK) = %d, %v; want 1", n, err)
	}
	succeed(t, s, mustOperation(t, s, b1.ID), "ok")
	wantHead(t, s, "DOCK", b2.ID)
	wantHead(t, s, "SHIP", a2.ID)
}

func testUpdateApplies(t *testing.T, s Store) {
	op := mustEnqueue(t, s, "SHIP", "a")
	notBefore := t0.Add(30 * time.Second)
	var seen queue.Operation
	got, err := s.UpdateOperation(t.Context(), op.ID, func(o *queue.Operation) error {
		seen = *o
		o.State, o.Attempts, o.Failures = queue.Queued, 3, 2
		o.NotBefore, o.LastError, o.UpdatedAt = notBefore, "TechPass did not answer in time", t0.Add(time.Second)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateOperation: %v", err)
	}
	wantSame(t, "operation passed to fn", seen, op)
	want := op
	want.Attempts, want.Failures = 3, 2
	want.NotBefore, want.LastError, want.UpdatedAt = notBefore, "TechPass did not answer in time", t0.Add(time.Second)
	wantSame(t, "UpdateOperation result", got, want)
	wantSame(t, "Operation after UpdateOperation", mustOperation(t, s, op.ID), want)

	// fn sees the previous update.
	mustUpdate(t, s, op.ID, func(o *queue.Operation) {
		if o.Attempts != 3 {
			t.Errorf("second update sees Attempts = %d, want 3", o.Attempts)
		}
	})
	wantHead(t, s, "SHIP", op.ID)
}

func testUpdateFnError(t *testing.T, s Store) {
	op := mustEnqueue(t, s, "SHIP", "a")
	boom := errors.New("boom")
	_, err := s.UpdateOperation(t.Context(), op.ID, func(o *queue.Operation) error {
		o.State, o.Attempts, o.LastError = queue.Running, 7, "should not be stored"
		return fmt.Errorf("deciding: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateOperation error = %v, want fn's error", err)
	}
	wantSame(t, "Operation after failed update", mustOperation(t, s, op.ID), op)
	if n, err := s.RequeueRunning(t.Context(), "SHIP", t0); err != nil || n != 0 {
		t.Fatalf("RequeueRunning after failed update = %d, %v; want 0", n, err)
	}
}

func testUpdateNotFound(t *testing.T, s Store) {
	mustEnqueue(t, s, "SHIP", "a")
	called := false
	_, err := s.UpdateOperation(t.Context(), queue.NewID(), func(*queue.Operation) error { called = true; return nil })
	if !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("UpdateOperation(unknown id) error = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("fn was called for an unknown id")
	}
}

func testCompleteSucceeded(t *testing.T, s Store) {
	first := mustEnqueue(t, s, "SHIP", "a")
	second := mustEnqueue(t, s, "SHIP", "b")
	running := markRunning(t, s, first.ID)
	done := succeed(t, s, running, `{"upstreamId":"g-1"}`)

	got := mustOperation(t, s, first.ID)
	wantSame(t, "Operation after Complete", got, done)
	if got.State != queue.Succeeded || string(got.Result) != `{"upstreamId":"g-1"}` || got.FinishedAt.IsZero() {
		t.Errorf("completed operation = %s result %q finished %v", got.State, got.Result, got.FinishedAt)
	}
	wantHead(t, s, "SHIP", second.ID)
	WantDepth(t, s, "SHIP", 1)
	if n, err := s.RequeueRunning(t.Context(), "SHIP", t0); err != nil || n != 0 {
		t.Fatalf("RequeueRunning after Complete = %d, %v; want 0 (a completed operation is not requeued)", n, err)
	}
}

func testCompleteFailed(t *testing.T, s Store) {
	op := markRunning(t, s, mustEnqueue(t, s, "SHIP", "a").ID)
	op.State, op.FinishedAt, op.UpdatedAt = queue.Failed, t0.Add(time.Second), t0.Add(time.Second)
	op.Failure = &queue.Failure{Status: 502, Title: "Upstream unavailable", Detail: "TechPass did not succeed; last error: HTTP 503"}
	if err := s.Complete(t.Context(), op, nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got := mustOperation(t, s, op.ID)
	wantSame(t, "Operation after failing Complete", got, op)
	if got.Failure == nil || got.Failure.Status != 502 {
		t.Errorf("Failure = %s, want status 502", show(got.Failure))
	}
	wantEmpty(t, s, "SHIP")
	WantDepth(t, s, "SHIP", 0)
}

func testCompleteOutOfOrder(t *testing.T, s Store) {
	a := mustEnqueue(t, s, "SHIP", "a")
	b := mustEnqueue(t, s, "SHIP", "b")
	c := mustEnqueue(t, s, "SHIP", "c")
	succeed(t, s, b, "ok")
	wantHead(t, s, "SHIP", a.ID)
	WantDepth(t, s, "SHIP", 2)
	succeed(t, s, a, "ok")
	wantHead(t, s, "SHIP", c.ID)
}

func testCompleteFailingEffect(t *testing.T, s Store) {
	op := markRunning(t, s, mustEnqueue(t, s, "SHIP", "a").ID)
	done := op
	done.State, done.Result, done.FinishedAt = queue.Succeeded, []byte("ok"), t0.Add(time.Second)
	if err := s.Complete(t.Context(), done, []Effect{Failing}); err == nil {
		t.Fatal("Complete with a failing effect succeeded, want an error")
	}
	wantSame(t, "Operation after a failed Complete", mustOperation(t, s, op.ID), op)
	wantHead(t, s, "SHIP", op.ID)
	WantDepth(t, s, "SHIP", 1)
}

func testProgress(t *testing.T, s Store) {
	op := markRunning(t, s, mustEnqueue(t, s, "SHIP", "a").ID)
	second := mustEnqueue(t, s, "SHIP", "b")
	op.State, op.Progress, op.UpdatedAt = queue.Queued, []byte(`{"done":1}`), t0.Add(time.Second)
	if err := s.Progress(t.Context(), op, nil); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	got := mustOperation(t, s, op.ID)
	wantSame(t, "Operation after Progress", got, op)
	if string(got.Progress) != `{"done":1}` || got.State != queue.Queued {
		t.Errorf("after Progress: state %s, progress %q; want queued with the progress", got.State, got.Progress)
	}
	wantHead(t, s, "SHIP", op.ID)
	WantDepth(t, s, "SHIP", 2)
	succeed(t, s, markRunning(t, s, op.ID), "ok")
	wantHead(t, s, "SHIP", second.ID)
}

func testProgressFailingEffect(t *testing.T, s Store) {
	op := markRunning(t, s, mustEnqueue(t, s, "SHIP", "a").ID)
	next := op
	next.State, next.Progress = queue.Queued, []byte("1")
	if err := s.Progress(t.Context(), next, []Effect{Failing}); err == nil {
		t.Fatal("Progress with a failing effect succeeded, want an error")
	}
	wantSame(t, "Operation after a failed Progress", mustOperation(t, s, op.ID), op)
}

func testRequeueRunning(t *testing.T, s Store) {
	a := mustEnqueue(t, s, "SHIP", "a")
	b := mustEnqueue(t, s, "SHIP", "b")
	c := mustEnqueueIn(t, s, "SHIP", "HR", "c")
	d := mustEnqueue(t, s, "DOCK", "d")
	done := mustEnqueue(t, s, "SHIP", "done")
	markRunning(t, s, a.ID)
	markRunning(t, s, c.ID)
	markRunning(t, s, d.ID)
	succeed(t, s, markRunning(t, s, done.ID), "ok")

	// Each tenant's dispatcher requeues its own tenant's operations only.
	n, err := s.RequeueRunning(t.Context(), "SHIP", t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("RequeueRunning(SHIP): %v", err)
	}
	if n != 2 {
		t.Fatalf("RequeueRunning(SHIP) = %d, want 2", n)
	}
	if got := mustOperation(t, s, d.ID); got.State != queue.Running {
		t.Fatalf("DOCK's operation: State = %q after RequeueRunning(SHIP), want running (another tenant's)", got.State)
	}
	if n, err := s.RequeueRunning(t.Context(), "DOCK", t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("RequeueRunning(DOCK) = %d, %v; want 1", n, err)
	}
	for _, id := range []string{a.ID, b.ID, c.ID, d.ID} {
		got := mustOperation(t, s, id)
		if got.State != queue.Queued {
			t.Errorf("%s (%s): State = %q after RequeueRunning, want queued", got.Target, id, got.State)
		}
	}
	for _, id := range []string{a.ID, c.ID} {
		if got := mustOperation(t, s, id); got.Attempts != 1 {
			t.Errorf("%s: Attempts = %d after RequeueRunning, want 1 (kept)", got.Target, got.Attempts)
		}
	}
	if got := mustOperation(t, s, done.ID); got.State != queue.Succeeded {
		t.Errorf("completed operation: State = %q after RequeueRunning, want succeeded", got.State)
	}
	// Requeued operations keep their place.
	for _, want := range []queue.Operation{a, b, c} {
		head := mustHead(t, s, "SHIP")
		if head.ID != want.ID {
			t.Fatalf("Head = %s, want %s", head.Target, want.Target)
		}
		succeed(t, s, head, "ok")
	}
	wantHead(t, s, "DOCK", d.ID)

	for _, tenant := range []string{"SHIP", "DOCK"} {
		if n, err := s.RequeueRunning(t.Context(), tenant, t0); err != nil || n != 0 {
			t.Fatalf("second RequeueRunning(%s) = %d, %v; want 0", tenant, n, err)
		}
	}
}

func testDepth(t *testing.T, s Store) {
	WantDepth(t, s, "SHIP", 0)
	var ops []queue.Operation
	for i := range 3 {
		ops = append(ops, mustEnqueue(t, s, "SHIP", fmt.Sprint("g", i)))
		WantDepth(t, s, "SHIP", i+1)
	}
	hr := mustEnqueueIn(t, s, "SHIP", "HR", "h")
	mustEnqueue(t, s, "DOCK", "x")
	markRunning(t, s, ops[0].ID)
	WantDepth(t, s, "SHIP", 4) // running counts as pending
	succeed(t, s, mustOperation(t, s, ops[0].ID), "ok")
	d, err := s.Depth(t.Context(), "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	if d.Total != 3 || d.Projects["MOH"] != 2 || d.Projects["HR"] != 1 || len(d.Projects) != 2 {
		t.Fatalf("Depth(SHIP) = %+v, want 3 in all: MOH 2, HR 1", d)
	}
	succeed(t, s, hr, "ok")
	if d, _ := s.Depth(t.Context(), "SHIP"); d.Total != 2 || d.Projects["HR"] != 0 {
		t.Fatalf("Depth(SHIP) after HR's only operation = %+v, want 2 in all, none for HR", d)
	}
	WantDepth(t, s, "DOCK", 1)
	WantDepth(t, s, "NOBODY", 0)
}

func testHeadAcrossProjects(t *testing.T, s Store) {
	h1 := mustEnqueueIn(t, s, "SHIP", "HR", "h1")
	m1 := mustEnqueueIn(t, s, "SHIP", "MOH", "m1")
	h2 := mustEnqueueIn(t, s, "SHIP", "HR", "h2")
	a1 := mustEnqueueIn(t, s, "SHIP", "ADM", "a1")
	for _, want := range []queue.Operation{h1, m1, h2, a1} {
		head := mustHead(t, s, "SHIP")
		if head.ID != want.ID {
			t.Fatalf("Head = %s, want %s (lowest Seq of all projects)", head.Target, want.Target)
		}
		succeed(t, s, head, "ok")
	}
	wantEmpty(t, s, "SHIP")
}

func heads(t *testing.T, s Store, tenant string) []string {
	t.Helper()
	hs, err := s.Heads(t.Context(), tenant)
	if err != nil {
		t.Fatalf("Heads(%s): %v", tenant, err)
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Project + "/" + h.Target
	}
	return out
}

func wantHeads(t *testing.T, s Store, tenant string, want ...string) {
	t.Helper()
	if got := heads(t, s, tenant); !slices.Equal(got, want) {
		t.Fatalf("Heads(%s) = %q, want %q", tenant, got, want)
	}
}

func testHeads(t *testing.T, s Store) {
	wantHeads(t, s, "SHIP")
	a1 := mustEnqueueIn(t, s, "SHIP", "MOH", "a1")
	b1 := mustEnqueueIn(t, s, "SHIP", "HR", "b1")
	mustEnqueueIn(t, s, "SHIP", "MOH", "a2")
	mustEnqueueIn(t, s, "SHIP", "ADM", "c1")
	mustEnqueueIn(t, s, "DOCK", "MOH", "x1")
	wantHeads(t, s, "SHIP", "ADM/c1", "HR/b1", "MOH/a1")
	hs, err := s.Heads(t.Context(), "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	wantSame(t, "Heads entry", hs[2], a1)

	running := markRunning(t, s, a1.ID)
	wantHeads(t, s, "SHIP", "ADM/c1", "HR/b1", "MOH/a1") // running is pending
	succeed(t, s, b1, "ok")
	wantHeads(t, s, "SHIP", "ADM/c1", "MOH/a1")
	succeed(t, s, running, "ok")
	wantHeads(t, s, "SHIP", "ADM/c1", "MOH/a2")
	wantHeads(t, s, "DOCK", "MOH/x1")
	wantHeads(t, s, "NOBODY")
}

// ahead returns Place's count for op, after checking that the depth it
// read with it is the tenant's.
func ahead(t *testing.T, s Store, op queue.Operation) int {
	t.Helper()
	n, d, err := s.Place(t.Context(), op)
	if err != nil {
		t.Fatalf("Place(%s): %v", op.Target, err)
	}
	want, err := s.Depth(t.Context(), op.Tenant)
	if err != nil {
		t.Fatalf("Depth(%s): %v", op.Tenant, err)
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Place(%s) read the depth %+v, want the tenant's %+v", op.Target, d, want)
	}
	return n
}

func testPlace(t *testing.T, s Store) {
	a := mustEnqueueIn(t, s, "SHIP", "MOH", "a")
	x := mustEnqueueIn(t, s, "SHIP", "HR", "x")
	b := mustEnqueueIn(t, s, "SHIP", "MOH", "b")
	c := mustEnqueueIn(t, s, "SHIP", "MOH", "c")
	mustEnqueueIn(t, s, "DOCK", "MOH", "other tenant")
	for _, tc := range []struct {
		op   queue.Operation
		want int
	}{{a, 0}, {b, 1}, {c, 2}, {x, 0}} {
		if got := ahead(t, s, tc.op); got != tc.want {
			t.Errorf("Place(%s) = %d, want %d", tc.op.Target, got, tc.want)
		}
	}
	markRunning(t, s, a.ID)
	if got := ahead(t, s, c); got != 2 {
		t.Errorf("Place(c) with a running = %d, want 2 (running is pending)", got)
	}
	succeed(t, s, mustOperation(t, s, a.ID), "ok")
	if got := ahead(t, s, c); got != 1 {
		t.Errorf("Place(c) after a completed = %d, want 1", got)
	}
	// A tenant with nothing pending: nothing ahead, an empty depth.
	if got := ahead(t, s, queue.Operation{ID: "none", Tenant: "NOBODY", Project: "MOH", Target: "NOBODY:MOH:none", Seq: 1}); got != 0 {
		t.Errorf("Place in a tenant with nothing pending = %d, want 0", got)
	}
}

func testFinish(t *testing.T, s Store) {
	a := mustEnqueue(t, s, "SHIP", "a")
	b := mustEnqueue(t, s, "SHIP", "b")
	at := t0.Add(time.Minute)
	got, err := s.Finish(t.Context(), a.ID, func(o *queue.Operation) ([]Effect, error) {
		if o.ID != a.ID || o.State != queue.Queued {
			return nil, fmt.Errorf("fn got %s in state %q", o.ID, o.State)
		}
		o.State, o.UpdatedAt, o.FinishedAt = queue.Cancelled, at, at
		return nil, nil
	})
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	want := a
	want.State, want.UpdatedAt, want.FinishedAt = queue.Cancelled, at, at
	wantSame(t, "Finish result", got, want)
	wantSame(t, "Operation after Finish", mustOperation(t, s, a.ID), want)
	wantHead(t, s, "SHIP", b.ID)
	wantHeads(t, s, "SHIP", "MOH/b")
	WantDepth(t, s, "SHIP", 1)
	if n, err := s.RequeueRunning(t.Context(), "SHIP", t0); err != nil || n != 0 {
		t.Fatalf("RequeueRunning after Finish = %d, %v; want 0", n, err)
	}
}

func testFinishFnError(t *testing.T, s Store) {
	op := mustEnqueue(t, s, "SHIP", "a")
	boom := errors.New("not cancellable")
	_, err := s.Finish(t.Context(), op.ID, func(o *queue.Operation) ([]Effect, error) {
		o.State = queue.Cancelled
		return nil, fmt.Errorf("deciding: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Finish error = %v, want fn's error", err)
	}
	wantSame(t, "Operation after a refused Finish", mustOperation(t, s, op.ID), op)
	wantHead(t, s, "SHIP", op.ID)

	_, err = s.Finish(t.Context(), op.ID, func(o *queue.Operation) ([]Effect, error) {
		o.State = queue.Cancelled
		return []Effect{Failing}, nil
	})
	if err == nil {
		t.Fatal("Finish with a failing effect succeeded, want an error")
	}
	wantSame(t, "Operation after Finish with a failing effect", mustOperation(t, s, op.ID), op)
	WantDepth(t, s, "SHIP", 1)
}

// wantFull fails unless err reports a full queue with depth total.
func wantFull(t *testing.T, err error, total int) {
	t.Helper()
	var full *queue.QueueFullError
	if !errors.As(err, &full) || !errors.Is(err, queue.ErrQueueFull) {
		t.Fatalf("Enqueue error = %v, want a *QueueFullError", err)
	}
	if full.Depth.Total != total {
		t.Fatalf("QueueFullError.Depth = %+v, want %d in all", full.Depth, total)
	}
}

func testQueueFull(t *testing.T, s Store) {
	m1 := mustEnqueueIn(t, s, "SHIP", "MOH", "m1")
	mustEnqueueIn(t, s, "SHIP", "MOH", "m2")
	mustEnqueueIn(t, s, "SHIP", "HR", "h1")
	markRunning(t, s, m1.ID) // running counts against the limits too

	op := newOpIn("SHIP", "ADM", "over the tenant limit")
	_, err := s.Enqueue(t.Context(), op, queue.Limits{Tenant: 3})
	wantFull(t, err, 3)
	WantNoOp(t, s, op.ID)

	op = newOpIn("SHIP", "MOH", "over the project limit")
	_, err = s.Enqueue(t.Context(), op, queue.Limits{Tenant: 10, Project: 2})
	wantFull(t, err, 3)
	WantNoOp(t, s, op.ID)
	WantDepth(t, s, "SHIP", 3)
	wantHeads(t, s, "SHIP", "HR/h1", "MOH/m1")

	// Another project, and another tenant, still have room.
	mustEnqueueOp(t, s, newOpIn("SHIP", "HR", "h2"))
	if _, err := s.Enqueue(t.Context(), newOpIn("SHIP", "HR", "h3"), queue.Limits{Project: 3}); err != nil {
		t.Fatalf("Enqueue into a project under its limit: %v", err)
	}
	if _, err := s.Enqueue(t.Context(), newOpIn("DOCK", "MOH", "x"), queue.Limits{Tenant: 1, Project: 1}); err != nil {
		t.Fatalf("Enqueue into another tenant: %v", err)
	}
	// Finishing an operation makes room.
	succeed(t, s, mustOperation(t, s, m1.ID), "ok")
	if _, err := s.Enqueue(t.Context(), newOpIn("SHIP", "MOH", "m3"), queue.Limits{Project: 2}); err != nil {
		t.Fatalf("Enqueue after an operation finished: %v", err)
	}
}

func idem(scope, key, fingerprint string, expires time.Time) *queue.Idempotency {
	return &queue.Idempotency{Scope: scope, Key: key, Fingerprint: fingerprint, Expires: expires}
}

func idempotent(t *testing.T, s Store, scope, key string, now time.Time) (string, string, bool) {
	t.Helper()
	id, fp, ok, err := s.Idempotent(t.Context(), scope, key, now)
	if err != nil {
		t.Fatalf("Idempotent(%s, %s): %v", scope, key, err)
	}
	return id, fp, ok
}

// wantReplay fails unless err is a replay naming id.
func wantReplay(t *testing.T, err error, id string) {
	t.Helper()
	var replay *queue.ReplayError
	if !errors.As(err, &replay) || !errors.Is(err, queue.ErrReplay) {
		t.Fatalf("Enqueue error = %v, want a *ReplayError", err)
	}
	if replay.OperationID != id {
		t.Fatalf("ReplayError names %s, want %s", replay.OperationID, id)
	}
}

func testIdempotency(t *testing.T, s Store) {
	expires := t0.Add(24 * time.Hour)
	op := newOp("SHIP", "first")
	op.Idempotency = idem("key:ci", "k1", "fp-a", expires)
	first := mustEnqueueOp(t, s, op)
	if id, fp, ok := idempotent(t, s, "key:ci", "k1", t0.Add(time.Hour)); !ok || id != first.ID || fp != "fp-a" {
		t.Fatalf("Idempotent(k1) = %s, %q, %v; want %s, fp-a, true", id, fp, ok, first.ID)
	}
	if _, _, ok := idempotent(t, s, "key:ci", "unknown", t0); ok {
		t.Fatal("Idempotent(unknown key) = ok")
	}
	if _, _, ok := idempotent(t, s, "key:other", "k1", t0); ok {
		t.Fatal("Idempotent(k1 of another scope) = ok")
	}

	// The same request again is a replay; nothing is written.
	again := newOp("SHIP", "again")
	again.Idempotency = idem("key:ci", "k1", "fp-a", expires)
	_, err := s.Enqueue(t.Context(), again, noLimits)
	wantReplay(t, err, first.ID)
	WantNoOp(t, s, again.ID)

	// Another request with the key is refused.
	other := newOp("SHIP", "other")
	other.Idempotency = idem("key:ci", "k1", "fp-b", expires)
	if _, err := s.Enqueue(t.Context(), other, noLimits); !errors.Is(err, queue.ErrIdempotencyMismatch) {
		t.Fatalf("Enqueue with a reused key error = %v, want ErrIdempotencyMismatch", err)
	}
	WantNoOp(t, s, other.ID)
	WantDepth(t, s, "SHIP", 1)

	// Keys of different scopes never collide.
	scoped := newOp("SHIP", "scoped")
	scoped.Idempotency = idem("key:other", "k1", "fp-b", expires)
	mustEnqueueOp(t, s, scoped)

	// A replay is found before the limits are checked, and after the
	// operation finished.
	succeed(t, s, first, "ok")
	again.ID = queue.NewID()
	_, err = s.Enqueue(t.Context(), again, queue.Limits{Tenant: 1, Project: 1})
	wantReplay(t, err, first.ID)
	WantNoOp(t, s, again.ID)
	if id, _, ok := idempotent(t, s, "key:ci", "k1", t0); !ok || id != first.ID {
		t.Fatalf("Idempotent(k1) after replays = %s, %v; want %s", id, ok, first.ID)
	}
}

func testIdempotencyExpiry(t *testing.T, s Store) {
	op := newOp("SHIP", "short")
	op.Idempotency = idem("key:ci", "short", "fp", t0.Add(time.Hour))
	mustEnqueueOp(t, s, op)
	op = newOp("SHIP", "long")
	op.Idempotency = idem("key:ci", "long", "fp", t0.Add(48*time.Hour))
	long := mustEnqueueOp(t, s, op)

	if _, _, ok := idempotent(t, s, "key:ci", "short", t0.Add(59*time.Minute)); !ok {
		t.Fatal("Idempotent(short) before it expires: not found")
	}
	if _, _, ok := idempotent(t, s, "key:ci", "short", t0.Add(2*time.Hour)); ok {
		t.Fatal("Idempotent(short) after it expired: found")
	}
	// An expired key may name a new request (judged at its CreatedAt).
	later := newOp("SHIP", "later")
	later.CreatedAt = t0.Add(2 * time.Hour)
	later.Idempotency = idem("key:ci", "short", "fp-new", t0.Add(26*time.Hour))
	if _, err := s.Enqueue(t.Context(), later, noLimits); err != nil {
		t.Fatalf("Enqueue reusing an expired key: %v", err)
	}
	if id, fp, ok := idempotent(t, s, "key:ci", "short", t0.Add(3*time.Hour)); !ok || id != later.ID || fp != "fp-new" {
		t.Fatalf("Idempotent(short) after reuse = %s, %q, %v; want %s, fp-new", id, fp, ok, later.ID)
	}

	n, err := s.PurgeIdempotency(t.Context(), t0.Add(30*time.Hour))
	if err != nil {
		t.Fatalf("PurgeIdempotency: %v", err)
	}
	if n != 1 {
		t.Fatalf("PurgeIdempotency removed %d keys, want 1 (short, reused until t0+26h)", n)
	}
	// Purged keys are gone even for an earlier now; the others stay.
	if _, _, ok := idempotent(t, s, "key:ci", "short", t0); ok {
		t.Fatal("purged key still found")
	}
	if id, _, ok := idempotent(t, s, "key:ci", "long", t0.Add(30*time.Hour)); !ok || id != long.ID {
		t.Fatalf("unexpired key after purge = %s, %v; want %s", id, ok, long.ID)
	}
	if n, err := s.PurgeIdempotency(t.Context(), t0.Add(30*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second PurgeIdempotency = %d, %v; want 0", n, err)
	}
	// Purging forgets keys, not operations.
	mustOperation(t, s, later.ID)
}

// --- concurrency --------------------------------------------------------------

func testConcurrentEnqueue(t *testing.T, s Store) {
	const n = 40
	tenants := []string{"SHIP", "DOCK"}
	var (
		mu  sync.Mutex
		got = map[string][]queue.Operation{}
		wg  sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			tenant := tenants[i%len(tenants)]
			op, err := s.Enqueue(context.Background(), newOp(tenant, fmt.Sprint("g", i)), noLimits)
			if err != nil {
				t.Errorf("Enqueue #%d: %v", i, err)
				return
			}
			mu.Lock()
			got[tenant] = append(got[tenant], op)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, tenant := range tenants {
		ops := got[tenant]
		WantDepth(t, s, tenant, len(ops))
		bySeq := map[uint64]queue.Operation{}
		for _, op := range ops {
			if prev, dup := bySeq[op.Seq]; dup {
				t.Fatalf("%s: Seq %d given to both %s and %s", tenant, op.Seq, prev.Target, op.Target)
			}
			bySeq[op.Seq] = op
			wantSame(t, "Operation of a concurrently enqueued op", mustOperation(t, s, op.ID), op)
		}
		// The queue drains in Seq order and holds exactly what was enqueued.
		var last uint64
		for i := range ops {
			head := mustHead(t, s, tenant)
			if want, ok := bySeq[head.Seq]; !ok || want.ID != head.ID {
				t.Fatalf("%s: Head #%d is %s with Seq %d, not the operation enqueued with that Seq", tenant, i, head.Target, head.Seq)
			}
			if i > 0 && head.Seq <= last {
				t.Fatalf("%s: Head #%d has Seq %d after %d: queue order does not follow Seq", tenant, i, head.Seq, last)
			}
			last = head.Seq
			succeed(t, s, head, "ok")
		}
		wantEmpty(t, s, tenant)
	}
}

func testConcurrentUpdate(t *testing.T, s Store) {
	const n = 30
	op := mustEnqueue(t, s, "SHIP", "a")
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.UpdateOperation(context.Background(), op.ID, func(o *queue.Operation) error {
				o.Attempts++
				return nil
			})
			if err != nil {
				t.Errorf("UpdateOperation: %v", err)
			}
		})
	}
	wg.Wait()
	if got := mustOperation(t, s, op.ID); got.Attempts != n {
		t.Fatalf("Attempts = %d after %d concurrent increments, want %d (lost updates)", got.Attempts, n, n)
	}
}

func testConcurrentEnqueueAndComplete(t *testing.T, s Store) {
	const n = 30
	var wg sync.WaitGroup
	ids := make(chan string, n)
	// A producer enqueues while a consumer completes the head, as the API and
	// a dispatcher do.
	wg.Go(func() {
		defer close(ids)
		for i := range n {
			op, err := s.Enqueue(context.Background(), newOp("SHIP", fmt.Sprint("g", i)), noLimits)
			if err != nil {
				t.Errorf("Enqueue #%d: %v", i, err)
				return
			}
			ids <- op.ID
		}
	})
	var order []string
	wg.Go(func() {
		for want := range ids {
			head, err := s.Head(context.Background(), "SHIP")
			if err != nil {
				t.Errorf("Head: %v", err)
				return
			}
			if head.ID != want {
				t.Errorf("Head = %s, want %s", head.ID, want)
				return
			}
			head.State = queue.Succeeded
			if err := s.Complete(context.Background(), head, nil); err != nil {
				t.Errorf("Complete: %v", err)
				return
			}
			order = append(order, head.ID)
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(order) != n {
		t.Fatalf("completed %d operations, want %d", len(order), n)
	}
	wantEmpty(t, s, "SHIP")
	WantDepth(t, s, "SHIP", 0)
	for _, id := range order {
		if got := mustOperation(t, s, id); got.State != queue.Succeeded {
			t.Errorf("%s: State = %q", id, got.State)
		}
	}
}

func testConcurrentLimits(t *testing.T, s Store) {
	const n = 30
	limits := queue.Limits{Tenant: 10, Project: 4}
	projects := []string{"ADM", "HR", "MOH"}
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		ok, refuse int
	)
	for i := range n {
		wg.Go(func() {
			_, err := s.Enqueue(context.Background(), newOpIn("SHIP", projects[i%len(projects)], fmt.Sprint("g", i)), limits)
			var full *queue.QueueFullError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &full):
				refuse++
			default:
				t.Errorf("Enqueue #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	d, err := s.Depth(t.Context(), "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	// Three projects of at most 4 could hold 12: the tenant limit binds.
	if ok != limits.Tenant || refuse != n-limits.Tenant || d.Total != limits.Tenant {
		t.Fatalf("%d accepted, %d refused, depth %+v; want %d accepted, %d refused (limits %+v)", ok, refuse, d, limits.Tenant, n-limits.Tenant, limits)
	}
	for p, c := range d.Projects {
		if c > limits.Project {
			t.Errorf("project %s holds %d pending operations, over its limit of %d", p, c, limits.Project)
		}
	}
}

func testConcurrentTwins(t *testing.T, s Store) {
	const n = 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		named   = map[string]int{}
	)
	for i := range n {
		wg.Go(func() {
			op := newOp("SHIP", fmt.Sprint("twin ", i))
			op.Idempotency = idem("key:ci", "k", "fp", t0.Add(time.Hour))
			got, err := s.Enqueue(context.Background(), op, noLimits)
			var replay *queue.ReplayError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, got.ID)
			case errors.As(err, &replay):
				named[replay.OperationID]++
			default:
				t.Errorf("Enqueue #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent twins were enqueued, want exactly 1", len(winners), n)
	}
	if named[winners[0]] != n-1 || len(named) != 1 {
		t.Fatalf("replays named %v, want all %d to name %s", named, n-1, winners[0])
	}
	WantDepth(t, s, "SHIP", 1)
}
