package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Leadership keeps a held lease renewed and gives the holder a context
// that ends before the lease could lapse: every upstream call the holder
// makes as leader runs under it (or a context derived from it), so no call
// outlives the lease.
//
// It renews every third of the time to live; a renewal that fails for
// another reason than ErrLeaseLost (the database unreachable) is tried
// again every tenth of it. The context ends, with cause ErrLeaseLost, when
// a renewal finds the lease lost, when the lease's Deadline (local clock,
// at or before the database's expiry) passes without a renewal, or when
// Release is called. It is safe for concurrent use.
type Leadership struct {
	s      *Store
	ttl    time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	once   sync.Once
	done   chan struct{}

	mu    sync.Mutex
	lease Lease
}

// Lead starts keeping l, acquired with AcquireLease for ttl. The
// leadership ends with ctx too.
func (s *Store) Lead(ctx context.Context, l Lease, ttl time.Duration) *Leadership {
	lctx, cancel := context.WithCancelCause(ctx)
	ld := &Leadership{s: s, ttl: ttl, ctx: lctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}), lease: l}
	go ld.keep()
	return ld
}

// Context is the leader's context; see Leadership.
func (ld *Leadership) Context() context.Context { return ld.ctx }

// Lease is the lease as last renewed; its Epoch fences the leader's writes.
func (ld *Leadership) Lease() Lease {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.lease
}

// keep renews the lease until it is lost, lapses, or the leadership ends.
func (ld *Leadership) keep() {
	defer close(ld.done)
	l := ld.Lease()
	lapse := time.NewTimer(time.Until(l.Deadline))
	defer lapse.Stop()
	next := time.NewTimer(ld.ttl / 3)
	defer next.Stop()
	for {
		select {
		case <-ld.ctx.Done():
			return
		case <-ld.stop:
			return
		case <-lapse.C:
			ld.cancel(fmt.Errorf("lease of %s (epoch %d) not renewed before its deadline: %w", l.Tenant, l.Epoch, ErrLeaseLost))
			return
		case <-next.C:
		}
		// A renewal may not outlast the lease it renews.
		rctx, cancel := context.WithDeadline(ld.ctx, l.Deadline)
		renewed, err := ld.s.RenewLease(rctx, l, ld.ttl)
		cancel()
		switch {
		case errors.Is(err, ErrLeaseLost):
			ld.cancel(err)
			return
		case err != nil:
			next.Reset(ld.ttl / 10) // the lapse timer still runs
			continue
		}
		l = renewed
		ld.mu.Lock()
		ld.lease = l
		ld.mu.Unlock()
		lapse.Reset(time.Until(l.Deadline))
		next.Reset(ld.ttl / 3)
	}
}

// Release ends the leadership: it stops renewing, ends the context, and
// releases the lease so another replica may take it at once (a replica
// shutting down). Call it once the leader's calls have returned.
func (ld *Leadership) Release(ctx context.Context) error {
	ld.once.Do(func() { close(ld.stop) })
	<-ld.done
	ld.cancel(fmt.Errorf("leadership released: %w", ErrLeaseLost))
	return ld.s.ReleaseLease(ctx, ld.Lease())
}
