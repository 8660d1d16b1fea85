package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
)

// TestLeadershipRenews: a leader's short lease is renewed well inside its
// time to live, so its context lasts for many times that, at one epoch,
// and nobody else gets the lease meanwhile; Release ends the context and
// hands the lease over at once.
func TestLeadershipRenews(t *testing.T) {
	a, b := twoReplicas(t)
	// Renewals every 300 ms, each with 600 ms to spare: ample, even on a
	// loaded machine.
	const ttl = 900 * time.Millisecond
	l := mustAcquire(t, a, "SHIP", "replica-a", ttl)
	ld := a.Lead(t.Context(), l, ttl)
	for range 9 { // 2.7 s, three times the time to live
		time.Sleep(ttl / 3)
		if err := ld.Context().Err(); err != nil {
			t.Fatalf("the leader's context ended while it renewed: %v", context.Cause(ld.Context()))
		}
		if _, ok, err := b.AcquireLease(t.Context(), "SHIP", "replica-b", time.Minute); ok || err != nil {
			t.Fatalf("another replica got a renewed lease: ok %v, %v", ok, err)
		}
	}
	if got := ld.Lease(); got.Epoch != l.Epoch || !got.Expires.After(l.Expires) {
		t.Errorf("renewed lease %+v, want epoch %d and an expiry after %v", got, l.Epoch, l.Expires)
	}
	if err := ld.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(context.Cause(ld.Context()), pgstore.ErrLeaseLost) {
		t.Errorf("after Release the context's cause is %v", context.Cause(ld.Context()))
	}
	if lb := mustAcquire(t, b, "SHIP", "replica-b", time.Minute); lb.Epoch != l.Epoch+1 {
		t.Errorf("taken after the release at epoch %d, want %d", lb.Epoch, l.Epoch+1)
	}
}

// TestLeadershipEndsWhenDeposed: when its lease moves to another epoch
// behind its back, the leader's context ends at its next renewal.
func TestLeadershipEndsWhenDeposed(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := mustOpenDSN(t, dsn)
	const ttl = 300 * time.Millisecond
	ld := a.Lead(t.Context(), mustAcquire(t, a, "SHIP", "replica-a", ttl), ttl)
	defer ld.Release(context.Background())
	// An operator (or a bug) moves the epoch.
	if _, err := adminConn(t, dsn).Exec(t.Context(), "UPDATE leases SET epoch = epoch + 1 WHERE tenant = 'SHIP'"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ld.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the deposed leader's context did not end")
	}
	if cause := context.Cause(ld.Context()); !errors.Is(cause, pgstore.ErrLeaseLost) {
		t.Errorf("cause %v, want ErrLeaseLost", cause)
	}
}

// TestLeadershipEndsBeforeTheLeaseCouldLapse: when the leader cannot reach
// the database, renewals fail and the leader's context ends by the lease's
// Deadline, which is no later than its expiry by the database's clock;
// another replica then takes the lease.
func TestLeadershipEndsBeforeTheLeaseCouldLapse(t *testing.T) {
	a, b := twoReplicas(t)
	const ttl = 400 * time.Millisecond
	l := mustAcquire(t, a, "SHIP", "replica-a", ttl)
	ld := a.Lead(t.Context(), l, ttl)
	testkit.Eventually(t, 5*time.Second, "a renewal", func() bool {
		time.Sleep(10 * time.Millisecond)
		return ld.Lease().Expires.After(l.Expires)
	})
	// Cut the leader off: its pool is closed, so every renewal fails (not
	// with ErrLeaseLost: the leader cannot tell whether it still leads).
	a.Close()
	select {
	case <-ld.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the cut-off leader's context did not end")
	}
	ended := time.Now()
	last := ld.Lease()
	// It ends at the Deadline: not before (the lease was still the
	// leader's), and after it only by scheduling delays.
	if ended.Before(last.Deadline) || ended.After(last.Deadline.Add(ttl/2)) {
		t.Errorf("the context ended at %v, %v after the lease's Deadline", ended, ended.Sub(last.Deadline))
	}
	if !errors.Is(context.Cause(ld.Context()), pgstore.ErrLeaseLost) {
		t.Errorf("cause %v, want ErrLeaseLost", context.Cause(ld.Context()))
	}
	lb := takeOver(t, b, "SHIP", "replica-b")
	if lb.Epoch != l.Epoch+1 {
		t.Errorf("taken over at epoch %d, want %d", lb.Epoch, l.Epoch+1)
	}
	if taken := lb.Expires.Add(-time.Minute); taken.Before(last.Expires) {
		t.Errorf("taken over at %v, before the lapsed lease's expiry %v", taken, last.Expires)
	}
	ld.Release(context.Background())
}
