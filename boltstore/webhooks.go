package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/webhooks"
)

// This file holds the records of TechPass's webhooks: the delivery records
// (webhooks.Tx) and the deleted-user marks (groups.Tx). What a delivery
// means is decided in webhooks and groups; these are data.

// bucketWebhooks holds, per tenant, a record of each delivery (by digest):
// when it expires (8 bytes, big-endian Unix nanoseconds), followed, while
// its outcome is not recorded, by its pending webhooks.Applied in JSON.
// It is created by the first delivery.
var bucketWebhooks = []byte("webhooks")

var _ webhooks.Store = (*Store)(nil)

var _ webhooks.Tx = (*txn)(nil)

// UpdateDeliveries implements webhooks.Store as Update implements
// groups.Store: fn runs inside the committer's write transaction, so the
// delivery records and the mirror's records it writes commit together.
func (s *Store) UpdateDeliveries(ctx context.Context, tenant string, fn func(webhooks.Tx) error) error {
	var touched []string
	defer func() { s.gens.forget(touched...) }()
	return s.write(ctx, func(btx *bolt.Tx) error {
		touched = touched[:0] // fn may run again
		return fn(&txn{tx: btx, tenant: tenant, touched: &touched})
	})
}

// Delivery implements webhooks.Tx.
func (t *txn) Delivery(digest [32]byte) (webhooks.Record, bool, error) {
	wb := t.tx.Bucket(bucketWebhooks)
	if wb == nil || wb.Bucket([]byte(t.tenant)) == nil {
		return webhooks.Record{}, false, nil
	}
	v := wb.Bucket([]byte(t.tenant)).Get(digest[:])
	if len(v) < 8 {
		return webhooks.Record{}, false, nil
	}
	r := webhooks.Record{Expires: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()}
	if len(v) > 8 {
		r.Pending = new(webhooks.Applied)
		if err := json.Unmarshal(v[8:], r.Pending); err != nil {
			return webhooks.Record{}, false, fmt.Errorf("decode pending delivery: %w", err)
		}
	}
	return r, true, nil
}

// PutDelivery implements webhooks.Tx.
func (t *txn) PutDelivery(digest [32]byte, r webhooks.Record) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(r.Expires.UnixNano()))
	if r.Pending != nil {
		pending, err := json.Marshal(r.Pending)
		if err != nil {
			return fmt.Errorf("encode pending delivery: %w", err)
		}
		v = append(v, pending...)
	}
	wb, err := t.tx.CreateBucketIfNotExists(bucketWebhooks)
	if err != nil {
		return err
	}
	tb, err := wb.CreateBucketIfNotExists([]byte(t.tenant))
	if err != nil {
		return err
	}
	return tb.Put(digest[:], v)
}

