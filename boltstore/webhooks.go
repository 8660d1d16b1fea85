package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/webhooks"
)

// This file holds what TechPass's webhooks do to the mirror
// (webhooks.Store) and the deleted-user marks the executor reads
// (groups.Mirror DeletedUsers).

// bucketWebhooks holds, per tenant, each delivery processed (by digest):
// when it expires (8 bytes, big-endian Unix nanoseconds), followed, until
// its outcome is recorded, by its webhooks.Applied in JSON. It is created
// by the first delivery.
var bucketWebhooks = []byte("webhooks")

var _ webhooks.Store = (*Store)(nil)

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
}

// ApplyDelivery implements webhooks.Store.
func (s *Store) ApplyDelivery(ctx context.Context, d webhooks.Delivery) (webhooks.Applied, error) {
	var out webhooks.Applied
	var touched []string
	err := s.write(ctx, func(tx *bolt.Tx) error {
		out, touched = webhooks.Applied{}, nil // the function may run again
		wb, err := tx.CreateBucketIfNotExists(bucketWebhooks)
		if err != nil {
			return err
		}
		tb, err := wb.CreateBucketIfNotExists([]byte(d.Tenant))
		if err != nil {
			return err
		}
		if v := tb.Get(d.Digest[:]); len(v) >= 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).After(d.At) {
			if len(v) == 8 {
				return webhooks.ErrDuplicate
			}
			// Applied, its outcome not recorded: resume.
			if err := json.Unmarshal(v[8:], &out); err != nil {
				return fmt.Errorf("decode pending delivery: %w", err)
			}
			out.Resumed = true
			return nil
		}
		switch {
		case d.Gone != nil:
			out, err = forgetUser(&txn{tx: tx, tenant: d.Tenant, touched: &touched}, *d.Gone, d.At)
		case d.Changed != nil:
			out, err = changeUser(&txn{tx: tx, tenant: d.Tenant, touched: &touched}, *d.Changed, d.At)
		}
		if err != nil {
			return err
		}
		pending, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return tb.Put(d.Digest[:], append(binary.BigEndian.AppendUint64(nil, uint64(d.Expires.UnixNano())), pending...))
	})
	s.gens.forget(touched...)
	if err != nil {
		if errors.Is(err, webhooks.ErrDuplicate) {
			return webhooks.Applied{}, err
		}
		return webhooks.Applied{}, fmt.Errorf("apply webhook delivery for %s: %w", d.Tenant, err)
	}
	return out, nil
}

