package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/throttle"
)

// txn is groups.Tx over one PostgreSQL transaction, for one tenant. Each
// method is one round trip (a statement, or a batch of them).
type txn struct {
	ctx      context.Context
	tx       pgx.Tx
	tenant   string
	readOnly bool
}

var _ groups.Tx = (*txn)(nil)

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

func (t *txn) Operation(id string) (throttle.Operation, error) {
	if !storable(id) {
		return throttle.Operation{}, fmt.Errorf("operation %q: %w", id, throttle.ErrNotFound)
	}
	return scanOperation(t.tx.QueryRow(t.ctx, "SELECT doc FROM operations WHERE id = $1", id), id)
}

// errOtherTenantsOperation refuses to overwrite an operation stored for
// another tenant under the same id.
var errOtherTenantsOperation = errors.New("an operation of another tenant has that id")

func (t *txn) PutOperation(op throttle.Operation) error {
	if err := t.own(op.Tenant); err != nil {
		return err
	}
	doc, err := json.Marshal(newOperationRecord(op))
	if err != nil {
		return fmt.Errorf("encode operation %s: %w", op.ID, err)
	}
	tag, err := t.tx.Exec(t.ctx, `INSERT INTO operations (id, tenant, doc) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc WHERE operations.tenant = EXCLUDED.tenant`, op.ID, op.Tenant, doc)
	if err != nil {
		return fmt.Errorf("put operation %s: %w", op.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put operation %s: %w", op.ID, errOtherTenantsOperation)
	}
	return nil
}

// appendSQL takes the tenant's next Seq, queues the operation under it,
// counts it pending, stores it with its Seq, and signals ChannelQueue at
// commit: one statement.
const appendSQL = `WITH s AS (
		INSERT INTO mirror_tenants (tenant, queue_seq) VALUES ($1, 1)
		ON CONFLICT (tenant) DO UPDATE SET queue_seq = mirror_tenants.queue_seq + 1
		RETURNING queue_seq),
	q AS (INSERT INTO queue (tenant, project, seq, op_id) SELECT $1, $2, queue_seq, $3 FROM s),
	p AS (INSERT INTO pending (tenant, project, n) VALUES ($1, $2, 1)
		ON CONFLICT (tenant, project) DO UPDATE SET n = pending.n + 1),
	o AS (INSERT INTO operations (id, tenant, doc) SELECT $3, $1, jsonb_set($4::jsonb, '{seq}', to_jsonb(queue_seq)) FROM s
		ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc WHERE operations.tenant = EXCLUDED.tenant
		RETURNING 1),
	n AS (SELECT pg_notify($5, $1))
	SELECT queue_seq, (SELECT count(*) FROM o), (SELECT count(*) FROM n) FROM s`

func (t *txn) Append(op throttle.Operation) (throttle.Operation, error) {
	if err := t.own(op.Tenant); err != nil {
		return op, err
	}
	doc, err := json.Marshal(newOperationRecord(op))
	if err != nil {
		return op, fmt.Errorf("encode operation %s: %w", op.ID, err)
	}
	var seq, stored, notified int64
	if err := t.tx.QueryRow(t.ctx, appendSQL, op.Tenant, op.Project, op.ID, doc, ChannelQueue).Scan(&seq, &stored, &notified); err != nil {
		return op, fmt.Errorf("append operation %s: %w", op.ID, err)
	}
	if stored == 0 {
		return op, fmt.Errorf("append operation %s: %w", op.ID, errOtherTenantsOperation)
	}
	op.Seq = uint64(seq)
	return op, nil
}

// unqueueSQL takes an operation off its queue and out of the pending
// count, if it was there.
const unqueueSQL = `WITH d AS (DELETE FROM queue WHERE tenant = $1 AND project = $2 AND seq = $3 RETURNING 1),
	p AS (UPDATE pending SET n = n - 1 WHERE tenant = $1 AND project = $2 AND EXISTS (SELECT 1 FROM d))
	SELECT count(*) FROM d`

func (t *txn) Unqueue(op throttle.Operation) (bool, error) {
	if err := t.own(op.Tenant); err != nil {
		return false, err
	}
	var n int
	if err := t.tx.QueryRow(t.ctx, unqueueSQL, op.Tenant, op.Project, int64(op.Seq)).Scan(&n); err != nil {
		return false, fmt.Errorf("unqueue operation %s: %w", op.ID, err)
	}
	return n > 0, nil
}

func (t *txn) Depth() (throttle.Depth, error) { return depth(t.ctx, t.tx, t.tenant) }

func (t *txn) Queued() ([]throttle.Operation, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT o.doc FROM queue q JOIN operations o ON o.id = q.op_id
		WHERE q.tenant = $1 ORDER BY q.seq`, t.tenant)
	if err != nil {
		return nil, fmt.Errorf("queued operations of %s: %w", t.tenant, err)
	}
	ops, err := collectOperations(rows)
	if err != nil {
		return nil, fmt.Errorf("queued operations of %s: %w", t.tenant, err)
	}
	return ops, nil
}

// Idempotency takes the key's lock first (in an Update), so two
// transactions of different tenants checking one key are serialized: the
// SELECT, a statement of its own, sees a record committed while it waited.
func (t *txn) Idempotency(scope, key string) (throttle.IdempotencyRecord, bool, error) {
	if !storable(scope) || !storable(key) {
		return throttle.IdempotencyRecord{}, false, nil
	}
	b := &pgx.Batch{}
	if !t.readOnly {
		b.Queue(lockIdempotencySQL, scope, key)
	}
	b.Queue("SELECT op_id, fingerprint, expires FROM idempotency WHERE scope = $1 AND key = $2", scope, key)
	br := t.tx.SendBatch(t.ctx, b)
	defer br.Close()
	if !t.readOnly {
		if _, err := br.Exec(); err != nil {
			return throttle.IdempotencyRecord{}, false, fmt.Errorf("lock idempotency key: %w", err)
		}
	}
	var r throttle.IdempotencyRecord
	err := br.QueryRow().Scan(&r.Operation, &r.Fingerprint, &r.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return throttle.IdempotencyRecord{}, false, br.Close()
	}
	if err != nil {
		return throttle.IdempotencyRecord{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	r.Expires = r.Expires.UTC()
	return r, true, br.Close()
}

func (t *txn) PutIdempotency(ik throttle.Idempotency, opID string) error {
	if err := t.writable(); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO idempotency (scope, key, op_id, fingerprint, expires) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (scope, key) DO UPDATE SET op_id = EXCLUDED.op_id, fingerprint = EXCLUDED.fingerprint, expires = EXCLUDED.expires`,
		ik.Scope, ik.Key, opID, ik.Fingerprint, ik.Expires)
	if err != nil {
		return fmt.Errorf("record idempotency key: %w", err)
	}
	return nil
}

