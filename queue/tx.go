package queue

import (
	"fmt"
	"time"
)

// IdempotencyRecord is what a store remembers of an idempotency key.
type IdempotencyRecord struct {
	// Operation is the id of the operation the key's request queued.
	Operation   string
	Fingerprint string
	// Expires is when the key may be used for another request.
	Expires time.Time
}

// QueueTx is a tenant's queue records inside one store transaction (see
// groups.Store.Update, which runs it atomically and serialized with every
// other transaction of the tenant). Its methods are data primitives that
// decide nothing: the rules of the queue (the checks of an enqueue, what
// completing an operation writes, crash recovery) are EnqueueIn, SettleIn
// and RequeueIn, written once over it for every backend.
type Tx interface {
	// Operation returns the stored operation with id, or ErrNotFound
	// (wrapped).
	Operation(id string) (Operation, error)
	// PutOperation stores op under op.ID as it is, replacing a stored one.
	// It does not move op in or out of a queue.
	PutOperation(op Operation) error
	// Append puts op at the tail of its project's queue: it sets op.Seq to
	// the next number of the tenant's sequence (greater than every Seq the
	// tenant was given before, never reused), counts op in Depth, stores op
	// (as PutOperation) and returns it.
	Append(op Operation) (Operation, error)
	// Unqueue takes op (found by its Project and Seq) off its project's
	// queue and out of Depth, and reports whether it was there. The stored
	// operation is kept.
	Unqueue(op Operation) (bool, error)
	// Depth returns the tenant's pending counts: how many operations each
	// project's queue holds. The store keeps them in step with Append and
	// Unqueue in the same transaction, so reading them costs no scan.
	Depth() (Depth, error)
	// Queued returns the operations on the tenant's queues, every project,
	// in Seq order.
	Queued() ([]Operation, error)
	// Idempotency returns what is recorded for scope's key, expired or
	// not, and whether anything is.
	Idempotency(scope, key string) (IdempotencyRecord, bool, error)
	// PutIdempotency records ik's key as used by operation opID, replacing
	// any record of it.
	PutIdempotency(ik Idempotency, opID string) error
	// Fence returns ErrFenced (wrapped) unless epoch is the live lease of
	// the transaction's tenant, and keeps it so until the commit: a
	// takeover of the lease is ordered after this transaction, so what it
	// writes is seen by the next leader, and a deposed leader's
	// transaction writes nothing. Every write of a dispatcher that leads
	// its tenant by lease calls it first (see groups.Ledger.Fenced). A
	// store with no leases (one process: bbolt, memory) returns nil.
	Fence(epoch uint64) error
}

// CheckIdempotency returns a *ReplayError if op's idempotency key is
// remembered, unexpired at op.CreatedAt, for the same request, and
// ErrIdempotencyMismatch if for another; nil if op has no key or it is
// unused. It writes nothing.
func CheckIdempotency(tx Tx, op Operation) error {
	ik := op.Idempotency
	if ik == nil {
		return nil
	}
	r, ok, err := tx.Idempotency(ik.Scope, ik.Key)
	if err != nil || !ok || !r.Expires.After(op.CreatedAt) {
		return err
	}
	if r.Fingerprint != ik.Fingerprint {
		return ErrIdempotencyMismatch
	}
	return &ReplayError{OperationID: r.Operation}
}

// CheckEnqueue runs the checks of an enqueue, writing nothing: idempotency
// first (a replay must find its operation even if the queue filled up
// since), then the queue limits (a *QueueFullError).
func CheckEnqueue(tx Tx, op Operation, limits Limits) error {
	if err := CheckIdempotency(tx, op); err != nil {
		return err
	}
	d, err := tx.Depth()
	if err != nil {
		return err
	}
	if (limits.Tenant > 0 && d.Total >= limits.Tenant) || (limits.Project > 0 && d.Projects[op.Project] >= limits.Project) {
		return &QueueFullError{Depth: d}
	}
	return nil
}

// EnqueueIn is Store.Enqueue inside tx: the checks of CheckEnqueue, then op
// queued at the tail of its project's queue with its idempotency key
// recorded. The caller's transaction writes nothing if it fails.
func EnqueueIn(tx Tx, op Operation, limits Limits) (Operation, error) {
	if err := CheckEnqueue(tx, op, limits); err != nil {
		return Operation{}, err
	}
	return QueueIn(tx, op)
}

// QueueIn queues op (Queued, at the tail of its project's queue) and records
// its idempotency key, with no check: the caller has run CheckEnqueue in the
// same transaction.
func QueueIn(tx Tx, op Operation) (Operation, error) {
	op.State = Queued
	op, err := tx.Append(op)
	if err != nil {
		return Operation{}, fmt.Errorf("append %s: %w", op.ID, err)
	}
	if ik := op.Idempotency; ik != nil {
		if err := tx.PutIdempotency(*ik, op.ID); err != nil {
			return Operation{}, fmt.Errorf("record idempotency key of %s: %w", op.ID, err)
		}
	}
	return op, nil
}

// RecordIn stores op, which is already in a final state, without queueing
// it (work shown done before it was queued), with its idempotency key; the
// idempotency check applies, the queue limits do not.
func RecordIn(tx Tx, op Operation) (Operation, error) {
	if !op.State.Final() {
		return Operation{}, fmt.Errorf("record %s: state %q is not final", op.ID, op.State)
	}
	if err := CheckIdempotency(tx, op); err != nil {
		return Operation{}, err
	}
	if ik := op.Idempotency; ik != nil {
		if err := tx.PutIdempotency(*ik, op.ID); err != nil {
			return Operation{}, err
		}
	}
	return op, tx.PutOperation(op)
}

// SettleIn stores op, which is in its final state, and takes it off its
// queue; ErrNotFound if no such operation is stored.
func SettleIn(tx Tx, op Operation) error {
	if _, err := tx.Operation(op.ID); err != nil {
		return err
	}
	if err := tx.PutOperation(op); err != nil {
		return err
	}
	_, err := tx.Unqueue(op)
	return err
}

// RequeueIn puts every Running operation of tx's tenant back to Queued at
// now, keeping its place, and returns how many there were.
func RequeueIn(tx Tx, now time.Time) (int, error) {
	ops, err := tx.Queued()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, op := range ops {
		if op.State != Running {
			continue
		}
		op.State, op.UpdatedAt = Queued, now
		if err := tx.PutOperation(op); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
