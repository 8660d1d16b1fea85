package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/throttle"
)

// This file holds the parts of groups.Store beyond creating and deleting:
// description updates, member lists, the cache of known users, paged lists
// and the reconciler's writes.

// UpdatePending implements groups.Store.
func (s *Store) UpdatePending(ctx context.Context, name groups.Name, description string, ifRevision uint64, op throttle.Operation, limits throttle.Limits) (groups.Group, throttle.Operation, error) {
	stored, op, err := s.queueOnGroup(ctx, name, op, limits, func(g *groups.Group) error {
		if ifRevision != 0 && g.Revision != ifRevision {
			return fmt.Errorf("%w: it is at revision %d, not %d", groups.ErrRevision, g.Revision, ifRevision)
		}
		if g.State == groups.Deleting {
			return fmt.Errorf("%w: the group is %s (operation %s)", groups.ErrPending, g.State, g.PendingOperation)
		}
		g.Description, g.PendingUpdate, g.UpdatedAt = description, op.ID, op.CreatedAt
		return nil
	})
	if err != nil {
		return groups.Group{}, throttle.Operation{}, fmt.Errorf("queue update of %s: %w", name, err)
	}
	return stored, op, nil
}

// QueueMembers implements groups.Store. The member list changes when the
// operation's effects are committed; the group counts it as pending.
func (s *Store) QueueMembers(ctx context.Context, name groups.Name, op throttle.Operation, limits throttle.Limits, idle *groups.Idle) (throttle.Operation, error) {
	_, op, err := s.queueOnGroup(ctx, name, op, limits, func(g *groups.Group) error {
		if g.State == groups.Deleting {
			return fmt.Errorf("%w: the group is %s (operation %s)", groups.ErrPending, g.State, g.PendingOperation)
		}
		if idle != nil && !isIdle(*g, *idle) {
			return groups.ErrStale
		}
		g.PendingMembers++
		return nil
	})
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("queue member change of %s: %w", name, err)
	}
	return op, nil
}

// isIdle reports whether g meets the precondition idle.
func isIdle(g groups.Group, idle groups.Idle) bool {
	return g.PendingMembers == 0 && g.MembersVersion == idle.Version
}

// RecordMembers implements groups.Store. op must be in a final state.
func (s *Store) RecordMembers(ctx context.Context, name groups.Name, op throttle.Operation, idle groups.Idle) (throttle.Operation, error) {
	if !op.State.Final() {
		return throttle.Operation{}, fmt.Errorf("record %s: state %q is not final", op.ID, op.State)
	}
	err := s.write(ctx, func(tx *bolt.Tx) error {
		if err := checkIdempotency(tx, op); err != nil {
			return err
		}
		g, err := getGroup(tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant)), name)
		if err != nil {
			return err
		}
		if !isIdle(g, idle) {
			return groups.ErrStale
		}
		if ik := op.Idempotency; ik != nil {
			if err := putIdem(tx, *ik, op.ID); err != nil {
				return err
			}
		}
		return putOp(tx, op)
	})
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("record %s: %w", op.ID, err)
	}
	return op, nil
}

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
			var r groupRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode group %q: %w", k, err)
			}
			out = append(out, r.group(tenant))
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
			var r userRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode member %q: %w", k, err)
			}
			out = append(out, r.user())
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
		var r userRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode member %q: %w", k, err)
		}
		out[r.ID] = member{key: bytes.Clone(k), user: r.user()}
		return nil
	})
	return out, err
}

func putMember(mb *bolt.Bucket, u groups.User) error {
	v, err := json.Marshal(newUserRecord(u))
	if err != nil {
		return fmt.Errorf("encode member %s: %w", u.ID, err)
	}
	return mb.Put([]byte(groups.MemberCursor(u)), v)
}

