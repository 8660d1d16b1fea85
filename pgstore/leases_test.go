package pgstore_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
)

// takeOver asks for tenant's lease for holder (for a minute) every 10 ms
// until it gets it, and returns it.
func takeOver(t *testing.T, s *pgstore.Store, tenant, holder string) pgstore.Lease {
	t.Helper()
	var l pgstore.Lease
	testkit.Eventually(t, 10*time.Second, "a takeover of the lease", func() bool {
		var ok bool
		var err error
		l, ok, err = s.AcquireLease(t.Context(), tenant, holder, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(10 * time.Millisecond)
		}
		return ok
	})
	return l
}

func mustAcquire(t *testing.T, s *pgstore.Store, tenant, holder string, ttl time.Duration) pgstore.Lease {
	t.Helper()
	l, ok, err := s.AcquireLease(t.Context(), tenant, holder, ttl)
	if err != nil || !ok {
		t.Fatalf("AcquireLease(%s, %s): ok %v, %v", tenant, holder, ok, err)
	}
	return l
}

// TestLeaseOneHolderAtATime: while a lease is live no other holder gets
// it; its holder may acquire it again (keeping the epoch) and renew it;
// Leases lists it.
func TestLeaseOneHolderAtATime(t *testing.T) {
	a, b := twoReplicas(t) // two replicas
	ctx := t.Context()
	la := mustAcquire(t, a, "SHIP", "replica-a", time.Minute)
	if la.Epoch != 1 || la.Holder != "replica-a" || la.Tenant != "SHIP" {
		t.Errorf("first lease: %+v, want epoch 1 of replica-a", la)
	}
	if la.Deadline.After(time.Now().Add(time.Minute)) {
		t.Errorf("Deadline %v is later than now + ttl", la.Deadline)
	}
	if _, ok, err := b.AcquireLease(ctx, "SHIP", "replica-b", time.Minute); ok || err != nil {
		t.Fatalf("second holder of a live lease: ok %v, %v", ok, err)
	}
	again := mustAcquire(t, a, "SHIP", "replica-a", time.Minute)
	if again.Epoch != la.Epoch || again.Expires.Before(la.Expires) {
		t.Errorf("re-acquired own lease: %+v, want epoch %d and a later expiry than %v", again, la.Epoch, la.Expires)
	}
	renewed, err := a.RenewLease(ctx, again, 2*time.Minute)
	if err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	if renewed.Epoch != la.Epoch || !renewed.Expires.After(again.Expires) {
		t.Errorf("renewed: %+v, want epoch %d, expiry after %v", renewed, la.Epoch, again.Expires)
	}
	// Another tenant's lease is independent.
	lb := mustAcquire(t, b, "TRAIN", "replica-b", time.Minute)
	if lb.Epoch != 1 {
		t.Errorf("other tenant's first lease: epoch %d, want 1", lb.Epoch)
	}
	list, err := b.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(leaseRows(list))
	if want := "[SHIP replica-a 1 true TRAIN replica-b 1 true]"; got != want {
		t.Errorf("Leases: %s, want %s", got, want)
	}
}

func leaseRows(ls []pgstore.LeaseInfo) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%s %s %d %v", l.Tenant, l.Holder, l.Epoch, l.Live))
	}
	return out
}

// TestLeaseExpiresByDatabaseClock: a lapsed lease goes to the next holder
// with the next epoch, only once the database's clock has passed its
// expiry, and after the first holder's local Deadline; the first holder
// can no longer renew it.
func TestLeaseExpiresByDatabaseClock(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	const ttl = 300 * time.Millisecond
	la := mustAcquire(t, a, "SHIP", "replica-a", ttl)
	lb := takeOver(t, b, "SHIP", "replica-b")
	tookAt := time.Now()
	if lb.Epoch != la.Epoch+1 {
		t.Errorf("takeover epoch %d, want %d", lb.Epoch, la.Epoch+1)
	}
	// The database took it at lb.Expires - 1 minute, its own clock.
	if takenDB := lb.Expires.Add(-time.Minute); takenDB.Before(la.Expires) {
		t.Errorf("taken over at %v by the database's clock, before the expiry %v", takenDB, la.Expires)
	}
	if !tookAt.After(la.Deadline) {
		t.Errorf("taken over at local %v, before the first holder's Deadline %v: Deadline is not conservative", tookAt, la.Deadline)
	}
	if _, err := a.RenewLease(ctx, la, ttl); !errors.Is(err, pgstore.ErrLeaseLost) {
		t.Errorf("renewing a lease taken over: %v, want ErrLeaseLost", err)
	}
	if _, ok, err := a.AcquireLease(ctx, "SHIP", "replica-a", ttl); ok || err != nil {
		t.Errorf("old holder re-acquiring a live lease: ok %v, %v", ok, err)
	}
}

