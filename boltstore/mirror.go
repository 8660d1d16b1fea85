package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/records"
)

// This file holds the parts of groups.Store beyond creating and deleting:
// description updates, member lists, the cache of known users, paged lists
// and the reconciler's writes.

// --- lists ------------------------------------------------------------------

// ListGroups implements groups.Store.
func (s *Store) ListGroups(ctx context.Context, tenant string, q groups.PageQuery) ([]groups.Group, bool, error) {
	out := []groups.Group{}
	var more bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups).Bucket([]byte(tenant))
		if b == nil {
			return nil
		}
		// One project: its keys with the prefix form one range. All of
		// them: every key, filtered on the group part.
		var scope []byte
		keep := func([]byte) bool { return true }
		if q.Project != "" {
			scope = append(append([]byte(q.Project), 0), q.Prefix...)
		} else if q.Prefix != "" {
			prefix := []byte(q.Prefix)
			keep = func(k []byte) bool {
				_, group, _ := bytes.Cut(k, []byte{0})
				return bytes.HasPrefix(group, prefix)
			}
		}
		var err error
		more, err = scanPage(b, scope, q.After, q.Limit, keep, func(k, v []byte) error {
			var r records.Group
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode group %q: %w", k, err)
			}
			out = append(out, r.ToGroup(tenant))
			return nil
		})
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list groups of %s: %w", tenant, err)
	}
	return out, more, nil
}

// ListMembers implements groups.Store.
func (s *Store) ListMembers(ctx context.Context, name groups.Name, q groups.PageQuery) ([]groups.User, bool, error) {
	out := []groups.User{}
	var more bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getGroup(tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant)), name); err != nil {
			return err
		}
		mb := membersBucket(tx, name)
		if mb == nil {
			return nil
		}
		var err error
		more, err = scanPage(mb, []byte(q.Prefix), q.After, q.Limit, func([]byte) bool { return true }, func(k, v []byte) error {
			var r records.User
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode member %q: %w", k, err)
			}
			out = append(out, r.ToUser())
			return nil
		})
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list members of %s: %w", name, err)
	}
	return out, more, nil
}

// scanPage visits, in key order, the keys of b that start with scope, sort
// after after (exclusive) and pass keep, at most limit of them (0: all). It
// reports whether another such key follows the last one visited.
func scanPage(b *bolt.Bucket, scope []byte, after string, limit int, keep func([]byte) bool, visit func(k, v []byte) error) (bool, error) {
	start := scope
	if a := []byte(after); bytes.Compare(a, start) > 0 {
		start = a
	}
	n := 0
	c := b.Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, scope); k, v = c.Next() {
		if v == nil || (after != "" && bytes.Equal(k, []byte(after))) || !keep(k) {
			continue // a nested bucket, or the previous page's last entry
		}
		if limit > 0 && n == limit {
			return true, nil
		}
		if err := visit(k, v); err != nil {
			return false, err
		}
		n++
	}
	return false, nil
}

// --- members ----------------------------------------------------------------

// membersBucket returns the group's member bucket, or nil if it has none.
func membersBucket(tx *bolt.Tx, name groups.Name) *bolt.Bucket {
	tb := tx.Bucket(bucketMembers).Bucket([]byte(name.Tenant))
	if tb == nil {
		return nil
	}
	return tb.Bucket(groupKey(name))
}

// createMembersBucket returns the group's member bucket, creating it.
func createMembersBucket(tx *bolt.Tx, name groups.Name) (*bolt.Bucket, error) {
	tb, err := tx.Bucket(bucketMembers).CreateBucketIfNotExists([]byte(name.Tenant))
	if err != nil {
		return nil, err
	}
	return tb.CreateBucketIfNotExists(groupKey(name))
}

// dropMembers deletes the group's member list.
func dropMembers(tx *bolt.Tx, name groups.Name) error {
	tb := tx.Bucket(bucketMembers).Bucket([]byte(name.Tenant))
	if tb == nil || tb.Bucket(groupKey(name)) == nil {
		return nil
	}
	return tb.DeleteBucket(groupKey(name))
}