// DeliveryRecorded implements webhooks.Store: the value keeps only the
// expiry.
func (s *Store) DeliveryRecorded(ctx context.Context, tenant string, digest [32]byte) error {
	err := s.write(ctx, func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketWebhooks).Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		if v := tb.Get(digest[:]); len(v) > 8 {
			return tb.Put(digest[:], bytes.Clone(v[:8]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark webhook delivery recorded for %s: %w", tenant, err)
	}
	return nil
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
			tb := wb.Bucket(tenant)
			var expired [][]byte
			err := tb.ForEach(func(k, v []byte) error {
				if len(v) < 8 || !time.Unix(0, int64(binary.BigEndian.Uint64(v))).After(now) {
					expired = append(expired, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range expired {
				if err := tb.Delete(k); err != nil {
					return err
				}
			}
			n += len(expired)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	marks, err := s.pruneDeletedMarks(ctx, now.Add(-webhooks.MarkRetention))
	if err != nil {
		return n, err
	}
	notices, err := s.pruneNotices(ctx, now)
	if err != nil {
		return n + marks, err
	}
	return n + marks + notices, nil
}

// pruneDeletedMarks forgets the deleted-user marks made before cutoff.
func (s *Store) pruneDeletedMarks(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		users := tx.Bucket(bucketUsers)
		if users == nil {
			return nil
		}
		return users.ForEachBucket(func(tenant []byte) error {
			ub := users.Bucket(tenant)
			prefix := userDeletedKey("")
			var old [][]byte
			c := ub.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				var r deletedRecord
				if err := json.Unmarshal(v, &r); err != nil || r.DeletedAt.Before(cutoff) {
					old = append(old, bytes.Clone(k))
				}
			}
			for _, k := range old {
				if err := ub.Delete(k); err != nil {
					return err
				}
			}
			n += len(old)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("prune deleted-user marks: %w", err)
	}
	return n, nil
}

// knownUser returns the tenant's known user with this id or e-mail.
func knownUser(ub *bolt.Bucket, idOrEmail string) (groups.User, bool, error) {
	if ub == nil || idOrEmail == "" {
		return groups.User{}, false, nil
	}
	if u, ok, err := recordAt(ub, userIDKey(idOrEmail)); ok || err != nil {
		return u, ok, err
	}
	return recordAt(ub, userEmailKey(idOrEmail))
}

// recordAt reads the known user stored under key.
func recordAt(ub *bolt.Bucket, key []byte) (groups.User, bool, error) {
	v := ub.Get(key)
	if v == nil {
		return groups.User{}, false, nil
	}
	var r userRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return groups.User{}, false, fmt.Errorf("decode user %q: %w", key, err)
	}
	return r.user(), true, nil
}

// eachGroupWith calls fn for every group of the tenant whose mirror lists a
// member matching match, with the member, in key order.
func eachGroupWith(tx *bolt.Tx, tenant string, match func(groups.User) bool, fn func(g groups.Group, m member) error) error {
	gb := tx.Bucket(bucketGroups).Bucket([]byte(tenant))
	mt := tx.Bucket(bucketMembers).Bucket([]byte(tenant))
	if gb == nil || mt == nil {
		return nil
	}
	var names []groups.Name
	err := gb.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil
		}
		var r groupRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode group %q: %w", k, err)
		}
		names = append(names, r.group(tenant).Name)
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		mb := membersBucket(tx, n)
		if mb == nil {
			continue
		}
		have, err := readMembers(mb)
		if err != nil {
			return err
		}
		for _, m := range have {
			if match(m.user) {
				g, err := getGroup(gb, n)
				if err != nil {
					return err
				}
				if err := fn(g, m); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// forgetUser removes a deleted user from the tenant's memberships (as the
// mirror's groups.MembersRemoved does) and known users, and marks it deleted
// by id and e-mail.
func forgetUser(t *txn, u groups.User, at time.Time) (webhooks.Applied, error) {
	tx, tenant := t.tx, t.tenant
	var out webhooks.Applied
	ub, err := tx.Bucket(bucketUsers).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return out, err
	}
	// By id when the delivery gives one: its e-mail may name another
	// user by now.
	key := u.ID
	if key == "" {
		key = u.Email
	}
	if known, ok, err := knownUser(ub, key); err != nil {
		return out, err
	} else if ok {
		out.User, out.Known = known, true
	}
	if out.Known {
		u.ID, u.Email = out.User.ID, cmp.Or(u.Email, out.User.Email)
	}
	match := func(m groups.User) bool {
		return (u.ID != "" && strings.EqualFold(m.ID, u.ID)) || (u.ID == "" && u.Email != "" && strings.EqualFold(m.Email, u.Email))
	}
	err = eachGroupWith(tx, tenant, match, func(g groups.Group, m member) error {
		if !out.Known {
			out.User, out.Known = m.user, true
		}
		if err := (groups.MembersRemoved{Name: g.Name, UserIDs: []string{m.user.ID}, At: at}).Apply(t); err != nil {
			return err
		}
		out.Left = append(out.Left, g.Name)
		return nil
	})
	if err != nil {
		return out, err
	}
	if out.Known && u.ID == "" {
		u.ID = out.User.ID
	}
	mark := deletedRecord{ID: u.ID, Email: cmp.Or(u.Email, out.User.Email), DeletedAt: at.UTC()}
	v, err := json.Marshal(mark)
	if err != nil {
		return out, err
	}
	for _, k := range slices.Compact([]string{u.ID, out.User.Email, u.Email}) {
		if k == "" {
			continue
		}
		theirs := false // k names another user by now
		for _, key := range [][]byte{userIDKey(k), userEmailKey(k)} {
			// Only the deleted user's own entries: an e-mail may be
			// another user's by now.
			if other, ok, err := recordAt(ub, key); err != nil {
				return out, err
			} else if ok && u.ID != "" && !strings.EqualFold(other.ID, u.ID) {
				theirs = true
				continue
			}
			if err := ub.Delete(key); err != nil {
				return out, err
			}
		}
		if theirs {
			continue // no mark: adds of the other user must not fail
		}
		if err := ub.Put(userDeletedKey(k), v); err != nil {
			return out, err
		}
	}
	return out, nil
}

// changeUser makes the tenant's known user and memberships follow u, if
// the mirror knows the user (by id, as a known user or a member) and the
// user is not marked deleted; otherwise it changes nothing.
func changeUser(t *txn, u groups.User, at time.Time) (webhooks.Applied, error) {
	tx, tenant := t.tx, t.tenant
	var out webhooks.Applied
	ub, err := tx.Bucket(bucketUsers).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return out, err
	}
	if ub.Get(userDeletedKey(u.ID)) != nil {
		return out, nil // a late update of a deleted user: it stays deleted
	}
	if out.User, out.Known, err = knownUser(ub, u.ID); err != nil {
		return out, err
	}
	if u.DisplayName == "" {
		u.DisplayName = out.User.DisplayName
	}
	err = eachGroupWith(tx, tenant, func(m groups.User) bool { return m.ID == u.ID }, func(g groups.Group, m member) error {
		if !out.Known {
			out.User, out.Known = m.user, true
		}
		if m.user == u {
			return nil
		}
		return (groups.MemberChanged{Name: g.Name, User: u, At: at}).Apply(t)
	})
	if err != nil {
		return out, err
	}
	if !out.Known {
		return out, nil // only users the mirror knows follow an update
	}
	return out, t.PutKnownUsers([]groups.User{u})
}

// DeletedUsers implements groups.Mirror: the marks left by user-deleted
// webhooks among ids (object ids or e-mails, any case), keyed by the id
// asked for.
func (s *Store) DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.DeletedUser, error) {
	out := map[string]groups.DeletedUser{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers).Bucket([]byte(tenant))
		if b == nil {
			return nil
		}
		for _, id := range ids {
			v := b.Get(userDeletedKey(id))
			if v == nil {
				continue
			}
			var r deletedRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode deleted user %q: %w", id, err)
			}
			out[id] = groups.DeletedUser{ID: r.ID, Email: r.Email, DeletedAt: r.DeletedAt}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deleted users of %s: %w", tenant, err)
	}
	return out, nil
}
