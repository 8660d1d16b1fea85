package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore/bolttest"
	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/memstore"
	"github.com/groupgate/groupgate/queue"
)

// fakeLeases is a lease table in memory: the test grants leads one at a
// time (each with the next epoch), can take them away (the lead's context
// ends, as when its lease is lost) or move the epoch behind a leader's
// back (a takeover it has not noticed yet). Its store's transactions fence
// against the table.
type fakeLeases struct {
	mu       sync.Mutex
	epoch    map[string]uint64
	grants   chan struct{}
	leads    chan *fakeLead
	released chan uint64
}

func newFakeLeases() *fakeLeases {
	return &fakeLeases{epoch: map[string]uint64{}, grants: make(chan struct{}), leads: make(chan *fakeLead, 10), released: make(chan uint64, 10)}
}

// Lead waits for the test to grant a lead.
func (f *fakeLeases) Lead(ctx context.Context, tenant string) (dispatch.Lead, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.grants:
	}
	f.mu.Lock()
	f.epoch[tenant]++
	e := f.epoch[tenant]
	f.mu.Unlock()
	lctx, cancel := context.WithCancel(context.Background())
	l := &fakeLead{f: f, ctx: lctx, cancel: cancel, epoch: e}
	f.leads <- l
	return l, nil
}

// takeover moves tenant's epoch as another replica taking the lease would.
func (f *fakeLeases) takeover(tenant string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch[tenant]++
}

type fakeLead struct {
	f      *fakeLeases
	ctx    context.Context
	cancel context.CancelFunc
	epoch  uint64
}

func (l *fakeLead) Context() context.Context { return l.ctx }
func (l *fakeLead) Epoch() uint64            { return l.epoch }
func (l *fakeLead) Release(context.Context) error {
	l.cancel()
	l.f.released <- l.epoch
	return nil
}

// fencingStore is a groups.Store whose transactions' Fence checks the
// fake lease table (a store on PostgreSQL checks its leases table).
type fencingStore struct {
	groups.Store
	leases *fakeLeases
}

func (s fencingStore) Update(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	return s.Store.Update(ctx, tenant, func(tx groups.Tx) error { return fn(fencingTx{tx, tenant, s.leases}) })
}

type fencingTx struct {
	groups.Tx
	tenant string
	leases *fakeLeases
}

func (tx fencingTx) Fence(epoch uint64) error {
	tx.leases.mu.Lock()
	defer tx.leases.mu.Unlock()
	if tx.leases.epoch[tx.tenant] != epoch {
		return fmt.Errorf("epoch %d of %s: %w", epoch, tx.tenant, queue.ErrFenced)
	}
	return nil
}

// TestDispatchersRunOnlyWhileLeading, on bbolt and on memstore: a tenant's
// dispatcher dispatches nothing until its replica leads the tenant; a lost
// lead cuts the call in flight off at once (not after the grace) and
// leaves the operation running; the next lead requeues and replays it; a
// leader deposed behind its back (the epoch moved) has its commit refused,
// changes nothing and stops; every lead is released and counted.
func TestDispatchersRunOnlyWhileLeading(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) groups.Store{
		"bbolt":    func(t *testing.T) groups.Store { return bolttest.MustOpen(t) },
		"memstore": func(*testing.T) groups.Store { return memstore.New() },
	} {
		t.Run(name, func(t *testing.T) { testRunOnlyWhileLeading(t, open(t)) })
	}
}

