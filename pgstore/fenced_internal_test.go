package pgstore

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/internal/pgtest"
)

// TestFencedTxOrdersBeforeTakeover: a leader's fenced transaction that
// began while its lease was live commits even if the lease lapses
// meanwhile, and a takeover waits for it, so the new leader sees what it
// wrote; once taken over, the old epoch's fenced transactions do not run.
func TestFencedTxOrdersBeforeTakeover(t *testing.T) {
	dsn := pgtest.DSN(t)
	open := func() *Store {
		s, err := Open(t.Context(), Config{DSN: dsn, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	a, b := open(), open()
	ctx := t.Context()
	// A second: ample for the fenced transaction to begin, even on a
	// loaded machine.
	const ttl = time.Second
	la, ok, err := a.AcquireLease(ctx, "SHIP", "replica-a", ttl)
	if err != nil || !ok {
		t.Fatalf("AcquireLease: %v, %v", ok, err)
	}
	var wg sync.WaitGroup
	var start time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := a.inFencedTx(ctx, "SHIP", la.Epoch, func(tx pgx.Tx) error {
			time.Sleep(2 * ttl) // the lease lapses meanwhile
			return tx.QueryRow(ctx, "UPDATE pacing SET last_start = clock_timestamp() WHERE tenant = 'SHIP' RETURNING last_start").Scan(&start)
		})
		if err != nil {
			t.Errorf("fenced transaction begun under a live lease: %v", err)
		}
	}()
	time.Sleep(ttl + ttl/2) // lapsed by now, the transaction still open
	lb, ok, err := b.AcquireLease(ctx, "SHIP", "replica-b", time.Minute)
	if err != nil || !ok {
		t.Fatalf("takeover of the lapsed lease: %v, %v", ok, err)
	}
	// The takeover waited for the old leader's commit: its write is
	// visible as soon as the takeover returns. (Compared by what the
	// database shows, not by the two goroutines' clocks, which race after
	// the commit releases both.)
	var seen *time.Time
	if err := b.pool.QueryRow(ctx, "SELECT last_start FROM pacing WHERE tenant = 'SHIP'").Scan(&seen); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if seen == nil || !seen.Equal(start) {
		t.Errorf("right after the takeover the old leader's start reads %v, want %v: the takeover did not wait for its commit", seen, start)
	}
	p, err := b.NextAllowedStart(ctx, "SHIP", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Next.Equal(start.UTC().Add(2 * time.Minute)) {
		t.Errorf("the new leader does not see the old leader's start %v: next %v", start, p.Next)
	}
	ran := false
	err = a.inFencedTx(ctx, "SHIP", la.Epoch, func(pgx.Tx) error { ran = true; return nil })
	if !errors.Is(err, ErrFenced) || ran {
		t.Errorf("old epoch after the takeover: %v, ran %v; want ErrFenced, not run", err, ran)
	}
	if err := b.inFencedTx(ctx, "SHIP", lb.Epoch, func(pgx.Tx) error { return nil }); err != nil {
		t.Errorf("new epoch: %v", err)
	}
}
