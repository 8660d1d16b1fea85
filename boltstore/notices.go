package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketNotices holds, per tenant, what TechPass's application events
// (credentials expiring, application deleted) leave in /readyz: by kind, a
// noticeRecord. Kept in the store so that a restart does not lose them.
var bucketNotices = []byte("webhookNotices")

type noticeRecord struct {
	Text    string    `json:"text"`
	Expires time.Time `json:"expires"`
}

// PutWebhookNotice keeps text as tenant's notice of kind (replacing the
// one before) until expires.
func (s *Store) PutWebhookNotice(ctx context.Context, tenant, kind, text string, expires time.Time) error {
	v, err := json.Marshal(noticeRecord{Text: text, Expires: expires.UTC()})
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *bolt.Tx) error {
		nb, err := tx.CreateBucketIfNotExists(bucketNotices)
		if err != nil {
			return err
		}
		tb, err := nb.CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return err
		}
		return tb.Put([]byte(kind), v)
	})
	if err != nil {
		return fmt.Errorf("keep webhook notice of %s: %w", tenant, err)
	}
	return nil
}

// WebhookNotices returns, per tenant, the texts of its notices not expired
// at now, in kind order.
func (s *Store) WebhookNotices(ctx context.Context, now time.Time) (map[string][]string, error) {
	out := map[string][]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketNotices)
		if nb == nil {
			return nil
		}
		return nb.ForEachBucket(func(tenant []byte) error {
			return nb.Bucket(tenant).ForEach(func(_, v []byte) error {
				var r noticeRecord
				if err := json.Unmarshal(v, &r); err != nil || !r.Expires.After(now) {
					return nil // unreadable or expired: pruned with the deliveries
				}
				out[string(tenant)] = append(out[string(tenant)], r.Text)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("webhook notices: %w", err)
	}
	return out, nil
}

// DeleteWebhookNotices forgets tenant's notices (the tenant is removed).
func (s *Store) DeleteWebhookNotices(ctx context.Context, tenant string) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketNotices)
		if nb == nil || nb.Bucket([]byte(tenant)) == nil {
			return nil
		}
		return nb.DeleteBucket([]byte(tenant))
	})
}

// pruneNotices forgets the notices expired at now.
func (s *Store) pruneNotices(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		nb := tx.Bucket(bucketNotices)
		if nb == nil {
			return nil
		}
		return nb.ForEachBucket(func(tenant []byte) error {
			tb := nb.Bucket(tenant)
			var old [][]byte
			err := tb.ForEach(func(k, v []byte) error {
				var r noticeRecord
				if err := json.Unmarshal(v, &r); err != nil || !r.Expires.After(now) {
					old = append(old, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range old {
				if err := tb.Delete(k); err != nil {
					return err
				}
			}
			n += len(old)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhook notices: %w", err)
	}
	return n, nil
}
