package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/records"
	"github.com/groupgate/groupgate/queue"
)

// txn is groups.Tx over one PostgreSQL transaction, for one tenant.
//
// Statements are pipelined: a write is queued in b and sent with the next
// read (before it, so a transaction reads its own writes) or with the
// COMMIT, in one round trip each. A write's error is therefore reported by
// the next read of the transaction, or by Update; the first error of any
// statement fails every later call (the server has aborted the transaction
// then), and the transaction cannot commit. The tenant's counters (the
// queue's Seq and the revision sequence) are read once at the start, under
// the tenant's lock, handed out in memory, and written back with the
// COMMIT.
type txn struct {
	ctx      context.Context
	q        batcher
	tenant   string
	readOnly bool

	b    *pgx.Batch // queued, not sent
	sent bool       // something was sent: the transaction is open
	err  error      // the first error: nothing more runs

	seq, rev int64 // the tenant's counters, read with the lock
	counted  bool  // seq or rev moved
	// depth is the tenant's pending counts, read with the lock (in an
	// Update) and kept in step with Append and Unqueue; nil in a View.
	depth *queue.Depth
	// appended: an operation was queued; enqueued, if set, is told of the
	// tenant once the transaction has committed (or may have).
	appended bool
	enqueued func(tenant string)
	// groups holds the documents of the groups read or written in the
	// transaction, by groupKey (nil: no such group), so a group read again
	// (to check a name, then to put it) costs no round trip. The tenant's
	// lock keeps other writers out; the transaction's own writes of groups
	// go through PutGroup and DeleteGroup, which keep it current.
	groups map[string][]byte
}

// groupKey keys txn.groups.
func groupKey(name groups.Name) string { return name.Project + "\x00" + name.Key() }

// remember records a group's document (nil: none) as the transaction
// reads or writes it.
func (t *txn) remember(name groups.Name, doc []byte) {
	if t.groups == nil {
		t.groups = map[string][]byte{}
	}
	t.groups[groupKey(name)] = doc
}

// counters makes sure the tenant's counters were read: they are queued
// with the lock, and sent by the first read.
func (t *txn) counters() error {
	if t.sent {
		return t.err
	}
	return t.flush()
}

// batcher is a connection or a transaction.
type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var _ groups.Tx = (*txn)(nil)

// flush sends the queued statements and runs their callbacks.
func (t *txn) flush() error {
	if t.err != nil {
		return t.err
	}
	if t.b.Len() == 0 {
		return nil
	}
	b := t.b
	t.b = &pgx.Batch{}
	t.sent = true
	if err := t.q.SendBatch(t.ctx, b).Close(); err != nil {
		t.err = err
		return err
	}
	return nil
}

// read queues a statement of one row, handled by fn, and sends it with the
// writes queued before it.
func (t *txn) read(fn func(pgx.Row) error, sql string, args ...any) error {
	t.b.Queue(sql, args...).QueryRow(fn)
	return t.flush()
}

// query queues a statement of rows, handled by fn, and sends it with the
// writes queued before it.
func (t *txn) query(fn func(pgx.Rows) error, sql string, args ...any) error {
	t.b.Queue(sql, args...).Query(fn)
	return t.flush()
}

// write queues a write.
func (t *txn) write(sql string, args ...any) error {
	if t.err != nil {
		return t.err
	}
	t.b.Queue(sql, args...)
	return nil
}

// rollback ends a transaction whose fn failed. Nothing was written if
// nothing was sent; a ROLLBACK that fails leaves the connection inside a
// transaction, and the pool closes it.
func (t *txn) rollback() {
	if !t.sent {
		return
	}
	if c, ok := t.q.(interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}); ok {
		_, _ = c.Exec(context.WithoutCancel(t.ctx), "ROLLBACK")
	}
}