// PruneDeliveries implements webhooks.Store; it also forgets the webhook
// notices expired at now.
func (s *Store) PruneDeliveries(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		wb := tx.Bucket(bucketWebhooks)
		if wb == nil {
			return nil
		}
		return wb.ForEachBucket(func(tenant []byte) error {
			m, err := deleteWhere(wb.Bucket(tenant), nil, func(v []byte) bool {
				return len(v) < 8 || !time.Unix(0, int64(binary.BigEndian.Uint64(v))).After(now)
			})
			n += m
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	marks, err := s.pruneDeletedMarks(ctx, now)
	if err != nil {
		return n, err
	}
	notices, err := s.pruneNotices(ctx, now)
	if err != nil {
		return n + marks, err
	}
	return n + marks + notices, nil
}

// deleteWhere deletes the keys of b that start with prefix and whose value
// passes expired, and returns how many it deleted.
func deleteWhere(b *bolt.Bucket, prefix []byte, expired func(v []byte) bool) (int, error) {
	var old [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if v != nil && expired(v) {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

// --- deleted-user marks -------------------------------------------------------

// userDeletedKey is the key of a deleted-user mark in a tenant's bucket of
// known users, by object id or e-mail.
func userDeletedKey(idOrEmail string) []byte {
	return append([]byte("d\x00"), strings.ToLower(idOrEmail)...)
}

// deletedRecord is a deleted-user mark.
type deletedRecord struct {
	ID        string    `json:"id,omitempty"`
	Email     string    `json:"email,omitempty"`
	DeletedAt time.Time `json:"deletedAt"`
	// Expires is zero in marks written before marks carried their expiry;
	// those expire legacyMarkLife after DeletedAt.
	Expires time.Time `json:"expires,omitzero"`
}

// legacyMarkLife is how long a mark without an Expires is kept: what the
// builds that wrote such marks kept every mark (webhooks.MarkRetention was
// 30 days then). It reads old files; it decides nothing new.
const legacyMarkLife = 30 * 24 * time.Hour

func (r deletedRecord) expires() time.Time {
	if r.Expires.IsZero() {
		return r.DeletedAt.Add(legacyMarkLife)
	}
	return r.Expires
}

func (r deletedRecord) deletedUser() groups.DeletedUser {
	return groups.DeletedUser{ID: r.ID, Email: r.Email, DeletedAt: r.DeletedAt, Expires: r.expires()}
}

// pruneDeletedMarks forgets the deleted-user marks expired at now.
func (s *Store) pruneDeletedMarks(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		users := tx.Bucket(bucketUsers)
		if users == nil {
			return nil
		}
		return users.ForEachBucket(func(tenant []byte) error {
			m, err := deleteWhere(users.Bucket(tenant), userDeletedKey(""), func(v []byte) bool {
				var r deletedRecord
				return json.Unmarshal(v, &r) != nil || !r.expires().After(now)
			})
			n += m
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("prune deleted-user marks: %w", err)
	}
	return n, nil
}

// deletedUsers reads the marks of b stored under ids, keyed by the id
// asked for.
func deletedUsers(b *bolt.Bucket, ids []string) (map[string]groups.DeletedUser, error) {
	out := map[string]groups.DeletedUser{}
	if b == nil {
		return out, nil
	}
	for _, id := range ids {
		v := b.Get(userDeletedKey(id))
		if v == nil {
			continue
		}
		var r deletedRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode deleted user %q: %w", id, err)
		}
		out[id] = r.deletedUser()
	}
	return out, nil
}

// DeletedUsers implements groups.Store.
func (s *Store) DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.DeletedUser, error) {
	var out map[string]groups.DeletedUser
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = deletedUsers(tx.Bucket(bucketUsers).Bucket([]byte(tenant)), ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deleted users of %s: %w", tenant, err)
	}
	return out, nil
}

// DeletedUsers implements groups.Tx.
func (t *txn) DeletedUsers(ids []string) (map[string]groups.DeletedUser, error) {
	return deletedUsers(t.tx.Bucket(bucketUsers).Bucket([]byte(t.tenant)), ids)
}

// PutDeletedUser implements groups.Tx.
func (t *txn) PutDeletedUser(idOrEmail string, d groups.DeletedUser) error {
	v, err := json.Marshal(deletedRecord{ID: d.ID, Email: d.Email, DeletedAt: d.DeletedAt, Expires: d.Expires})
	if err != nil {
		return err
	}
	ub, err := t.tx.Bucket(bucketUsers).CreateBucketIfNotExists([]byte(t.tenant))
	if err != nil {
		return err
	}
	return ub.Put(userDeletedKey(idOrEmail), v)
}

// DeleteDeletedUsers implements groups.Tx.
func (t *txn) DeleteDeletedUsers(ids ...string) error {
	ub := t.tx.Bucket(bucketUsers).Bucket([]byte(t.tenant))
	if ub == nil {
		return nil
	}
	for _, id := range ids {
		if err := ub.Delete(userDeletedKey(id)); err != nil {
			return err
		}
	}
	return nil
}
