package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// wakeTimeout bounds one send of enqueue signals; wakeCloseTimeout the
// last one, at shutdown.
const (
	wakeTimeout      = 5 * time.Second
	wakeCloseTimeout = time.Second
)

// wakes signals enqueues on ChannelQueue, after they commit, coalesced.
//
// Sending the NOTIFY inside the enqueue's own transaction would make every
// enqueue take PostgreSQL's cluster-wide notification lock at its commit
// (which serializes every committing transaction that notified) and wake
// every replica's listener once per enqueue. Instead a committed enqueue
// adds its tenant to a set, and one sender at a time sends the set, each
// tenant once, in one statement: under load one NOTIFY transaction carries
// the enqueues of many requests. The signal is a hint either way (see
// Notification): one lost here (the replica died after the commit, or the
// send failed) delays the dispatcher no longer than the listeners' poll.
type wakes struct {
	send func(ctx context.Context, tenants []string) error
	log  *slog.Logger

	mu      sync.Mutex
	pending map[string]bool
	sending bool
	closed  bool // the store is closed: nothing more is sent
}

// close sends what is pending, once, within wakeCloseTimeout (so that
// enqueues committed just before a shutdown are not left to the other
// replicas' poll), and nothing more after it.
func (w *wakes) close() {
	w.mu.Lock()
	w.closed = true
	tenants := w.take()
	w.mu.Unlock()
	if len(tenants) > 0 {
		w.sendNow(tenants, wakeCloseTimeout)
	}
}

// take returns the pending tenants, sorted, and empties the set. Call it
// with mu held.
func (w *wakes) take() []string {
	tenants := slices.Sorted(maps.Keys(w.pending))
	clear(w.pending)
	return tenants
}

// sendNow sends tenants' signals within timeout, logging a failure (the
// other replicas' poll finds what a lost signal would have told them).
func (w *wakes) sendNow(tenants []string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := w.send(ctx, tenants); err != nil {
		w.log.Warn("signal enqueues to the other replicas (their poll will find them)", "tenants", len(tenants), "err", err)
	}
}

// add schedules a signal of tenant's enqueue; it never blocks on the
// database.
func (w *wakes) add(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending = map[string]bool{}
	}
	if w.closed {
		return
	}
	w.pending[tenant] = true
	if !w.sending {
		w.sending = true
		go w.run()
	}
}

// run sends the pending tenants until none are left.
func (w *wakes) run() {
	for {
		w.mu.Lock()
		if len(w.pending) == 0 {
			w.sending = false
			w.mu.Unlock()
			return
		}
		tenants := w.take()
		w.mu.Unlock()
		w.sendNow(tenants, wakeTimeout)
	}
}

// notifyQueue sends one ChannelQueue notification per tenant, in one
// statement (one transaction: delivered together).
func (s *Store) notifyQueue(ctx context.Context, tenants []string) error {
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t", ChannelQueue, tenants); err != nil {
		return fmt.Errorf("notify %s: %w", ChannelQueue, err)
	}
	return nil
}