// commit sends the queued writes, the counters and the COMMIT in one
// round trip. A COMMIT without a clear answer is ErrAmbiguousCommit (see
// refused); an error of a statement before it, or a batch never sent, left
// nothing stored.
func (t *txn) commit() error {
	if t.err != nil {
		t.rollback()
		return t.err
	}
	if t.counted {
		t.b.Queue(`INSERT INTO mirror_tenants (tenant, queue_seq, revision) VALUES ($1, $2, $3)
			ON CONFLICT (tenant) DO UPDATE SET queue_seq = EXCLUDED.queue_seq, revision = EXCLUDED.revision`, t.tenant, t.seq, t.rev)
	}
	t.b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
		if ct.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
	err := t.q.SendBatch(t.ctx, t.b).Close()
	if err != nil && (refused(err) || pgconn.SafeToRetry(err)) {
		t.sent = true
		t.rollback()
		return fmt.Errorf("commit: %w", err)
	}
	if t.appended && t.enqueued != nil {
		t.enqueued(t.tenant) // a hint: sent for an ambiguous commit too
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAmbiguousCommit, err)
	}
	return nil
}

// writable refuses a write through View.
func (t *txn) writable() error {
	if t.readOnly {
		return errReadOnly
	}
	return nil
}

// own refuses a write through View or of another tenant's records.
func (t *txn) own(tenant string) error {
	if err := t.writable(); err != nil {
		return err
	}
	if tenant != t.tenant {
		return fmt.Errorf("pgstore: a transaction of tenant %q cannot write records of %q", t.tenant, tenant)
	}
	return nil
}

// --- queue records ------------------------------------------------------------

func (t *txn) Operation(id string) (queue.Operation, error) {
	if !storable(id) {
		return queue.Operation{}, fmt.Errorf("operation %q: %w", id, queue.ErrNotFound)
	}
	var op queue.Operation
	err := t.read(func(row pgx.Row) error {
		var err error
		op, err = scanOperation(row, id)
		return err
	}, "SELECT doc FROM operations WHERE id = $1", id)
	return op, err
}

// putOperationSQL stores an operation. An operation stored under the same
// id for another tenant is not overwritten: the statement fails (the
// tenant column's NOT NULL), and so does the transaction.
const putOperationSQL = `INSERT INTO operations (id, tenant, doc) VALUES ($1, $2, $3)
	ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc,
	tenant = CASE WHEN operations.tenant = EXCLUDED.tenant THEN EXCLUDED.tenant END`

func (t *txn) PutOperation(op queue.Operation) error {
	if err := t.own(op.Tenant); err != nil {
		return err
	}
	doc, err := json.Marshal(records.NewOperation(op))
	if err != nil {
		return fmt.Errorf("encode operation %s: %w", op.ID, err)
	}
	return t.write(putOperationSQL, op.ID, op.Tenant, doc)
}

// appendSQL queues an operation under its Seq, counts it pending and
// stores it (as putOperationSQL); the signal on ChannelQueue is sent after
// the commit (txn.enqueued, wakes).
const appendSQL = `WITH q AS (INSERT INTO queue (tenant, project, seq, op_id) VALUES ($1, $2, $3, $4)),
	p AS (INSERT INTO pending (tenant, project, n) VALUES ($1, $2, 1)
		ON CONFLICT (tenant, project) DO UPDATE SET n = pending.n + 1),
	o AS (INSERT INTO operations (id, tenant, doc) VALUES ($4, $1, $5)
		ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc,
		tenant = CASE WHEN operations.tenant = EXCLUDED.tenant THEN EXCLUDED.tenant END)
	SELECT 1`

func (t *txn) Append(op queue.Operation) (queue.Operation, error) {
	if err := t.own(op.Tenant); err != nil {
		return op, err
	}
	if err := t.counters(); err != nil {
		return op, err
	}
	t.seq++
	t.counted = true
	op.Seq = uint64(t.seq)
	if t.depth != nil {
		t.depth.Projects[op.Project]++
		t.depth.Total++
	}
	doc, err := json.Marshal(records.NewOperation(op))
	if err != nil {
		return op, fmt.Errorf("encode operation %s: %w", op.ID, err)
	}
	t.appended = true
	return op, t.write(appendSQL, op.Tenant, op.Project, t.seq, op.ID, doc)
}

