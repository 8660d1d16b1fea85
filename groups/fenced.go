package groups

import (
	"context"
	"fmt"

	"github.com/groupgate/groupgate/queue"
)

// Fenced returns the ledger as seen by a dispatcher that leads its tenant
// by a lease at epoch (see dispatch.Leases): every write, through any of
// the ledger's methods, first checks in its own transaction that epoch is
// still the tenant's live lease (queue.Tx.Fence), and writes nothing, with
// queue.ErrFenced, once it is not. Reads are the ledger's.
func (l *Ledger) Fenced(epoch uint64) queue.Store[Effect] { return l.FencedLedger(epoch) }

// FencedLedger is Fenced as a *Ledger, for the other writers a leader runs
// (the Reconciler).
func (l *Ledger) FencedLedger(epoch uint64) *Ledger {
	return &Ledger{Store: fencedStore{Store: l.Store, epoch: epoch}}
}

// fencedStore is a Store whose every write transaction calls Tx.Fence
// first.
type fencedStore struct {
	Store
	epoch uint64
}

// Update runs fn after the fence.
func (s fencedStore) Update(ctx context.Context, tenant string, fn func(Tx) error) error {
	return s.Store.Update(ctx, tenant, func(tx Tx) error {
		if err := tx.Fence(s.epoch); err != nil {
			return err
		}
		return fn(tx)
	})
}

// UpdateOperation is the Store's, in a fenced Update of the operation's
// tenant.
func (s fencedStore) UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error) {
	found, err := s.Store.Operation(ctx, id)
	if err != nil {
		return queue.Operation{}, err
	}
	var op queue.Operation
	err = s.Update(ctx, found.Tenant, func(tx Tx) error {
		var err error
		if op, err = tx.Operation(id); err != nil {
			return err
		}
		if err := fn(&op); err != nil {
			return err
		}
		if op.ID != id || op.Tenant != found.Tenant {
			return fmt.Errorf("update operation %s: its id or tenant changed", id)
		}
		return tx.PutOperation(op)
	})
	if err != nil {
		return queue.Operation{}, err
	}
	return op, nil
}
