package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/queue"
)

// The pacing record keeps a tenant's upstream budget whole across a
// handover: the dispatcher records the start of every upstream request
// durably before sending it, its end when the answer came, and any hold
// TechPass asked for (Retry-After); a new leader reads them and waits
// (NextAllowedStart). All instants are the database's clock.
//
// The writes are fenced: each is one UPDATE of the tenant's pacing row
// (which AcquireLease creates) that writes only if the tenant's lease is
// live and at the caller's epoch, and takes the lease row FOR SHARE to do
// so. A takeover (AcquireLease updates the row) cannot
// commit between the check and the write: it waits for the writer, or the
// writer, arriving second, sees the new epoch and writes nothing. A
// deposed or lapsed leader gets ErrFenced.

// ErrFenced means the caller's epoch is not the tenant's live lease any
// more: it must not send the request (or must stop), and nothing was
// written. It is queue.ErrFenced, which the dispatcher stops on.
var ErrFenced = queue.ErrFenced

// fenceSQL is the fence of a transaction of tenant $1 at epoch $2: it
// finds the lease live at that epoch and holds its row FOR SHARE until the
// commit, so a takeover (which updates the row) waits for the transaction
// (see inFencedTx). No row means fenced (see fenceResult).
const fenceSQL = `SELECT 1 FROM leases
	WHERE tenant = $1 AND epoch = $2 AND holder <> '' AND expires > clock_timestamp()
	FOR SHARE`

// fenceResult turns the error of scanning fenceSQL's row into the fence's
// answer: ErrFenced for no row.
func fenceResult(tenant string, epoch int64, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("lease of %s at epoch %d: %w", tenant, epoch, ErrFenced)
	}
	if err != nil {
		return fmt.Errorf("check lease of %s: %w", tenant, err)
	}
	return nil
}

// inFencedTx runs fn in a transaction that first checks that tenant's
// lease is live at epoch and holds the lease's row FOR SHARE until the
// commit. A takeover (AcquireLease updates the row) waits for that commit,
// so whatever fn writes is ordered before it and seen by the new leader;
// a deposed leader (the epoch moved, the lease was released or lapsed)
// gets ErrFenced, and fn does not run. Every write the dispatcher makes as
// leader runs in one.
func (s *Store) inFencedTx(ctx context.Context, tenant string, epoch int64, fn func(pgx.Tx) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := fenceResult(tenant, epoch, tx.QueryRow(ctx, fenceSQL, tenant, epoch).Scan(&one)); err != nil {
			return err
		}
		return fn(tx)
	})
}

// fencedUpdate updates the tenant's pacing row (created by AcquireLease)
// in a fenced transaction: set is the SET list, $1 the tenant and $2 the
// epoch, more arguments after them. It returns the row's last start and
// hold as written.
func (s *Store) fencedUpdate(ctx context.Context, what, set string, tenant string, epoch int64, more ...any) (start, hold time.Time, err error) {
	var startp, holdp *time.Time
	err = s.inFencedTx(ctx, tenant, epoch, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `UPDATE pacing AS p SET epoch = $2, `+set+` WHERE tenant = $1
			RETURNING p.last_start, p.hold_until`, append([]any{tenant, epoch}, more...)...).Scan(&startp, &holdp)
	})
	if err != nil {
		return start, hold, fmt.Errorf("%s: %w", what, err)
	}
	return timeOf(startp), timeOf(holdp), nil
}

// RecordStart durably records that the leader of tenant at epoch starts an
// upstream request in from now (clock_timestamp() + in, by the database's
// clock; a negative in counts as 0), with no end yet, and returns that
// instant. Call it before sending, at most in before the planned send, so
// the write overlaps the wait: the recorded start is then earlier than the
// real send only by how late the send is. On ErrFenced, do not send.
// Fencing orders the record before any takeover, not before the lease's
// expiry: send under the Leadership's context, which ends by then.
func (s *Store) RecordStart(ctx context.Context, tenant string, epoch int64, in time.Duration) (time.Time, error) {
	start, _, err := s.fencedUpdate(ctx, "record request start",
		"last_start = clock_timestamp() + $3 * interval '1 microsecond', last_end = NULL", tenant, epoch, micros(in))
	return start, err
}

// micros is d in whole microseconds, rounded up (so a recorded start is
// never earlier than asked), and 0 for a negative d.
func micros(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return (d + time.Microsecond - 1).Microseconds()
}

// RecordEnd records that the request last started has ended (its answer,
// or its failure, came back), and that it was really sent late after its
// recorded start (a negative late counts as 0): the recorded start moves
// by that much, so a new leader spaces its first request from the real
// send. Without a recorded start it writes nothing but the epoch.
func (s *Store) RecordEnd(ctx context.Context, tenant string, epoch int64, late time.Duration) error {
	_, _, err := s.fencedUpdate(ctx, "record request end",
		`last_end = CASE WHEN p.last_start IS NULL THEN NULL ELSE clock_timestamp() END,
		last_start = p.last_start + $3 * interval '1 microsecond'`, tenant, epoch, micros(late))
	return err
}

// RecordHold records that TechPass asked for no request before d from now
// (by the database's clock): a Retry-After. A hold only ever extends; it
// returns the hold now recorded.
func (s *Store) RecordHold(ctx context.Context, tenant string, epoch int64, d time.Duration) (time.Time, error) {
	_, until, err := s.fencedUpdate(ctx, "record hold",
		"hold_until = greatest(p.hold_until, clock_timestamp() + $3 * interval '1 microsecond')", tenant, epoch, d.Microseconds())
	return until, err
}

// Pace is when a tenant's next upstream request may start.
type Pace struct {
	// Now is the database's clock when asked.
	Now time.Time
	// Next is the earliest start allowed, by the database's clock (Now if
	// nothing holds it back).
	Next time.Time
	// Wait is Next - Now (never negative): how long to wait from the
	// moment the question was sent, by any clock.
	Wait time.Duration
}

// NextAllowedStart says when tenant's next request may start: the last
// start + interval + guard, plus a further interval when the last start
// has no recorded end (that request may still be running, and TechPass
// may count it until it ends), and no earlier than a recorded hold. With
// no record, now.
func (s *Store) NextAllowedStart(ctx context.Context, tenant string, interval, guard time.Duration) (Pace, error) {
	var p Pace
	var start, end, hold *time.Time
	err := s.pool.QueryRow(ctx, `SELECT clock_timestamp(), p.last_start, p.last_end, p.hold_until
		FROM (SELECT 1) AS one LEFT JOIN pacing p ON p.tenant = $1`, tenant).Scan(&p.Now, &start, &end, &hold)
	if err != nil {
		return Pace{}, fmt.Errorf("pacing of %s: %w", tenant, err)
	}
	p.Now = p.Now.UTC()
	p.Next = p.Now
	if start != nil {
		next := start.Add(interval + guard)
		if end == nil {
			next = next.Add(interval)
		}
		if next.After(p.Next) {
			p.Next = next.UTC()
		}
	}
	if hold != nil && hold.After(p.Next) {
		p.Next = hold.UTC()
	}
	p.Wait = p.Next.Sub(p.Now)
	return p, nil
}
