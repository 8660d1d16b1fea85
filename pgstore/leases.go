package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leases make one replica at a time the dispatcher of a tenant.
//
// A lease has a holder (a replica's name), an expiry and an epoch, the
// fencing token: the epoch moves whenever the lease changes hands or is
// taken anew after it lapsed or was released, and never goes back (rows
// are never deleted). Every write the holder makes as dispatcher checks its
// epoch in the same transaction (RecordStart, RecordEnd, RecordHold), so a
// deposed holder that has not noticed yet changes nothing.
//
// Expiry is decided by the database's clock alone: a lease is free when
// clock_timestamp() has passed its expires. A holder must stop acting
// before that instant; it cannot read the database's clock, so it keeps
// Lease.Deadline: its own clock's reading taken before the request was
// sent, plus the time to live. The database set the expiry at or after the
// moment it received the request, so Deadline falls at or before the
// expiry, whatever the offset between the two clocks (only their rates
// must agree, which they do to far better than the margins used here).
//
// Acquire, Renew and Release are each one statement on the lease's row,
// which the database serializes; an INSERT ... ON CONFLICT takes the row
// whether or not it exists yet, and reads the clock only once it holds the
// row's lock, so an expiry is never computed before a competing write.

// ErrLeaseLost means the lease was not the caller's any more: another
// holder took it, it was released, or it lapsed.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a held lease.
type Lease struct {
	Tenant string
	Holder string
	// Epoch is the fencing token: pass it to the dispatcher's writes.
	Epoch int64
	// Expires is when the lease lapses, by the database's clock.
	Expires time.Time
	// Deadline is the latest local time (monotonic clock) at which the
	// holder may still act: before Expires, whatever the clocks' offset.
	Deadline time.Time
}

// LeaseInfo is a lease as listed, for metrics and operators.
type LeaseInfo struct {
	Tenant string
	// Holder is empty after a release.
	Holder  string
	Epoch   int64
	Expires time.Time
	// Live reports whether the lease had not lapsed when listed (by the
	// database's clock).
	Live bool
	// AcquiredAt is when the current epoch began.
	AcquiredAt time.Time
}

// AcquireLease takes tenant's lease for holder for ttl, if it is free
// (never taken, released, or lapsed) or already holder's; ok is false
// while another holder's lease is live. Taking a free lease moves the
// epoch; acquiring one's own live lease extends it and keeps the epoch.
func (s *Store) AcquireLease(ctx context.Context, tenant, holder string, ttl time.Duration) (Lease, bool, error) {
	if holder == "" {
		return Lease{}, false, errors.New("acquire lease: a holder needs a name")
	}
	if ttl <= 0 {
		return Lease{}, false, fmt.Errorf("acquire lease: time to live %v is not positive", ttl)
	}
	sent := time.Now()
	var l Lease
	// The tenant's pacing row is created with its first lease, so the
	// fenced pacing writes are plain updates.
	err := s.pool.QueryRow(ctx, `WITH pacing_row AS (
			INSERT INTO pacing (tenant, epoch) VALUES ($1, 0) ON CONFLICT (tenant) DO NOTHING)
		INSERT INTO leases AS l (tenant, holder, epoch, expires, acquired_at)
		VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond', clock_timestamp())
		ON CONFLICT (tenant) DO UPDATE SET
			holder = excluded.holder,
			expires = clock_timestamp() + $3 * interval '1 microsecond',
			epoch = CASE WHEN l.holder = excluded.holder AND l.expires > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END,
			acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires > clock_timestamp() THEN l.acquired_at ELSE clock_timestamp() END
		WHERE l.holder = excluded.holder OR l.holder = '' OR l.expires <= clock_timestamp()
		RETURNING epoch, expires`, tenant, holder, ttl.Microseconds()).Scan(&l.Epoch, &l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease of %s: %w", tenant, err)
	}
	l.Tenant, l.Holder, l.Expires, l.Deadline = tenant, holder, l.Expires.UTC(), sent.Add(ttl)
	return l, true, nil
}

// RenewLease extends a held lease to ttl from now (by the database's
// clock) and returns it renewed, with the same epoch. ErrLeaseLost if the
// epoch moved, the lease was released or it has lapsed: the holder must
// stop dispatching and may try AcquireLease again.
func (s *Store) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("renew lease: time to live %v is not positive", ttl)
	}
	sent := time.Now()
	err := s.pool.QueryRow(ctx, `UPDATE leases SET expires = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE tenant = $1 AND holder = $2 AND epoch = $3 AND expires > clock_timestamp()
		RETURNING expires`, l.Tenant, l.Holder, l.Epoch, ttl.Microseconds()).Scan(&l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, fmt.Errorf("renew lease of %s (epoch %d): %w", l.Tenant, l.Epoch, ErrLeaseLost)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("renew lease of %s: %w", l.Tenant, err)
	}
	l.Expires, l.Deadline = l.Expires.UTC(), sent.Add(ttl)
	return l, nil
}

// ReleaseLease gives the lease up at once (a replica shutting down), so
// another replica may take it without waiting for it to lapse. Releasing
// a lease no longer held is not an error.
func (s *Store) ReleaseLease(ctx context.Context, l Lease) error {
	_, err := s.pool.Exec(ctx, `UPDATE leases SET holder = '', expires = clock_timestamp()
		WHERE tenant = $1 AND holder = $2 AND epoch = $3`, l.Tenant, l.Holder, l.Epoch)
	if err != nil {
		return fmt.Errorf("release lease of %s: %w", l.Tenant, err)
	}
	return nil
}

// Leases lists every tenant's lease, by tenant: which replica leads which
// tenant. An epoch counts the times its lease was taken anew (Epoch - 1
// handovers, counting a lapse or release retaken by the same holder).
func (s *Store) Leases(ctx context.Context) ([]LeaseInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant, holder, epoch, expires, holder <> '' AND expires > clock_timestamp(), acquired_at
		FROM leases ORDER BY tenant`)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LeaseInfo, error) {
		var li LeaseInfo
		err := r.Scan(&li.Tenant, &li.Holder, &li.Epoch, &li.Expires, &li.Live, &li.AcquiredAt)
		li.Expires, li.AcquiredAt = li.Expires.UTC(), li.AcquiredAt.UTC()
		return li, err
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}