func testRunOnlyWhileLeading(t *testing.T, st groups.Store) {
	leases := newFakeLeases()
	s := groups.NewLedger(fencingStore{Store: st, leases: leases})
	op := enqueue(t, s, "SHIP", "first")

	type call struct {
		op  queue.Operation
		ctx context.Context
	}
	calls := make(chan call, 10)
	answer := make(chan Outcome)
	settled := make(chan queue.Operation, 10)
	ds := dispatch.NewDispatchers[groups.Effect](s, nil, nil)
	ds.UseLeases(leases)
	ds.Put(Config{Tenant: "SHIP", Grace: time.Minute, OnSettled: func(o queue.Operation) { settled <- o },
		Handler: HandlerFunc(func(ctx context.Context, o queue.Operation) Outcome {
			calls <- call{o, ctx}
			select {
			case out := <-answer:
				return out
			case <-ctx.Done():
				return Outcome{Kind: dispatch.Retry, Reason: "cut off"}
			}
		})})
	startRun(t, ds.Run)

	select {
	case c := <-calls:
		t.Fatalf("dispatched %s without a lead", c.op.Target)
	case <-time.After(100 * time.Millisecond):
	}
	if ok, stopped := ds.Running(); !ok {
		t.Errorf("a dispatcher waiting for its lead reported stopped: %v", stopped)
	}

	// Lead 1, lost in flight: the call ends at once, the operation stays
	// running.
	leases.grants <- struct{}{}
	lead1 := receive(t, leases.leads, "lead 1")
	c := receive(t, calls, "the first call")
	if got := ds.Leading(); len(got) != 1 || got[0] != "SHIP" {
		t.Errorf("Leading() = %v, want [SHIP]", got)
	}
	lost := time.Now()
	lead1.cancel()
	select {
	case <-c.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call in flight outlived its lead")
	}
	if d := time.Since(lost); d > time.Second {
		t.Errorf("the call in flight ended %v after the lead was lost, want at once (the grace is a minute)", d)
	}
	if e := receive(t, leases.released, "the release of lead 1"); e != 1 {
		t.Errorf("released epoch %d, want 1", e)
	}
	if got, _ := s.Operation(t.Context(), op.ID); got.State != queue.Running || got.Attempts != 1 {
		t.Errorf("after the lost lead: %s attempt %d, want running attempt 1", got.State, got.Attempts)
	}

	// Lead 2, deposed behind its back: its commit is refused and changes
	// nothing; it stops and releases.
	leases.grants <- struct{}{}
	receive(t, leases.leads, "lead 2")
	c = receive(t, calls, "the replay under lead 2")
	if c.op.ID != op.ID || c.op.Attempts != 2 {
		t.Errorf("lead 2 ran %s attempt %d, want %s attempt 2", c.op.Target, c.op.Attempts, op.Target)
	}
	leases.takeover("SHIP")
	answer <- Outcome{Kind: dispatch.Done}
	if e := receive(t, leases.released, "the release of lead 2"); e != 2 {
		t.Errorf("released epoch %d, want 2", e)
	}
	if got, _ := s.Operation(t.Context(), op.ID); got.State != queue.Running || got.Attempts != 2 {
		t.Errorf("after the deposed leader's commit: %s attempt %d, want running attempt 2 (nothing written)", got.State, got.Attempts)
	}
	select {
	case o := <-settled:
		t.Errorf("the deposed leader settled %s", o.Target)
	default:
	}

	// Lead 4 (the takeover was 3): the operation is replayed and settles.
	leases.grants <- struct{}{}
	lead := receive(t, leases.leads, "lead 4")
	if lead.epoch != 4 {
		t.Errorf("epoch %d, want 4", lead.epoch)
	}
	c = receive(t, calls, "the replay under lead 4")
	answer <- Outcome{Kind: dispatch.Done}
	if got := receive(t, settled, "the outcome"); got.ID != op.ID || got.State != queue.Succeeded || got.Attempts != 3 {
		t.Errorf("settled %s %s attempt %d, want %s succeeded at attempt 3", got.Target, got.State, got.Attempts, op.Target)
	}
	if n := ds.Handovers(); n != 3 {
		t.Errorf("Handovers() = %d, want 3", n)
	}
}

// TestDispatcherRefusesAnUnfencedStore: a lead with an epoch over a store
// that cannot fence its writes runs nothing.
func TestDispatcherRefusesAnUnfencedStore(t *testing.T) {
	var s Store = unfenced{openStore(t)}
	enqueue(t, s, "SHIP", "x")
	d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: HandlerFunc(func(context.Context, queue.Operation) Outcome {
		t.Error("dispatched through an unfenced store")
		return Outcome{Kind: dispatch.Done}
	})})
	l := &fakeLead{f: newFakeLeases(), ctx: t.Context(), cancel: func() {}, epoch: 7}
	if err := d.RunLed(t.Context(), l); err == nil || errors.Is(err, queue.ErrFenced) {
		t.Errorf("RunLed = %v, want an error saying the store cannot fence", err)
	}
}

// unfenced hides the Ledger's Fenced.
type unfenced struct{ Store }
