package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
)

// fakeLeases are leases the test grants: one lead at a time, each with the
// next epoch of its lease table; the test can take a lead away (its
// context ends, as when its lease is lost) or move the lease to another
// replica behind the leader's back (a takeover it has not noticed yet).
type fakeLeases struct {
	t        *testing.T
	table    leaseTable
	grants   chan struct{}
	leads    chan *fakeLead
	released chan uint64
}

func newFakeLeases(t *testing.T, table leaseTable) *fakeLeases {
	return &fakeLeases{t: t, table: table, grants: make(chan struct{}), leads: make(chan *fakeLead, 10), released: make(chan uint64, 10)}
}

// Lead waits for the test to grant a lead.
func (f *fakeLeases) Lead(ctx context.Context, tenant string) (dispatch.Lead, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.grants:
	}
	e, err := f.table.take(ctx, tenant)
	if err != nil {
		f.t.Errorf("granting a lead of %s: %v", tenant, err)
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	l := &fakeLead{f: f, tenant: tenant, ctx: lctx, cancel: cancel, epoch: e}
	f.leads <- l
	return l, nil
}

type fakeLead struct {
	f      *fakeLeases
	tenant string
	ctx    context.Context
	cancel context.CancelFunc
	epoch  uint64
}

func (l *fakeLead) Context() context.Context { return l.ctx }
func (l *fakeLead) Epoch() uint64            { return l.epoch }
func (l *fakeLead) Release(ctx context.Context) error {
	l.cancel()
	err := l.f.table.release(ctx, l.tenant, l.epoch)
	if err != nil {
		l.f.t.Errorf("releasing the lead of %s at epoch %d: %v", l.tenant, l.epoch, err)
	}
	l.f.released <- l.epoch
	return err
}

// leaseTable holds the leases fakeLeases grants, and is what the store's
// fenced writes check: memLeases, checked by a fencingStore, or
// PostgreSQL's own leases table (pgLeases), checked by pgstore.
type leaseTable interface {
	// take gives tenant's lease to the test's replica at the next epoch
	// and returns that epoch.
	take(ctx context.Context, tenant string) (uint64, error)
	// release gives the lease up, if it is still held at epoch.
	release(ctx context.Context, tenant string, epoch uint64) error
	// takeover moves tenant's lease to another replica, at the next
	// epoch, behind its holder's back.
	takeover(ctx context.Context, tenant string) error
}

// memLeases is a lease table in memory: only epochs.
type memLeases struct {
	mu    sync.Mutex
	epoch map[string]uint64
}

func newMemLeases() *memLeases { return &memLeases{epoch: map[string]uint64{}} }

func (m *memLeases) take(_ context.Context, tenant string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch[tenant]++
	return m.epoch[tenant], nil
}

func (m *memLeases) release(context.Context, string, uint64) error { return nil }

func (m *memLeases) takeover(ctx context.Context, tenant string) error {
	_, err := m.take(ctx, tenant)
	return err
}

func (m *memLeases) fence(tenant string, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epoch[tenant] != epoch {
		return fmt.Errorf("epoch %d of %s: %w", epoch, tenant, queue.ErrFenced)
	}
	return nil
}

// fencingStore is a groups.Store whose transactions' Fence checks a
// memLeases (a store on PostgreSQL checks its leases table).
type fencingStore struct {
	groups.Store
	leases *memLeases
}

func (s fencingStore) Update(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	return s.Store.Update(ctx, tenant, func(tx groups.Tx) error { return fn(fencingTx{tx, tenant, s.leases}) })
}

type fencingTx struct {
	groups.Tx
	tenant string
	leases *memLeases
}

func (tx fencingTx) Fence(epoch uint64) error { return tx.leases.fence(tx.tenant, epoch) }

