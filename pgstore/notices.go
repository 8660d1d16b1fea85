package pgstore

import (
	"context"
	"fmt"
	"time"
)

// Webhook notices: what TechPass's application events (credentials
// expiring, application deleted) leave in /readyz, kept in the store so
// that a restart, or another replica, shows them too. Each call is one
// statement.

// PutWebhookNotice keeps text as tenant's notice of kind (replacing the
// one before) until expires.
func (s *Store) PutWebhookNotice(ctx context.Context, tenant, kind, text string, expires time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_notices (tenant, kind, text, expires) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, kind) DO UPDATE SET text = excluded.text, expires = excluded.expires`,
		tenant, kind, text, expires.UTC())
	if err != nil {
		return fmt.Errorf("keep webhook notice of %s: %w", tenant, err)
	}
	return nil
}

// WebhookNotices returns, per tenant, the texts of its notices not expired
// at now, in kind order.
func (s *Store) WebhookNotices(ctx context.Context, now time.Time) (map[string][]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT tenant, text FROM webhook_notices WHERE expires > $1 ORDER BY tenant, kind", now.UTC())
	if err != nil {
		return nil, fmt.Errorf("webhook notices: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var tenant, text string
		if err := rows.Scan(&tenant, &text); err != nil {
			return nil, fmt.Errorf("webhook notices: %w", err)
		}
		out[tenant] = append(out[tenant], text)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhook notices: %w", err)
	}
	return out, nil
}

// DeleteWebhookNotices forgets tenant's notices (the tenant is removed).
func (s *Store) DeleteWebhookNotices(ctx context.Context, tenant string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM webhook_notices WHERE tenant = $1", tenant); err != nil {
		return fmt.Errorf("delete webhook notices of %s: %w", tenant, err)
	}
	return nil
}

// PruneWebhookNotices forgets the notices expired at now and returns how
// many (webhooks.Store's PruneDeliveries will call it, as boltstore's
// does, once the deliveries are here).
func (s *Store) PruneWebhookNotices(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM webhook_notices WHERE expires <= $1", now.UTC())
	if err != nil {
		return 0, fmt.Errorf("prune webhook notices: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
