package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replicas and the spread of tenants over them.
//
// Each replica keeps a heartbeat row (Heartbeat, renewed well inside its
// time to live, and removed by Depart on shutdown). Every replica computes
// the same assignment from the live replicas (Assign, rendezvous hashing):
// it tries to lead the tenants assigned to it and releases, at once, the
// leases it holds of tenants assigned to another live replica, which then
// takes them. Tenants are so spread evenly over the replicas, and a replica
// joining or leaving moves only the tenants it gains or had. Leases, not
// the assignment, decide who leads: while replicas disagree about who is
// alive, a tenant may wait for its lease, never have two leaders.

// Heartbeat records that replica is alive for ttl from now, by the
// database's clock.
func (s *Store) Heartbeat(ctx context.Context, replica string, ttl time.Duration) error {
	if replica == "" || ttl <= 0 {
		return errors.New("heartbeat: a replica needs a name and a positive time to live")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO replicas (name, expires) VALUES ($1, clock_timestamp() + $2 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET expires = clock_timestamp() + $2 * interval '1 microsecond'`, replica, ttl.Microseconds())
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", replica, err)
	}
	return nil
}

// Depart removes replica's heartbeat at once (a replica shutting down), so
// the others take over its tenants without waiting for it to expire.
func (s *Store) Depart(ctx context.Context, replica string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM replicas WHERE name = $1", replica); err != nil {
		return fmt.Errorf("depart %s: %w", replica, err)
	}
	return nil
}

// Replicas returns the replicas whose heartbeat has not expired, by name,
// and forgets those long gone (expired an hour ago).
func (s *Store) Replicas(ctx context.Context) ([]string, error) {
	if _, err := s.pool.Exec(ctx, "DELETE FROM replicas WHERE expires < clock_timestamp() - interval '1 hour'"); err != nil {
		return nil, fmt.Errorf("forget departed replicas: %w", err)
	}
	rows, err := s.pool.Query(ctx, "SELECT name FROM replicas WHERE expires > clock_timestamp() ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	return out, nil
}

// Assign returns, for each tenant, the replica that should lead it: of
// replicas, the one with the highest score for the tenant (rendezvous
// hashing). Every replica computes the same map from the same lists,
// whatever their order. With no replicas the map is empty.
func Assign(tenants, replicas []string) map[string]string {
	out := make(map[string]string, len(tenants))
	if len(replicas) == 0 {
		return out
	}
	for _, t := range tenants {
		var best string
		var bestScore uint64
		for i, r := range replicas {
			sc := score(t, r)
			if i == 0 || sc > bestScore || (sc == bestScore && r < best) {
				best, bestScore = r, sc
			}
		}
		out[t] = best
	}
	return out
}

// score is the rendezvous weight of replica for tenant.
func score(tenant, replica string) uint64 {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(replica))
	return binary.BigEndian.Uint64(h.Sum(nil))
}
