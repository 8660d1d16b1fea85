package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/records"
	"github.com/groupgate/groupgate/queue"
)

// Update implements groups.Store. fn runs inside the committer's write
// transaction (see write): bbolt has one writer, so every Update, of any
// tenant, is serialized, and fn may run again when the batch it shared
// failed for another writer. The memo of each project's groups version is
// forgotten for the projects fn wrote.
func (s *Store) Update(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	var touched []string
	defer func() { s.gens.forget(touched...) }()
	return s.write(ctx, func(btx *bolt.Tx) error {
		return fn(&txn{tx: btx, tenant: tenant, touched: &touched})
	})
}

// View implements groups.Store: fn reads a snapshot in a bbolt read
// transaction; a write through it fails.
func (s *Store) View(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(btx *bolt.Tx) error {
		return fn(&txn{tx: btx, tenant: tenant, touched: new([]string)})
	})
}

// txn is groups.Tx over one bbolt transaction, for one tenant.
type txn struct {
	tx     *bolt.Tx
	tenant string
	// touched collects the version keys of projects whose groups were
	// written, to forget their memo after the commit.
	touched *[]string
}

var _ groups.Tx = (*txn)(nil)

// own refuses a write of another tenant's records than the transaction's.
func (t *txn) own(tenant string) error {
	if tenant != t.tenant {
		return fmt.Errorf("store: a transaction of tenant %q cannot write records of %q", t.tenant, tenant)
	}
	return nil
}

// --- queue records ------------------------------------------------------------

// Fence implements queue.Tx: one process owns a bbolt file, so there are
// no leases to check.
func (t *txn) Fence(uint64) error { return nil }

func (t *txn) Operation(id string) (queue.Operation, error) { return getOp(t.tx, id) }

func (t *txn) PutOperation(op queue.Operation) error {
	if err := t.own(op.Tenant); err != nil {
		return err
	}
	return putOp(t.tx, op)
}

func (t *txn) Append(op queue.Operation) (queue.Operation, error) {
	if err := t.own(op.Tenant); err != nil {
		return op, err
	}
	tq, err := t.tx.Bucket(bucketQueues).CreateBucketIfNotExists([]byte(op.Tenant))
	if err != nil {
		return op, err
	}
	pq, err := tq.CreateBucketIfNotExists([]byte(op.Project))
	if err != nil {
		return op, err
	}
	seq, err := tq.NextSequence()
	if err != nil {
		return op, err
	}
	op.Seq = seq
	if err := pq.Put(seqKey(seq), []byte(op.ID)); err != nil {
		return op, err
	}
	if err := addPending(t.tx, op.Tenant, op.Project, 1); err != nil {
		return op, err
	}
	return op, putOp(t.tx, op)
}

func (t *txn) Unqueue(op queue.Operation) (bool, error) {
	if err := t.own(op.Tenant); err != nil {
		return false, err
	}
	tq := t.tx.Bucket(bucketQueues).Bucket([]byte(op.Tenant))
	if tq == nil {
		return false, nil
	}
	pq := tq.Bucket([]byte(op.Project))
	if pq == nil || pq.Get(seqKey(op.Seq)) == nil {
		return false, nil
	}
	if err := pq.Delete(seqKey(op.Seq)); err != nil {
		return false, err
	}
	return true, addPending(t.tx, op.Tenant, op.Project, -1)
}

func (t *txn) Depth() (queue.Depth, error) { return depth(t.tx, t.tenant), nil }