// --- mirror records -----------------------------------------------------------

func (t *txn) Group(name groups.Name) (groups.Group, error) {
	if name.Tenant != t.tenant {
		return groups.Group{}, groups.ErrNotFound
	}
	return getGroup(t.ctx, t.tx, name)
}

// putGroupSQL stores a group and moves its project's GroupsVersion.
const putGroupSQL = `WITH g AS (INSERT INTO groups (tenant, project, group_key, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, project, group_key) DO UPDATE SET doc = EXCLUDED.doc)
	INSERT INTO group_versions (tenant, project, version) VALUES ($1, $2, 1)
	ON CONFLICT (tenant, project) DO UPDATE SET version = group_versions.version + 1`

func (t *txn) PutGroup(g groups.Group) error {
	if err := t.own(g.Name.Tenant); err != nil {
		return err
	}
	doc, err := json.Marshal(newGroupRecord(g))
	if err != nil {
		return fmt.Errorf("encode group %s: %w", g.Name, err)
	}
	if _, err := t.tx.Exec(t.ctx, putGroupSQL, g.Name.Tenant, g.Name.Project, g.Name.Key(), doc); err != nil {
		return fmt.Errorf("put group %s: %w", g.Name, err)
	}
	return nil
}

// deleteGroupSQL removes a group and its members and moves the project's
// GroupsVersion, if the group was there.
const deleteGroupSQL = `WITH g AS (DELETE FROM groups WHERE tenant = $1 AND project = $2 AND group_key = $3 RETURNING 1),
	m AS (DELETE FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3 AND EXISTS (SELECT 1 FROM g))
	INSERT INTO group_versions (tenant, project, version) SELECT $1, $2, 1 FROM g
	ON CONFLICT (tenant, project) DO UPDATE SET version = group_versions.version + 1`

func (t *txn) DeleteGroup(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	if _, err := t.tx.Exec(t.ctx, deleteGroupSQL, name.Tenant, name.Project, name.Key()); err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	return nil
}

func (t *txn) CountGroups(project string) (int, error) {
	var n int
	err := t.tx.QueryRow(t.ctx, "SELECT count(*) FROM groups WHERE tenant = $1 AND ($2 = '' OR project = $2)", t.tenant, project).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count groups of %s: %w", t.tenant, err)
	}
	return n, nil
}

func (t *txn) NextRevision(after uint64) (uint64, error) {
	if err := t.writable(); err != nil {
		return 0, err
	}
	var rev int64
	err := t.tx.QueryRow(t.ctx, `INSERT INTO mirror_tenants (tenant, revision) VALUES ($1, $2)
		ON CONFLICT (tenant) DO UPDATE SET revision = greatest(mirror_tenants.revision + 1, EXCLUDED.revision)
		RETURNING revision`, t.tenant, int64(after+1)).Scan(&rev)
	if err != nil {
		return 0, fmt.Errorf("next revision of %s: %w", t.tenant, err)
	}
	return uint64(rev), nil
}