// member is a stored member and its key.
type member struct {
	key  []byte
	user groups.User
}

// readMembers returns the members of mb by id. A group holds a few thousand
// members at most, so a scan serves where an index would need upkeep.
func readMembers(mb *bolt.Bucket) (map[string]member, error) {
	out := map[string]member{}
	err := mb.ForEach(func(k, v []byte) error {
		var r records.User
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode member %q: %w", k, err)
		}
		out[r.ID] = member{key: bytes.Clone(k), user: r.ToUser()}
		return nil
	})
	return out, err
}

func putMember(mb *bolt.Bucket, u groups.User) error {
	v, err := json.Marshal(records.NewUser(u))
	if err != nil {
		return fmt.Errorf("encode member %s: %w", u.ID, err)
	}
	return mb.Put([]byte(groups.MemberCursor(u)), v)
}

// --- known users --------------------------------------------------------------

// userEmailKey and userIDKey are the two keys a known user is stored under
// in its tenant's bucket.
func userEmailKey(email string) []byte { return append([]byte("e\x00"), strings.ToLower(email)...) }
func userIDKey(id string) []byte       { return append([]byte("i\x00"), strings.ToLower(id)...) }

// putKnownUsers remembers users for KnownUsers, by id and by e-mail. A user
// whose e-mail changed is no longer found by the old one.
func putKnownUsers(tx *bolt.Tx, tenant string, users []groups.User) error {
	if len(users) == 0 {
		return nil
	}
	b, err := tx.Bucket(bucketUsers).CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.ID == "" {
			continue
		}
		if old := b.Get(userIDKey(u.ID)); old != nil {
			var r records.User
			if json.Unmarshal(old, &r) == nil && r.Email != "" && !strings.EqualFold(r.Email, u.Email) {
				if err := b.Delete(userEmailKey(r.Email)); err != nil {
					return err
				}
			}
		}
		v, err := json.Marshal(records.NewUser(u))
		if err != nil {
			return fmt.Errorf("encode user %s: %w", u.ID, err)
		}
		if err := b.Put(userIDKey(u.ID), v); err != nil {
			return err
		}
		if u.Email != "" {
			if err := b.Put(userEmailKey(u.Email), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// knownUser returns the known user stored under idOrEmail in ub: as an
// id, else as an e-mail.
func knownUser(ub *bolt.Bucket, idOrEmail string) (groups.User, bool, error) {
	if ub == nil || idOrEmail == "" {
		return groups.User{}, false, nil
	}
	for _, key := range [][]byte{userIDKey(idOrEmail), userEmailKey(idOrEmail)} {
		if v := ub.Get(key); v != nil {
			var r records.User
			if err := json.Unmarshal(v, &r); err != nil {
				return groups.User{}, false, fmt.Errorf("decode user %q: %w", key, err)
			}
			return r.ToUser(), true, nil
		}
	}
	return groups.User{}, false, nil
}

// KnownUsers implements groups.Store. Users are found by object id or by
// e-mail, either case-insensitively.
func (s *Store) KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.User, error) {
	out := map[string]groups.User{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers).Bucket([]byte(tenant))
		if b == nil {
			return nil
		}
		for _, id := range ids {
			v := b.Get(userIDKey(id))
			if v == nil {
				v = b.Get(userEmailKey(id))
			}
			if v == nil {
				continue
			}
			var r records.User
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode user %q: %w", id, err)
			}
			out[id] = r.ToUser()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("known users of %s: %w", tenant, err)
	}
	return out, nil
}

// --- reconciler ---------------------------------------------------------------

// putMirror stores the tenant's mirror record.
func putMirror(tx *bolt.Tx, tenant string, r mirrorRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode mirror record of %s: %w", tenant, err)
	}
	return tx.Bucket(bucketMirror).Put([]byte(tenant), v)
}

// GroupsSyncedAt implements groups.Store.
func (s *Store) GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error) {
	var r mirrorRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMirror).Get([]byte(tenant))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("groups sync time of %s: %w", tenant, err)
	}
	return r.GroupsSyncedAt, nil
}
