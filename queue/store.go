package queue

import (
	"context"
	"time"
)

// Store persists operations. Implementations must be safe for concurrent use
// and must make every method durable before returning. Each tenant's queue
// is kept per project, in submission order. E is the type of the domain
// changes (effects) committed atomically with an operation's outcome; the
// store applies them in the same transaction and knows nothing of their
// meaning.
type Store[E any] interface {
	// Enqueue stores op as queued at the tail of its project's queue,
	// assigning Seq (increasing per tenant), and returns the stored
	// operation. It refuses with a *QueueFullError, writing nothing, when
	// the tenant or the project already has limits' pending operations. If
	// op.Idempotency is set and its key was used before (and has not
	// expired), it writes nothing and returns a *ReplayError for the same
	// fingerprint or ErrIdempotencyMismatch for another. (See EnqueueIn.)
	Enqueue(ctx context.Context, op Operation, limits Limits) (Operation, error)
	// Operation returns the operation with the given id, or ErrNotFound.
	Operation(ctx context.Context, id string) (Operation, error)
	// Heads returns the first pending operation of each project of the
	// tenant that has one, in project order; empty when there is none.
	Heads(ctx context.Context, tenant string) ([]Operation, error)
	// Head returns the tenant's pending operation with the lowest Seq, or
	// ErrEmpty.
	Head(ctx context.Context, tenant string) (Operation, error)
	// UpdateOperation applies fn to the operation in one transaction and
	// returns the result; ErrNotFound if there is none, fn's error if it
	// fails (nothing is written then). fn may run more than once (a store
	// may retry a shared transaction), so it must not keep state outside
	// the operation.
	UpdateOperation(ctx context.Context, id string, fn func(*Operation) error) (Operation, error)
	// Complete stores op's final state (Succeeded or Failed, with its Result
	// or Failure), removes it from the queue and applies effects in order,
	// all in one transaction (see SettleIn); if an effect fails nothing is
	// written.
	Complete(ctx context.Context, op Operation, effects []E) error
	// Progress stores op, which stays pending at its place in its project's
	// queue, and applies effects, all in one transaction.
	Progress(ctx context.Context, op Operation, effects []E) error
	// Finish applies fn to a pending operation in one transaction; fn sets a
	// final state and returns the effects to apply with it. The operation
	// then leaves the queue. If fn returns an error nothing is written and
	// the error is returned.
	Finish(ctx context.Context, id string, fn func(*Operation) ([]E, error)) (Operation, error)
	// RequeueRunning puts every Running operation of the tenant back to
	// Queued (keeping its place) and returns how many there were (see
	// RequeueIn). The one dispatcher that owns the tenant's queue calls it
	// before it dispatches anything: an operation still running then was
	// cut off (a crash, a stopped dispatcher) and is run again.
	RequeueRunning(ctx context.Context, tenant string, now time.Time) (int, error)
	// Depth returns how many operations of the tenant are pending.
	Depth(ctx context.Context, tenant string) (Depth, error)
	// Place returns how many pending operations of op's project are before
	// op in its queue, and the tenant's Depth, read together (one
	// snapshot, one round trip): what an estimate of op's start needs.
	Place(ctx context.Context, op Operation) (ahead int, depth Depth, err error)
	// Idempotent returns the operation id recorded for a scope's key, if
	// the key is known and has not expired at now, with its fingerprint.
	Idempotent(ctx context.Context, scope, key string, now time.Time) (opID, fingerprint string, ok bool, err error)
	// PurgeIdempotency forgets keys that expired before now and returns how
	// many it removed.
	PurgeIdempotency(ctx context.Context, now time.Time) (int, error)
}
