package pgstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
)

// TestFencedLedgerRefusesADeposedLeader: on PostgreSQL, the dispatcher's
// writes through the fenced ledger (mark running, outcome, requeue) are
// refused with queue.ErrFenced once its lead moved to another replica, and
// change nothing; the new leader's go through.
func TestFencedLedgerRefusesADeposedLeader(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	leading := func(s *pgstore.Store, name string) *pgstore.Leading {
		l, err := s.NewLeading(pgstore.LeadingConfig{Replica: name, TTL: 5 * time.Second, Grace: 10 * time.Millisecond, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	leadA, err := leading(a, "replica-a").Lead(ctx, "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	la := groups.NewLedger(a)
	now := time.Now().UTC()
	op, err := la.Enqueue(ctx, queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: "test.op", Target: "x", CreatedAt: now, UpdatedAt: now}, queue.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	fa := la.Fenced(leadA.Epoch())
	running, err := fa.UpdateOperation(ctx, op.ID, func(o *queue.Operation) error {
		o.State, o.Attempts = queue.Running, 1
		return nil
	})
	if err != nil {
		t.Fatalf("mark running under the live lead: %v", err)
	}

	// A's lead moves to B (A released it here; a lapse is the same to the
	// fence).
	if err := leadA.Release(ctx); err != nil {
		t.Fatal(err)
	}
	leadB, err := leading(b, "replica-b").Lead(ctx, "SHIP")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = leadB.Release(ctx) })

	done := running
	done.State, done.FinishedAt = queue.Succeeded, now
	if err := fa.Complete(ctx, done, nil); !errors.Is(err, queue.ErrFenced) {
		t.Errorf("the deposed leader's outcome: %v, want ErrFenced", err)
	}
	if _, err := fa.UpdateOperation(ctx, op.ID, func(o *queue.Operation) error { o.Attempts = 9; return nil }); !errors.Is(err, queue.ErrFenced) {
		t.Errorf("the deposed leader's mark: %v, want ErrFenced", err)
	}
	if _, err := fa.RequeueRunning(ctx, "SHIP", now); !errors.Is(err, queue.ErrFenced) {
		t.Errorf("the deposed leader's requeue: %v, want ErrFenced", err)
	}
	got, err := b.Operation(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != queue.Running || got.Attempts != 1 {
		t.Errorf("after the deposed leader's writes: %s attempt %d, want running attempt 1 (unchanged)", got.State, got.Attempts)
	}
	if d, _ := b.Depth(ctx, "SHIP"); d.Total != 1 {
		t.Errorf("depth %d, want 1: the deposed leader's outcome took the operation off its queue", d.Total)
	}

	fb := groups.NewLedger(b).Fenced(leadB.Epoch())
	if n, err := fb.RequeueRunning(ctx, "SHIP", now); err != nil || n != 1 {
		t.Fatalf("the new leader's requeue: %d, %v; want 1", n, err)
	}
	if err := fb.Complete(ctx, done, nil); err != nil {
		t.Errorf("the new leader's outcome: %v", err)
	}
	if got, _ := b.Operation(ctx, op.ID); got.State != queue.Succeeded {
		t.Errorf("state %s after the new leader's outcome, want succeeded", got.State)
	}
}