// addMembers adds the users not yet members (by id) to g's list, keeping
// g's MemberCount and MembersVersion in step, and remembers all of them as
// known users.
func addMembers(tx *bolt.Tx, g *groups.Group, users []groups.User, at time.Time) error {
	mb, err := createMembersBucket(tx, g.Name)
	if err != nil {
		return err
	}
	have, err := readMembers(mb)
	if err != nil {
		return err
	}
	changed := false
	for _, u := range users {
		if _, ok := have[u.ID]; ok || u.ID == "" {
			continue
		}
		if err := putMember(mb, u); err != nil {
			return err
		}
		have[u.ID] = member{user: u}
		changed = true
	}
	if changed {
		g.MembersVersion++
		g.MemberCount, g.UpdatedAt = len(have), at
	}
	return putKnownUsers(tx, g.Name.Tenant, users)
}

// removeMembers removes the users with these ids from g's list, keeping g's
// MemberCount and MembersVersion in step.
func removeMembers(tx *bolt.Tx, g *groups.Group, ids []string, at time.Time) error {
	mb := membersBucket(tx, g.Name)
	if mb == nil {
		return nil
	}
	have, err := readMembers(mb)
	if err != nil {
		return err
	}
	changed := false
	for _, id := range ids {
		m, ok := have[id]
		if !ok {
			continue
		}
		if err := mb.Delete(m.key); err != nil {
			return err
		}
		delete(have, id)
		changed = true
	}
	if changed {
		g.MembersVersion++
		g.MemberCount, g.UpdatedAt = len(have), at
	}
	return nil
}

// ownersRecord is how a group's owners are stored, beside the group: the
// upstream id they were read of, so a group made again under the same name
// does not show its predecessor's owners.
type ownersRecord struct {
	UpstreamID string       `json:"upstreamId"`
	Owners     []userRecord `json:"owners"`
}

// SyncOwners implements groups.Store.
func (s *Store) SyncOwners(ctx context.Context, name groups.Name, upstreamID string, owners []groups.User) (bool, error) {
	ok := false
	err := s.write(ctx, func(tx *bolt.Tx) error {
		ok = false // the function may run again
		g, err := getGroup(tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant)), name)
		if errors.Is(err, groups.ErrNotFound) {
			return nil
		}
		if err != nil || g.UpstreamID != upstreamID || upstreamID == "" {
			return err
		}
		rec := ownersRecord{UpstreamID: upstreamID, Owners: []userRecord{}}
		list := slices.Clone(owners)
		sortUsers(list)
		seen := map[string]bool{}
		for _, u := range list {
			if u.ID != "" && !seen[u.ID] {
				seen[u.ID] = true
				rec.Owners = append(rec.Owners, newUserRecord(u))
			}
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		b, err := tx.Bucket(bucketOwners).CreateBucketIfNotExists([]byte(name.Tenant))
		if err != nil {
			return err
		}
		ok = true
		return b.Put(groupKey(name), v)
	})
	if err != nil {
		return false, fmt.Errorf("sync owners of %s: %w", name, err)
	}
	return ok, nil
}

// Owners implements groups.Store.
func (s *Store) Owners(ctx context.Context, name groups.Name) ([]groups.User, error) {
	var out []groups.User
	err := s.db.View(func(tx *bolt.Tx) error {
		g, err := getGroup(tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant)), name)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketOwners).Bucket([]byte(name.Tenant))
		if b == nil {
			return nil
		}
		v := b.Get(groupKey(name))
		if v == nil {
			return nil
		}
		var rec ownersRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode owners of %s: %w", name, err)
		}
		if rec.UpstreamID != g.UpstreamID {
			return nil
		}
		out = make([]groups.User, 0, len(rec.Owners))
		for _, u := range rec.Owners {
			out = append(out, u.user())
		}
		return nil
	})
	return out, err
}

