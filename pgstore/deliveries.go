package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/webhooks"
)

// Webhook delivery records (webhooks.Store): the deliveries table, written
// in the same transaction as the mirror, under the tenant's lock (see
// groups.go).

var (
	_ webhooks.Store = (*Store)(nil)
	_ webhooks.Tx    = (*txn)(nil)
)

// UpdateDeliveries implements webhooks.Store: it is Update, with the
// delivery records in the same transaction.
func (s *Store) UpdateDeliveries(ctx context.Context, tenant string, fn func(webhooks.Tx) error) error {
	return s.Update(ctx, tenant, func(tx groups.Tx) error { return fn(tx.(*txn)) })
}

// PruneDeliveries implements webhooks.Store, in one statement.
func (s *Store) PruneDeliveries(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM deliveries WHERE expires <= $1 RETURNING 1),
		u AS (DELETE FROM deleted_users WHERE expires <= $1 RETURNING 1)
		SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM u)`, now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("prune delivery records: %w", err)
	}
	return n, nil
}

func (t *txn) Delivery(digest [32]byte) (webhooks.Record, bool, error) {
	var r webhooks.Record
	var pending []byte
	found := false
	err := t.read(func(row pgx.Row) error {
		err := row.Scan(&r.Expires, &pending)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	}, "SELECT expires, pending FROM deliveries WHERE tenant = $1 AND digest = $2", t.tenant, digest[:])
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("delivery record of %s: %w", t.tenant, err)
		}
		return webhooks.Record{}, false, err
	}
	r.Expires = r.Expires.UTC()
	if pending != nil {
		r.Pending = &webhooks.Applied{}
		if err := json.Unmarshal(pending, r.Pending); err != nil {
			return webhooks.Record{}, false, fmt.Errorf("decode delivery record of %s: %w", t.tenant, err)
		}
	}
	return r, true, nil
}

func (t *txn) PutDelivery(digest [32]byte, r webhooks.Record) error {
	if err := t.writable(); err != nil {
		return err
	}
	var pending []byte
	if r.Pending != nil {
		var err error
		if pending, err = json.Marshal(r.Pending); err != nil {
			return fmt.Errorf("encode delivery record of %s: %w", t.tenant, err)
		}
	}
	return t.write(`INSERT INTO deliveries (tenant, digest, expires, pending) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, digest) DO UPDATE SET expires = EXCLUDED.expires, pending = EXCLUDED.pending`,
		t.tenant, digest[:], r.Expires.UTC(), pending)
}
