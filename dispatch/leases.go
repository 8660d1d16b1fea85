package dispatch

import (
	"context"

	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/queue"
)

// Leases decide which replica dispatches each tenant: a tenant's
// dispatcher runs only while its replica leads the tenant, so one
// dispatcher at a time runs each tenant's queue, whatever the number of
// replicas sharing the store.
type Leases interface {
	// Lead blocks until this replica leads tenant, and returns the lead;
	// it returns ctx's error if ctx ends first (or the leases' own error,
	// which the caller retries after a pause).
	Lead(ctx context.Context, tenant string) (Lead, error)
}

// Lead is the leadership of one tenant, held from Leases.Lead until it is
// lost or released.
type Lead interface {
	// Context ends when the lead is lost (taken over, lapsed or released),
	// before its lease could lapse: every upstream call and every write the
	// leader makes runs under it.
	Context() context.Context
	// Epoch is the lead's fencing token: it grows with every lead of the
	// tenant. The dispatcher's writes are fenced by it (see Fencing). Zero
	// means that leadership is not shared (one process): nothing to fence.
	Epoch() uint64
	// Release gives the lead up at once (a replica shutting down, a tenant
	// removed), so another replica may take it without waiting for it to
	// lapse, and ends Context. Call it once the leader's calls returned.
	Release(ctx context.Context) error
}

// RecordedLead is a Lead that carries its tenant's durable pacing record,
// shared by every replica: while the lead lasts the tenant's gate records
// every request start (and Retry-After hold) in it before the request is
// sent, and the new leader waits for what the previous one recorded.
type RecordedLead interface {
	Lead
	PacingRecord() pacing.Record
}

// Fencing is implemented by a queue.Store whose writes can be fenced by a
// lead's epoch (groups.Ledger): Fenced returns the store whose every write
// checks, in its own transaction, that epoch is still the tenant's lease
// (queue.Tx.Fence), and fails with queue.ErrFenced, writing nothing, once
// it is not. A dispatcher whose lead has a nonzero epoch writes through it.
type Fencing[E any] interface {
	Fenced(epoch uint64) queue.Store[E]
}

// FencedBackground is implemented by Background work that writes (the
// mirror's refresh): Fence makes its writes fenced by epoch from then on,
// as Fencing does for the queue. The dispatcher calls it when it starts
// leading, before any step.
type FencedBackground interface {
	Fence(epoch uint64)
}

// LocalLeases is the Leases of a single process (bbolt): it always leads
// every tenant at once, with epoch 0 (nothing to fence), and a lead ends
// only when released.
type LocalLeases struct{}

// Lead implements Leases.
func (LocalLeases) Lead(ctx context.Context, tenant string) (Lead, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	return localLead{ctx: lctx, cancel: cancel}, nil
}

type localLead struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (l localLead) Context() context.Context      { return l.ctx }
func (l localLead) Epoch() uint64                 { return 0 }
func (l localLead) Release(context.Context) error { l.cancel(); return nil }

// Leadership is what a replica's metrics read of its leads.
type Leadership interface {
	// Leading returns the tenants this replica leads now, in no order.
	Leading() []string
	// Handovers counts the leads this replica took up since it started:
	// each began after another replica's lead (or its own) was lost,
	// released or lapsed, or with the tenant's first lead.
	Handovers() uint64
}