// SyncMembers implements groups.Store. A member whose e-mail or display
// name changed upstream is updated in place (a list change, so
// MembersVersion moves) but reported neither added nor removed.
func (s *Store) SyncMembers(ctx context.Context, name groups.Name, upstreamID string, version uint64, users []groups.User, at time.Time) (added, removed []groups.User, ok bool, err error) {
	defer s.gens.forget(versionKey(name.Tenant, name.Project))
	err = s.write(ctx, func(tx *bolt.Tx) error {
		added, removed, ok = nil, nil, false // the function may run again
		b := tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant))
		g, err := getGroup(b, name)
		if errors.Is(err, groups.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if g.UpstreamID != upstreamID || g.MembersVersion != version || g.PendingMembers > 0 {
			return nil
		}
		mb, err := createMembersBucket(tx, name)
		if err != nil {
			return err
		}
		have, err := readMembers(mb)
		if err != nil {
			return err
		}
		want := make(map[string]groups.User, len(users))
		for _, u := range users {
			if _, dup := want[u.ID]; !dup && u.ID != "" {
				want[u.ID] = u
			}
		}
		changed := false
		for id, m := range have {
			if u, keep := want[id]; keep && u == m.user {
				continue
			}
			if err := mb.Delete(m.key); err != nil {
				return err
			}
			if _, keep := want[id]; !keep {
				removed = append(removed, m.user)
			}
			changed = true
		}
		for id, u := range want {
			m, had := have[id]
			if had && u == m.user {
				continue
			}
			if err := putMember(mb, u); err != nil {
				return err
			}
			if !had {
				added = append(added, u)
			}
			changed = true
		}
		sortUsers(added)
		sortUsers(removed)
		if changed {
			g.MembersVersion++
		}
		g.MemberCount, g.MembersSyncedAt = len(want), at
		if _, err := putGroup(tx, b, g); err != nil {
			return err
		}
		ok = true
		return putKnownUsers(tx, name.Tenant, users)
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("sync members of %s: %w", name, err)
	}
	return added, removed, ok, nil
}

// sortUsers orders users as a member list is (by MemberCursor), so results
// do not depend on map order.
func sortUsers(us []groups.User) {
	slices.SortFunc(us, func(a, b groups.User) int { return strings.Compare(groups.MemberCursor(a), groups.MemberCursor(b)) })
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
			var r userRecord
			if json.Unmarshal(old, &r) == nil && r.Email != "" && !strings.EqualFold(r.Email, u.Email) {
				if err := b.Delete(userEmailKey(r.Email)); err != nil {
					return err
				}
			}
		}
		v, err := json.Marshal(newUserRecord(u))
		if err != nil {
			return fmt.Errorf("encode user %s: %w", u.ID, err)
		}
		if err := b.Put(userIDKey(u.ID), v); err != nil {
			return err
		}
		// A user TechPass shows again (or a new user given a deleted
		// user's e-mail) is no longer marked deleted.
		for _, k := range [][]byte{userDeletedKey(u.ID), userDeletedKey(u.Email)} {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if u.Email != "" {
			if err := b.Put(userEmailKey(u.Email), v); err != nil {
				return err
			}
		}
	}
	return nil
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
			var r userRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode user %q: %w", id, err)
			}
			out[id] = r.user()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("known users of %s: %w", tenant, err)
	}
	return out, nil
}

// --- reconciler ---------------------------------------------------------------