func (t *txn) Members(name groups.Name) ([]groups.User, error) {
	if name.Tenant != t.tenant || !storableName(name) {
		return nil, nil
	}
	rows, err := t.tx.Query(t.ctx, `SELECT id, email, display_name FROM members
		WHERE tenant = $1 AND project = $2 AND group_key = $3 ORDER BY email_key, id`, name.Tenant, name.Project, name.Key())
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	var out []groups.User
	var u groups.User
	_, err = pgx.ForEachRow(rows, []any{&u.ID, &u.Email, &u.DisplayName}, func() error {
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	return out, nil
}

func (t *txn) PutMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO members (tenant, project, group_key, email_key, id, email, display_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant, project, group_key, email_key, id) DO UPDATE SET email = EXCLUDED.email, display_name = EXCLUDED.display_name`,
		name.Tenant, name.Project, name.Key(), strings.ToLower(u.Email), u.ID, u.Email, u.DisplayName)
	if err != nil {
		return fmt.Errorf("put member of %s: %w", name, err)
	}
	return nil
}

func (t *txn) RemoveMember(name groups.Name, u groups.User) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, `DELETE FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3 AND email_key = $4 AND id = $5`,
		name.Tenant, name.Project, name.Key(), strings.ToLower(u.Email), u.ID)
	if err != nil {
		return fmt.Errorf("remove member of %s: %w", name, err)
	}
	return nil
}

func (t *txn) DropMembers(name groups.Name) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	if _, err := t.tx.Exec(t.ctx, "DELETE FROM members WHERE tenant = $1 AND project = $2 AND group_key = $3",
		name.Tenant, name.Project, name.Key()); err != nil {
		return fmt.Errorf("drop members of %s: %w", name, err)
	}
	return nil
}

// PutKnownUsers stores each user under its lower-cased id, and gives it
// its lower-cased e-mail as the key by which it is found (taking it from
// any other user that had it): one batch.
func (t *txn) PutKnownUsers(users []groups.User) error {
	if err := t.writable(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, u := range users {
		if u.ID == "" {
			continue
		}
		idKey := strings.ToLower(u.ID)
		var emailKey *string
		if u.Email != "" {
			k := strings.ToLower(u.Email)
			emailKey = &k
			b.Queue("UPDATE known_users SET email_key = NULL WHERE tenant = $1 AND email_key = $2 AND id_key <> $3", t.tenant, k, idKey)
		}
		b.Queue(`INSERT INTO known_users (tenant, id_key, id, email, display_name, email_key) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant, id_key) DO UPDATE SET id = EXCLUDED.id, email = EXCLUDED.email,
			display_name = EXCLUDED.display_name, email_key = EXCLUDED.email_key`,
			t.tenant, idKey, u.ID, u.Email, u.DisplayName, emailKey)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
		return fmt.Errorf("put known users of %s: %w", t.tenant, err)
	}
	return nil
}

func (t *txn) Owners(name groups.Name) (groups.Owners, bool, error) {
	if name.Tenant != t.tenant || !storableName(name) {
		return groups.Owners{}, false, nil
	}
	var doc []byte
	err := t.tx.QueryRow(t.ctx, "SELECT doc FROM owners WHERE tenant = $1 AND project = $2 AND group_key = $3",
		name.Tenant, name.Project, name.Key()).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return groups.Owners{}, false, nil
	}
	if err != nil {
		return groups.Owners{}, false, fmt.Errorf("owners of %s: %w", name, err)
	}
	var r ownersRecord
	if err := json.Unmarshal(doc, &r); err != nil {
		return groups.Owners{}, false, fmt.Errorf("decode owners of %s: %w", name, err)
	}
	o := groups.Owners{UpstreamID: r.UpstreamID, Users: make([]groups.User, 0, len(r.Owners))}
	for _, u := range r.Owners {
		o.Users = append(o.Users, groups.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName})
	}
	return o, true, nil
}

func (t *txn) PutOwners(name groups.Name, o groups.Owners) error {
	if err := t.own(name.Tenant); err != nil {
		return err
	}
	r := ownersRecord{UpstreamID: o.UpstreamID, Owners: make([]userRecord, 0, len(o.Users))}
	for _, u := range o.Users {
		r.Owners = append(r.Owners, userRecord{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName})
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode owners of %s: %w", name, err)
	}
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO owners (tenant, project, group_key, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, project, group_key) DO UPDATE SET doc = EXCLUDED.doc`,
		name.Tenant, name.Project, name.Key(), doc); err != nil {
		return fmt.Errorf("put owners of %s: %w", name, err)
	}
	return nil
}

func (t *txn) SetGroupsSyncedAt(at time.Time) error {
	if err := t.writable(); err != nil {
		return err
	}
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO mirror_tenants (tenant, groups_synced_at) VALUES ($1, $2)
		ON CONFLICT (tenant) DO UPDATE SET groups_synced_at = EXCLUDED.groups_synced_at`, t.tenant, nullTime(at)); err != nil {
		return fmt.Errorf("set groups synced at of %s: %w", t.tenant, err)
	}
	return nil
}