// TestLeaseRenewLapsed: a holder that renews too late has lost the lease,
// even when nobody took it; acquiring it again starts a new epoch.
func TestLeaseRenewLapsed(t *testing.T) {
	s := mustOpen(t)
	const ttl = 50 * time.Millisecond
	l := mustAcquire(t, s, "SHIP", "replica-a", ttl)
	time.Sleep(ttl + 50*time.Millisecond)
	if _, err := s.RenewLease(t.Context(), l, ttl); !errors.Is(err, pgstore.ErrLeaseLost) {
		t.Fatalf("renewing a lapsed lease: %v, want ErrLeaseLost", err)
	}
	if again := mustAcquire(t, s, "SHIP", "replica-a", time.Minute); again.Epoch != l.Epoch+1 {
		t.Errorf("re-acquired after a lapse: epoch %d, want %d", again.Epoch, l.Epoch+1)
	}
}

// TestLeaseReleaseHandsOverAtOnce: a released lease is free at once, to a
// new epoch; the releaser can no longer renew it; a second release is
// harmless.
func TestLeaseReleaseHandsOverAtOnce(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	la := mustAcquire(t, a, "SHIP", "replica-a", time.Hour)
	if err := a.ReleaseLease(ctx, la); err != nil {
		t.Fatal(err)
	}
	list, err := b.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(leaseRows(list)), "[SHIP  1 false]"; got != want {
		t.Errorf("Leases after release: %s, want %s", got, want)
	}
	lb := mustAcquire(t, b, "SHIP", "replica-b", time.Hour)
	if lb.Epoch != la.Epoch+1 {
		t.Errorf("epoch after release %d, want %d", lb.Epoch, la.Epoch+1)
	}
	if _, err := a.RenewLease(ctx, la, time.Hour); !errors.Is(err, pgstore.ErrLeaseLost) {
		t.Errorf("renewing a released lease: %v, want ErrLeaseLost", err)
	}
	if err := a.ReleaseLease(ctx, la); err != nil {
		t.Errorf("second release: %v", err)
	}
	if list, _ := b.Leases(ctx); fmt.Sprint(leaseRows(list)) != "[SHIP replica-b 2 true]" {
		t.Errorf("an old epoch's release touched the new lease: %v", leaseRows(list))
	}
}

// TestLeaseCompetingHolders: holders on two pools race for one tenant's
// short lease, each renewing what it holds for a while and then letting it
// lapse. Every epoch has one holder, and, by the database's clock, no
// epoch began before the one before it had expired.
func TestLeaseCompetingHolders(t *testing.T) {
	dsn := pgtest.DSN(t)
	stores := []*pgstore.Store{mustOpenDSN(t, dsn), mustOpenDSN(t, dsn)}
	const ttl = 40 * time.Millisecond
	type tenure struct {
		holder        string
		start, expiry time.Time // database clock
	}
	var mu sync.Mutex
	tenures := map[int64]*tenure{}
	note := func(l pgstore.Lease, fresh bool) error {
		mu.Lock()
		defer mu.Unlock()
		tn := tenures[l.Epoch]
		if tn == nil {
			if !fresh {
				return fmt.Errorf("renewed epoch %d never acquired", l.Epoch)
			}
			tn = &tenure{holder: l.Holder, start: l.Expires.Add(-ttl)}
			tenures[l.Epoch] = tn
		}
		if tn.holder != l.Holder {
			return fmt.Errorf("epoch %d held by %s and %s", l.Epoch, tn.holder, l.Holder)
		}
		if l.Expires.After(tn.expiry) {
			tn.expiry = l.Expires
		}
		return nil
	}
	stop := time.Now().Add(1500 * time.Millisecond)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, holder := stores[i%2], fmt.Sprintf("replica-%d", i)
			for time.Now().Before(stop) {
				l, ok, err := s.AcquireLease(t.Context(), "SHIP", holder, ttl)
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if err := note(l, true); err != nil {
					errs <- err
					return
				}
				for range 3 { // renew a few times, then let it lapse
					time.Sleep(ttl / 4)
					if l, err = s.RenewLease(t.Context(), l, ttl); err != nil {
						break // lost: load can delay a renewal past the expiry
					}
					if err := note(l, false); err != nil {
						errs <- err
						return
					}
				}
				time.Sleep(ttl + 10*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	epochs := make([]int64, 0, len(tenures))
	for e := range tenures {
		epochs = append(epochs, e)
	}
	slices.Sort(epochs)
	if len(epochs) < 3 {
		t.Fatalf("only %d epochs in 1.5 s: the holders did not compete", len(epochs))
	}
	holders := map[string]bool{}
	for i, e := range epochs {
		holders[tenures[e].holder] = true
		if i > 0 && epochs[i-1] != e-1 {
			t.Errorf("epoch %d follows %d: an acquisition was not seen", e, epochs[i-1])
		}
		if i > 0 && tenures[e].start.Before(tenures[epochs[i-1]].expiry) {
			t.Errorf("epoch %d (%s) began at %v, before epoch %d (%s) expired at %v", e, tenures[e].holder,
				tenures[e].start, epochs[i-1], tenures[epochs[i-1]].holder, tenures[epochs[i-1]].expiry)
		}
	}
	if len(holders) < 2 {
		t.Errorf("one holder had every epoch: %v", holders)
	}
	t.Logf("%d epochs among %d holders", len(epochs), len(holders))
}