// SyncGroups implements groups.Store. The Group of each change returned is
// as stored after it (for GroupVanished, as it was before); a
// GroupChanged's Previous is the description it replaced.
func (s *Store) SyncGroups(ctx context.Context, tenant string, changes []groups.GroupChange, seen []groups.Name, at time.Time) ([]groups.GroupChange, error) {
	var touched []string
	for _, c := range changes {
		touched = append(touched, versionKey(tenant, c.Group.Name.Project))
	}
	for _, n := range seen {
		touched = append(touched, versionKey(tenant, n.Project))
	}
	defer s.gens.forget(touched...)
	var applied []groups.GroupChange
	err := s.write(ctx, func(tx *bolt.Tx) error {
		applied = nil // the function may run again
		b, err := tx.Bucket(bucketGroups).CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return err
		}
		for _, c := range changes {
			ok, err := applyChange(tx, b, tenant, &c, at)
			if err != nil {
				return err
			}
			if ok {
				applied = append(applied, c)
			}
		}
		for _, n := range seen {
			n.Tenant = tenant
			g, err := getGroup(b, n)
			if errors.Is(err, groups.ErrNotFound) || (err == nil && g.SyncedAt.Equal(at)) {
				continue
			}
			if err != nil {
				return err
			}
			g.SyncedAt = at
			if g.PendingUpdate == "" {
				// Seen without a difference and with no update pending:
				// TechPass has this description.
				g.ConfirmedDescription, g.DescriptionConfirmed = g.Description, true
			}
			if _, err := putGroup(tx, b, g); err != nil {
				return err
			}
		}
		return putMirror(tx, tenant, mirrorRecord{GroupsSyncedAt: at})
	})
	if err != nil {
		return nil, fmt.Errorf("sync groups of %s: %w", tenant, err)
	}
	return applied, nil
}

// applyChange applies c if its precondition holds, updating c to what was
// applied, and reports whether it did.
func applyChange(tx *bolt.Tx, b *bolt.Bucket, tenant string, c *groups.GroupChange, at time.Time) (bool, error) {
	n := c.Group.Name
	n.Tenant = tenant
	cur, err := getGroup(b, n)
	found := err == nil
	if err != nil && !errors.Is(err, groups.ErrNotFound) {
		return false, err
	}
	switch c.Kind {
	case groups.GroupAppeared:
		if found {
			return false, nil
		}
		created := c.Group.CreatedAt
		if created.IsZero() {
			created = at
		}
		g := groups.Group{
			Name: n, Description: c.Group.Description, State: groups.Active, UpstreamID: c.Group.UpstreamID,
			SyncedAt: at, CreatedAt: created, UpdatedAt: at,
			ConfirmedDescription: c.Group.Description, DescriptionConfirmed: true,
		}
		if c.Group, err = putGroup(tx, b, g); err != nil {
			return false, err
		}
		return true, nil
	case groups.GroupVanished:
		if !found || cur.State != groups.Active || cur.Revision != c.Group.Revision || cur.PendingMembers > 0 {
			return false, nil
		}
		if err := deleteGroup(tx, n); err != nil {
			return false, err
		}
		c.Group = cur
		return true, nil
	case groups.GroupChanged:
		if !found || cur.Revision != c.Group.Revision || cur.PendingUpdate != "" {
			return false, nil
		}
		previous := cur.Description
		cur.Description, cur.SyncedAt, cur.UpdatedAt = c.Group.Description, at, at
		cur.ConfirmedDescription, cur.DescriptionConfirmed = c.Group.Description, true
		if c.Group, err = putGroup(tx, b, cur); err != nil {
			return false, err
		}
		c.Previous = previous
		return true, nil
	case groups.GroupReplaced:
		if !found || cur.State != groups.Active || cur.Revision != c.Group.Revision || cur.PendingMembers > 0 || cur.PendingUpdate != "" {
			return false, nil
		}
		if err := dropMembers(tx, n); err != nil {
			return false, err
		}
		previous := cur.Description
		cur.UpstreamID, cur.Description, cur.SyncedAt, cur.UpdatedAt = c.Group.UpstreamID, c.Group.Description, at, at
		cur.ConfirmedDescription, cur.DescriptionConfirmed = c.Group.Description, true
		cur.MembersSyncedAt, cur.MemberCount, cur.PendingUpdate = time.Time{}, 0, ""
		cur.MembersVersion++
		if c.Group, err = putGroup(tx, b, cur); err != nil {
			return false, err
		}
		c.Previous = previous
		return true, nil
	default:
		return false, fmt.Errorf("change of %s: unknown kind %q", n, c.Kind)
	}
}

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