// pgLeases is the leases table of a PostgreSQL store, through pgstore's
// lease calls: the test's replica is replica-a, and replica-b takes a
// lease over. Leases are taken for pgLeaseTTL, which outlasts a test: a
// fakeLead does not renew, and none lapses meanwhile.
type pgLeases struct {
	s     *pgstore.Store
	mu    sync.Mutex
	held  map[string]pgstore.Lease // replica-a's latest lease, by tenant
	other map[string]pgstore.Lease // replica-b's, until replica-a takes the lease back
}

const pgLeaseTTL = time.Minute

func newPGLeases(s *pgstore.Store) *pgLeases {
	return &pgLeases{s: s, held: map[string]pgstore.Lease{}, other: map[string]pgstore.Lease{}}
}

func (p *pgLeases) take(ctx context.Context, tenant string) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, ok := p.other[tenant]; ok {
		if err := p.s.ReleaseLease(ctx, o); err != nil {
			return 0, err
		}
		delete(p.other, tenant)
	}
	l, ok, err := p.s.AcquireLease(ctx, tenant, "replica-a", pgLeaseTTL)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("the lease of %s is held by another replica", tenant)
	}
	p.held[tenant] = l
	return uint64(l.Epoch), nil
}

// release releases replica-a's lease at epoch: in the database, nothing
// once the epoch moved on.
func (p *pgLeases) release(ctx context.Context, tenant string, epoch uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.held[tenant]
	if !ok || uint64(l.Epoch) != epoch {
		return fmt.Errorf("replica-a never held the lease of %s at epoch %d", tenant, epoch)
	}
	return p.s.ReleaseLease(ctx, l)
}

// takeover ends replica-a's lease behind its back (released here; a lapse
// is the same to the fence) and gives the lease to replica-b.
func (p *pgLeases) takeover(ctx context.Context, tenant string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.s.ReleaseLease(ctx, p.held[tenant]); err != nil {
		return err
	}
	o, ok, err := p.s.AcquireLease(ctx, tenant, "replica-b", pgLeaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("replica-b could not take the released lease of %s", tenant)
	}
	p.other[tenant] = o
	return nil
}

// TestDispatchersRunOnlyWhileLeading, on every backend (on PostgreSQL
// with its leases table and pgstore's fence): a tenant's dispatcher
// dispatches nothing until its replica leads the tenant; a lost lead cuts
// the call in flight off at once (not after the grace) and leaves the
// operation running; the next lead requeues and replays it; a leader
// deposed behind its back (the lease moved to another replica at the next
// epoch) has its commit refused, changes nothing and stops; every lead is
// released and counted.
func TestDispatchersRunOnlyWhileLeading(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testRunOnlyWhileLeading(t, b.open(t)) })
	}
}

func testRunOnlyWhileLeading(t *testing.T, st groups.Store) {
	var table leaseTable
	if pg, ok := st.(*pgstore.Store); ok {
		table = newPGLeases(pg)
	} else {
		mem := newMemLeases()
		table, st = mem, fencingStore{Store: st, leases: mem}
	}
	leases := newFakeLeases(t, table)
	s := groups.NewLedger(st)
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
	if err := table.takeover(t.Context(), "SHIP"); err != nil {
		t.Fatal(err)
	}
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
	onEachBackend(t, func(t *testing.T, base *groups.Ledger) {
		var s Store = unfenced{base}
		enqueue(t, s, "SHIP", "x")
		d := dispatch.NewDispatcher(Config{Tenant: "SHIP", Store: s, Handler: HandlerFunc(func(context.Context, queue.Operation) Outcome {
			t.Error("dispatched through an unfenced store")
			return Outcome{Kind: dispatch.Done}
		})})
		l := &fakeLead{f: newFakeLeases(t, newMemLeases()), tenant: "SHIP", ctx: t.Context(), cancel: func() {}, epoch: 7}
		if err := d.RunLed(t.Context(), l); err == nil || errors.Is(err, queue.ErrFenced) {
			t.Errorf("RunLed = %v, want an error saying the store cannot fence", err)
		}
	})
}

// unfenced hides the Ledger's Fenced.
type unfenced struct{ Store }