// unqueueSQL takes an operation off its queue and out of the pending
// count, if it was there.
const unqueueSQL = `WITH d AS (DELETE FROM queue WHERE tenant = $1 AND project = $2 AND seq = $3 RETURNING 1),
	p AS (UPDATE pending SET n = n - 1 WHERE tenant = $1 AND project = $2 AND EXISTS (SELECT 1 FROM d))
	SELECT count(*) FROM d`

func (t *txn) Unqueue(op queue.Operation) (bool, error) {
	if err := t.own(op.Tenant); err != nil {
		return false, err
	}
	var n int
	err := t.read(func(row pgx.Row) error { return row.Scan(&n) }, unqueueSQL, op.Tenant, op.Project, int64(op.Seq))
	if err != nil {
		return false, fmt.Errorf("unqueue operation %s: %w", op.ID, err)
	}
	if n > 0 && t.depth != nil {
		if t.depth.Projects[op.Project]--; t.depth.Projects[op.Project] == 0 {
			delete(t.depth.Projects, op.Project)
		}
		t.depth.Total--
	}
	return n > 0, nil
}

func (t *txn) Depth() (queue.Depth, error) {
	// An Update's depth comes with the lock, in the first batch: send it
	// before looking, or the depth would be read twice.
	if err := t.counters(); err != nil {
		return queue.Depth{}, err
	}
	if t.depth == nil {
		var d queue.Depth
		err := t.query(func(rows pgx.Rows) error {
			var err error
			d, err = scanDepth(rows)
			return err
		}, depthSQL, t.tenant)
		if err != nil {
			return d, fmt.Errorf("depth of %s: %w", t.tenant, err)
		}
		return d, nil
	}
	return queue.Depth{Total: t.depth.Total, Projects: maps.Clone(t.depth.Projects)}, nil
}

func (t *txn) Queued() ([]queue.Operation, error) {
	var ops []queue.Operation
	err := t.query(func(rows pgx.Rows) error {
		var err error
		ops, err = collectOperations(rows)
		return err
	}, `SELECT o.doc FROM queue q JOIN operations o ON o.id = q.op_id WHERE q.tenant = $1 ORDER BY q.seq`, t.tenant)
	if err != nil {
		return nil, fmt.Errorf("queued operations of %s: %w", t.tenant, err)
	}
	return ops, nil
}