func (t *txn) Queued() ([]queue.Operation, error) {
	var out []queue.Operation
	tq := t.tx.Bucket(bucketQueues).Bucket([]byte(t.tenant))
	if tq == nil {
		return nil, nil
	}
	err := tq.ForEachBucket(func(project []byte) error {
		return tq.Bucket(project).ForEach(func(_, id []byte) error {
			op, err := getOp(t.tx, string(id))
			if err != nil {
				return err
			}
			out = append(out, op)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b queue.Operation) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, err
}

func (t *txn) Idempotency(scope, key string) (queue.IdempotencyRecord, bool, error) {
	r, ok := getIdem(t.tx, scope, key)
	return queue.IdempotencyRecord{Operation: r.Operation, Fingerprint: r.Fingerprint, Expires: r.Expires}, ok, nil
}

func (t *txn) PutIdempotency(ik queue.Idempotency, opID string) error {
	return putIdem(t.tx, ik, opID)
}

// --- mirror records -----------------------------------------------------------

func (t *txn) Group(name groups.Name) (groups.Group, error) {
	if name.Tenant != t.tenant {
		return groups.Group{}, groups.ErrNotFound
	}
	return getGroup(t.tx.Bucket(bucketGroups).Bucket([]byte(name.Tenant)), name)
}

func (t *txn) PutGroup(g groups.Group) error {
	if err := t.own(g.Name.Tenant); err != nil {
		return err
	}
	*t.touched = append(*t.touched, versionKey(g.Name.Tenant, g.Name.Project))
	return putGroup(t.tx, g)
}

func (t *txn) DeleteGroup(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	*t.touched = append(*t.touched, versionKey(name.Tenant, name.Project))
	return deleteGroup(t.tx, name)
}

func (t *txn) CountGroups(project string) (int, error) {
	b := t.tx.Bucket(bucketGroups).Bucket([]byte(t.tenant))
	if b == nil {
		return 0, nil
	}
	if project == "" {
		return countPrefix(b, nil), nil
	}
	return countPrefix(b, append([]byte(project), 0)), nil
}

func (t *txn) Groups(project string) ([]groups.Group, error) {
	var out []groups.Group
	b := t.tx.Bucket(bucketGroups).Bucket([]byte(t.tenant))
	if b == nil {
		return nil, nil
	}
	var prefix []byte
	if project != "" {
		prefix = append([]byte(project), 0)
	}
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r records.Group
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode group %q: %w", k, err)
		}
		out = append(out, r.ToGroup(t.tenant))
	}
	return out, nil
}

func (t *txn) NextRevision(after uint64) (uint64, error) {
	return nextRevision(t.tx, t.tenant, after)
}

func (t *txn) Members(name groups.Name) ([]groups.User, error) {
	mb := membersBucket(t.tx, name)
	if mb == nil {
		return nil, nil
	}
	var out []groups.User
	err := mb.ForEach(func(k, v []byte) error {
		var r records.User
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode member %q: %w", k, err)
		}
		out = append(out, r.ToUser())
		return nil
	})
	return out, err
}

func (t *txn) PutMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	mb, err := createMembersBucket(t.tx, name)
	if err != nil {
		return err
	}
	return putMember(mb, u)
}

func (t *txn) RemoveMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	mb := membersBucket(t.tx, name)
	if mb == nil {
		return nil
	}
	return mb.Delete([]byte(groups.MemberCursor(u)))
}

func (t *txn) DropMembers(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	return dropMembers(t.tx, name)
}

func (t *txn) PutKnownUsers(users []groups.User) error { return putKnownUsers(t.tx, t.tenant, users) }

func (t *txn) KnownUser(idOrEmail string) (groups.User, bool, error) {
	return knownUser(t.tx.Bucket(bucketUsers).Bucket([]byte(t.tenant)), idOrEmail)
}

func (t *txn) ForgetKnownUser(idOrEmail string) error {
	ub := t.tx.Bucket(bucketUsers).Bucket([]byte(t.tenant))
	if ub == nil {
		return nil
	}
	if err := ub.Delete(userIDKey(idOrEmail)); err != nil {
		return err
	}
	return ub.Delete(userEmailKey(idOrEmail))
}

func (t *txn) Owners(name groups.Name) (groups.Owners, bool, error) {
	b := t.tx.Bucket(bucketOwners).Bucket([]byte(name.Tenant))
	if b == nil {
		return groups.Owners{}, false, nil
	}
	v := b.Get(groupKey(name))
	if v == nil {
		return groups.Owners{}, false, nil
	}
	var rec records.Owners
	if err := json.Unmarshal(v, &rec); err != nil {
		return groups.Owners{}, false, fmt.Errorf("decode owners of %s: %w", name, err)
	}
	return rec.ToOwners(), true, nil
}

func (t *txn) PutOwners(name groups.Name, o groups.Owners) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	v, err := json.Marshal(records.NewOwners(o))
	if err != nil {
		return err
	}
	b, err := t.tx.Bucket(bucketOwners).CreateBucketIfNotExists([]byte(name.Tenant))
	if err != nil {
		return err
	}
	return b.Put(groupKey(name), v)
}

func (t *txn) SetGroupsSyncedAt(at time.Time) error {
	return putMirror(t.tx, t.tenant, mirrorRecord{GroupsSyncedAt: at})
}