// Idempotency takes the key's lock first (in an Update), so two
// transactions of different tenants checking one key are serialized: the
// SELECT, a statement of its own, sees a record committed while it waited.
func (t *txn) Idempotency(scope, key string) (queue.IdempotencyRecord, bool, error) {
	if !storable(scope) || !storable(key) {
		return queue.IdempotencyRecord{}, false, t.flush()
	}
	if !t.readOnly {
		if err := t.write(lockIdempotencySQL, scope, key); err != nil {
			return queue.IdempotencyRecord{}, false, err
		}
	}
	var r queue.IdempotencyRecord
	found := false
	err := t.read(func(row pgx.Row) error {
		err := row.Scan(&r.Operation, &r.Fingerprint, &r.Expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	}, "SELECT op_id, fingerprint, expires FROM idempotency WHERE scope = $1 AND key = $2", scope, key)
	if err != nil {
		return queue.IdempotencyRecord{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if !found {
		return queue.IdempotencyRecord{}, false, nil
	}
	r.Expires = r.Expires.UTC()
	return r, true, nil
}

func (t *txn) PutIdempotency(ik queue.Idempotency, opID string) error {
	if err := t.writable(); err != nil {
		return err
	}
	return t.write(`INSERT INTO idempotency (scope, key, op_id, fingerprint, expires) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (scope, key) DO UPDATE SET op_id = EXCLUDED.op_id, fingerprint = EXCLUDED.fingerprint, expires = EXCLUDED.expires`,
		ik.Scope, ik.Key, opID, ik.Fingerprint, ik.Expires)
}

// --- mirror records -----------------------------------------------------------

func (t *txn) Group(name groups.Name) (groups.Group, error) {
	if name.Tenant != t.tenant || !storableName(name) {
		return groups.Group{}, groups.ErrNotFound
	}
	if t.err != nil {
		return groups.Group{}, t.err
	}
	if doc, ok := t.groups[groupKey(name)]; ok {
		if doc == nil {
			return groups.Group{}, groups.ErrNotFound
		}
		return decodeGroup(doc, name.Tenant)
	}
	var doc []byte
	err := t.read(func(row pgx.Row) error {
		if err := row.Scan(&doc); !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	}, "SELECT doc FROM groups WHERE tenant = $1 AND project = $2 AND group_key = $3", name.Tenant, name.Project, name.Key())
	if err != nil {
		return groups.Group{}, fmt.Errorf("read group %s: %w", name, err)
	}
	if !t.readOnly {
		t.remember(name, doc)
	}
	if doc == nil {
		return groups.Group{}, groups.ErrNotFound
	}
	return decodeGroup(doc, name.Tenant)
}

// putGroupSQL stores a group, moves its project's GroupsVersion and, if
// the group is new (the row was inserted, not updated: xmax = 0), counts
// it in the project's n.
const putGroupSQL = `WITH g AS (INSERT INTO groups (tenant, project, group_key, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, project, group_key) DO UPDATE SET doc = EXCLUDED.doc
		RETURNING (xmax = 0) AS created)
	INSERT INTO group_versions (tenant, project, version, n) VALUES ($1, $2, 1, (SELECT count(*) FROM g WHERE created))
	ON CONFLICT (tenant, project) DO UPDATE SET version = group_versions.version + 1, n = group_versions.n + EXCLUDED.n`

func (t *txn) PutGroup(g groups.Group) error {
	if err := t.own(g.Name.Tenant); err != nil {
		return err
	}
	doc, err := json.Marshal(records.NewGroup(g))
	if err != nil {
		return fmt.Errorf("encode group %s: %w", g.Name, err)
	}
	t.remember(g.Name, doc)
	return t.write(putGroupSQL, g.Name.Tenant, g.Name.Project, g.Name.Key(), doc)
}

// deleteGroupSQL removes a group and its members, moves the project's
// GroupsVersion and counts the group out of its n, if the group was there
// (then so is the project's row: putGroupSQL made it).
const deleteGroupSQL = `WITH g AS (DELETE FROM groups WHERE tenant = $1 AND project = $2 AND group_key = $3 RETURNING 1),
	m AS (DELETE FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3 AND EXISTS (SELECT 1 FROM g))
	INSERT INTO group_versions (tenant, project, version, n) SELECT $1, $2, 1, 0 FROM g
	ON CONFLICT (tenant, project) DO UPDATE SET version = group_versions.version + 1, n = group_versions.n - 1`

func (t *txn) DeleteGroup(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	t.remember(name, nil)
	return t.write(deleteGroupSQL, name.Tenant, name.Project, name.Key())
}

// CountGroups implements groups.Tx from the counts kept in group_versions
// (one row per project, not one per group).
func (t *txn) CountGroups(project string) (int, error) {
	var n int
	sql := "SELECT coalesce(sum(n), 0) FROM group_versions WHERE tenant = $1"
	args := []any{t.tenant}
	if project != "" {
		sql += " AND project = $2"
		args = append(args, project)
	}
	err := t.read(func(row pgx.Row) error { return row.Scan(&n) }, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("count groups of %s: %w", t.tenant, err)
	}
	return n, nil
}

func (t *txn) NextRevision(after uint64) (uint64, error) {
	if err := t.writable(); err != nil {
		return 0, err
	}
	if err := t.counters(); err != nil {
		return 0, err
	}
	t.rev = max(t.rev+1, int64(after+1))
	t.counted = true
	return uint64(t.rev), nil
}

func (t *txn) Members(name groups.Name) ([]groups.User, error) {
	if name.Tenant != t.tenant || !storableName(name) {
		return nil, t.flush()
	}
	var out []groups.User
	err := t.query(func(rows pgx.Rows) error {
		var u groups.User
		_, err := pgx.ForEachRow(rows, []any{&u.ID, &u.Email, &u.DisplayName}, func() error {
			out = append(out, u)
			return nil
		})
		return err
	}, `SELECT id, email, display_name FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3
		ORDER BY email_key, id`, name.Tenant, name.Project, name.Key())
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	return out, nil
}

func (t *txn) PutMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	return t.write(`INSERT INTO members (tenant, project, group_key, email_key, id, email, display_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant, project, group_key, email_key, id) DO UPDATE SET email = EXCLUDED.email, display_name = EXCLUDED.display_name`,
		name.Tenant, name.Project, name.Key(), strings.ToLower(u.Email), u.ID, u.Email, u.DisplayName)
}

func (t *txn) RemoveMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	return t.write(`DELETE FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3 AND email_key = $4 AND id = $5`,
		name.Tenant, name.Project, name.Key(), strings.ToLower(u.Email), u.ID)
}

func (t *txn) DropMembers(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	return t.write("DELETE FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3", name.Tenant, name.Project, name.Key())
}

// PutKnownUsers stores each user under its id ('i' row) and its e-mail
// ('e' row); the 'e' row of the e-mail the user's 'i' row had before goes
// (as in memstore and boltstore, even if another user took that e-mail
// since).
func (t *txn) PutKnownUsers(users []groups.User) error {
	if err := t.writable(); err != nil {
		return err
	}
	for _, u := range users {
		if u.ID == "" {
			continue
		}
		idKey, emailKey := strings.ToLower(u.ID), strings.ToLower(u.Email)
		err := t.write(`DELETE FROM known_users e USING known_users i
			WHERE i.tenant = $1 AND i.kind = 'i' AND i.key = $2 AND i.email_key <> '' AND i.email_key <> $3
			AND e.tenant = $1 AND e.kind = 'e' AND e.key = i.email_key`, t.tenant, idKey, emailKey)
		if err != nil {
			return err
		}
		for _, k := range []struct{ kind, key string }{{"i", idKey}, {"e", emailKey}} {
			if k.key == "" {
				continue
			}
			err := t.write(`INSERT INTO known_users (tenant, kind, key, id, email, email_key, display_name) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (tenant, kind, key) DO UPDATE SET id = EXCLUDED.id, email = EXCLUDED.email,
				email_key = EXCLUDED.email_key, display_name = EXCLUDED.display_name`,
				t.tenant, k.kind, k.key, u.ID, u.Email, emailKey, u.DisplayName)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// knownUserSQL finds a user by id ('i' first), else by e-mail.
const knownUserSQL = `SELECT id, email, display_name FROM known_users
	WHERE tenant = $1 AND kind IN ('i', 'e') AND key = $2 ORDER BY kind DESC LIMIT 1`

func (t *txn) KnownUser(idOrEmail string) (groups.User, bool, error) {
	if !storable(idOrEmail) {
		return groups.User{}, false, t.flush()
	}
	var u groups.User
	found := false
	err := t.read(func(row pgx.Row) error {
		err := row.Scan(&u.ID, &u.Email, &u.DisplayName)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	}, knownUserSQL, t.tenant, strings.ToLower(idOrEmail))
	if err != nil {
		return groups.User{}, false, fmt.Errorf("known user of %s: %w", t.tenant, err)
	}
	return u, found, nil
}

func (t *txn) ForgetKnownUser(idOrEmail string) error {
	if err := t.writable(); err != nil {
		return err
	}
	if !storable(idOrEmail) {
		return nil
	}
	return t.write("DELETE FROM known_users WHERE tenant = $1 AND key = $2", t.tenant, strings.ToLower(idOrEmail))
}

func (t *txn) DeletedUsers(ids []string) (map[string]groups.DeletedUser, error) {
	out := map[string]groups.DeletedUser{}
	err := t.query(func(rows pgx.Rows) error { return collectDeleted(rows, ids, out) }, deletedUsersSQL, t.tenant, lowerKeys(ids))
	if err != nil {
		return nil, fmt.Errorf("deleted users of %s: %w", t.tenant, err)
	}
	return out, nil
}

const deletedUsersSQL = "SELECT key, id, email, deleted_at, expires FROM deleted_users WHERE tenant = $1 AND key = ANY($2)"

// lowerKeys returns the lower-cased ids that can be stored.
func lowerKeys(ids []string) []string {
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		if storable(id) {
			keys = append(keys, strings.ToLower(id))
		}
	}
	return keys
}

// collectDeleted reads deleted_users rows into out, keyed by the ids
// asked for.
func collectDeleted(rows pgx.Rows, ids []string, out map[string]groups.DeletedUser) error {
	byKey := map[string]groups.DeletedUser{}
	var key string
	var d groups.DeletedUser
	var deletedAt, expires *time.Time
	_, err := pgx.ForEachRow(rows, []any{&key, &d.ID, &d.Email, &deletedAt, &expires}, func() error {
		d.DeletedAt, d.Expires = timeOf(deletedAt), timeOf(expires)
		byKey[key] = d
		return nil
	})
	for _, id := range ids {
		if d, ok := byKey[strings.ToLower(id)]; ok {
			out[id] = d
		}
	}
	return err
}

func (t *txn) PutDeletedUser(idOrEmail string, d groups.DeletedUser) error {
	if err := t.writable(); err != nil {
		return err
	}
	return t.write(`INSERT INTO deleted_users (tenant, key, id, email, deleted_at, expires) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, key) DO UPDATE SET id = EXCLUDED.id, email = EXCLUDED.email,
		deleted_at = EXCLUDED.deleted_at, expires = EXCLUDED.expires`,
		t.tenant, strings.ToLower(idOrEmail), d.ID, d.Email, nullTime(d.DeletedAt), d.Expires.UTC())
}

func (t *txn) DeleteDeletedUsers(ids ...string) error {
	if err := t.writable(); err != nil {
		return err
	}
	if keys := lowerKeys(ids); len(keys) > 0 {
		return t.write("DELETE FROM deleted_users WHERE tenant = $1 AND key = ANY($2)", t.tenant, keys)
	}
	return nil
}

func (t *txn) Groups(project string) ([]groups.Group, error) {
	var out []groups.Group
	err := t.query(func(rows pgx.Rows) error {
		var doc []byte
		_, err := pgx.ForEachRow(rows, []any{&doc}, func() error {
			g, err := decodeGroup(doc, t.tenant)
			out = append(out, g)
			return err
		})
		return err
	}, "SELECT doc FROM groups WHERE tenant = $1 AND ($2 = '' OR project = $2) ORDER BY project, group_key", t.tenant, project)
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", t.tenant, err)
	}
	return out, nil
}

func (t *txn) Owners(name groups.Name) (groups.Owners, bool, error) {
	if name.Tenant != t.tenant || !storableName(name) {
		return groups.Owners{}, false, t.flush()
	}
	var doc []byte
	err := t.read(func(row pgx.Row) error {
		if err := row.Scan(&doc); !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	}, "SELECT doc FROM owners WHERE tenant = $1 AND project = $2 AND group_key = $3", name.Tenant, name.Project, name.Key())
	if err != nil {
		return groups.Owners{}, false, fmt.Errorf("owners of %s: %w", name, err)
	}
	if doc == nil {
		return groups.Owners{}, false, nil
	}
	var r records.Owners
	if err := json.Unmarshal(doc, &r); err != nil {
		return groups.Owners{}, false, fmt.Errorf("decode owners of %s: %w", name, err)
	}
	return r.ToOwners(), true, nil
}

func (t *txn) PutOwners(name groups.Name, o groups.Owners) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	doc, err := json.Marshal(records.NewOwners(o))
	if err != nil {
		return fmt.Errorf("encode owners of %s: %w", name, err)
	}
	return t.write(`INSERT INTO owners (tenant, project, group_key, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, project, group_key) DO UPDATE SET doc = EXCLUDED.doc`, name.Tenant, name.Project, name.Key(), doc)
}

func (t *txn) SetGroupsSyncedAt(at time.Time) error {
	if err := t.writable(); err != nil {
		return err
	}
	return t.write(`INSERT INTO mirror_tenants (tenant, groups_synced_at) VALUES ($1, $2)
		ON CONFLICT (tenant) DO UPDATE SET groups_synced_at = EXCLUDED.groups_synced_at`, t.tenant, nullTime(at))
}
