package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/records"
	"github.com/groupgate/groupgate/queue"
)

// The group mirror and the operation queue (groups.Store).
//
// # Serialization
//
// Update holds the tenant's lock for its whole transaction: a
// transaction-scoped advisory lock (pg_advisory_xact_lock) whose key is a
// 64-bit hash of the tenant's name (hashtextextended) in a namespace of its
// own, taken by the transaction's first statement. The transaction runs at
// READ COMMITTED, so every statement after the lock sees every Update of
// the tenant committed before it, by any replica: Updates of one tenant
// run one at a time across replicas, and each reads what the earlier ones
// wrote, which is all the domain's checks (queue limits, quotas, the group
// limit, name taken) need. Updates of different tenants run in parallel.
//
// Idempotency records are keyed by the caller's scope, not the tenant, so
// Tx.Idempotency also takes a lock on its scope and key before it reads:
// two Updates of different tenants that check one key run one after the
// other, and the second sees the first's record.
//
// Advisory lock keys are bigints whose top byte names their namespace
// (lockTenant, lockIdempotency); the migration's lock (migrationLock,
// 0x67...) is outside both, so no two kinds of lock can meet.
//
// An Update holds one of the pool's connections from its first statement
// to its COMMIT; fn must use only its Tx (a plain read of the Store inside
// fn would wait for another connection, and with every connection held by
// such an Update, wait for ever).
//
// A serialization failure or deadlock (40001, 40P01) runs the whole
// transaction again, fn included, up to maxAttempts times (the contract
// allows it). A COMMIT without a clear answer is ErrAmbiguousCommit.
//
// # Reads
//
// Plain reads are single statements of committed data; there is no cache
// in the process, so every replica reads what any replica committed. The
// exceptions: Generation, kept for Config.GenerationTTL (generation.go),
// and the groups a transaction read or wrote, kept for that transaction
// (txn.groups). GroupsVersion is a row moved in the writing transaction.
//
// Times in columns (idempotency and delivery expiries, deleted-user
// marks, the sync time) are timestamptz, kept to the microsecond;
// operations and groups keep theirs whole in their JSON documents.

var _ groups.Store = (*Store)(nil)

// Namespaces of advisory lock keys: the top byte of the key.
const (
	lockTenant      = 1 << 56
	lockIdempotency = 2 << 56
	lockHashMask    = 1<<56 - 1
)

// lockKeySQL returns the SQL expression of the advisory lock key of text
// expression arg in namespace ns.
func lockKeySQL(ns int64, arg string) string {
	return fmt.Sprintf("((hashtextextended(%s, 0) & %d) | %d)", arg, int64(lockHashMask), ns)
}

var (
	lockTenantSQL      = "SELECT pg_advisory_xact_lock(" + lockKeySQL(lockTenant, "$1::text") + ")"
	lockOperationSQL   = "SELECT 1 FROM operations, LATERAL pg_advisory_xact_lock(" + lockKeySQL(lockTenant, "operations.tenant") + ") WHERE id = $1"
	lockIdempotencySQL = "SELECT pg_advisory_xact_lock(" + lockKeySQL(lockIdempotency, "$1::text || ' ' || $2::text") + ")"
)

// maxAttempts bounds how many times Update runs a transaction that failed
// on a serialization failure or a deadlock.
const maxAttempts = 8

// errReadOnly refuses a write through View.
var errReadOnly = errors.New("pgstore: write in a read-only transaction")

// retryable reports whether err is a transaction's serialization failure
// or deadlock, after which the transaction may simply run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// retry runs attempt until it succeeds, fails otherwise than retryably, or
// has run maxAttempts times.
func retry(ctx context.Context, attempt func() error) error {
	for i := 1; ; i++ {
		err := attempt()
		if err == nil || !retryable(err) || i == maxAttempts || ctx.Err() != nil {
			return err
		}
	}
}

// Update implements groups.Store (see Serialization above). The
// transaction is pipelined: BEGIN, the tenant's lock and the read of its
// counters wait to go with fn's first read, and fn's writes wait for its
// next read or for the COMMIT (see txn), so a create takes a handful of
// round trips.
func (s *Store) Update(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	if !storable(tenant) {
		return fmt.Errorf("update of tenant %q: the name cannot be stored", tenant)
	}
	return retry(ctx, func() error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("acquire a connection: %w", err)
		}
		// A connection left inside a transaction (a failed ROLLBACK) is
		// closed by the pool, not reused.
		defer conn.Release()
		t := &txn{ctx: ctx, q: conn, tenant: tenant, b: &pgx.Batch{}, enqueued: s.wakes.add}
		t.b.Queue("BEGIN")
		t.b.Queue(lockTenantSQL, tenant)
		t.b.Queue("SELECT queue_seq, revision FROM mirror_tenants WHERE tenant = $1", tenant).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&t.seq, &t.rev)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
		t.b.Queue(depthSQL, tenant).Query(func(rows pgx.Rows) error {
			d, err := scanDepth(rows)
			t.depth = &d
			return err
		})
		if err := fn(t); err != nil {
			t.rollback()
			return err
		}
		return t.commit()
	})
}

// View implements groups.Store: fn reads one snapshot (a REPEATABLE READ,
// READ ONLY transaction) and takes no lock; a write through it fails.
func (s *Store) View(ctx context.Context, tenant string, fn func(groups.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(&txn{ctx: ctx, q: tx, tenant: tenant, readOnly: true, b: &pgx.Batch{}}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// UpdateOperation implements groups.Store: under the lock of the
// operation's tenant, so it is serialized with that tenant's Updates, in
// two round trips. fn may not change the operation's id, tenant or
// project.
func (s *Store) UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error) {
	if !storable(id) {
		return queue.Operation{}, fmt.Errorf("operation %q: %w", id, queue.ErrNotFound)
	}
	var out queue.Operation
	err := retry(ctx, func() error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("acquire a connection: %w", err)
		}
		defer conn.Release()
		t := &txn{ctx: ctx, q: conn, b: &pgx.Batch{}, enqueued: s.wakes.add}
		var op queue.Operation
		t.b.Queue("BEGIN")
		t.b.Queue(lockOperationSQL, id)
		t.b.Queue("SELECT tenant, doc FROM operations WHERE id = $1", id).QueryRow(func(row pgx.Row) error {
			var doc []byte
			if err := row.Scan(&t.tenant, &doc); errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("operation %s: %w", id, queue.ErrNotFound)
			} else if err != nil {
				return err
			}
			op, err = decodeOperation(doc)
			return err
		})
		if err := t.flush(); err != nil {
			t.rollback()
			return err
		}
		was := op
		if err := fn(&op); err != nil {
			t.rollback()
			return err
		}
		if op.ID != was.ID || op.Tenant != was.Tenant || op.Project != was.Project {
			t.rollback()
			return fmt.Errorf("update operation %s: %w", id, errRekeyed)
		}
		doc, err := json.Marshal(records.NewOperation(op))
		if err != nil {
			t.rollback()
			return fmt.Errorf("encode operation %s: %w", id, err)
		}
		t.b.Queue("UPDATE operations SET doc = $2 WHERE id = $1", id, doc)
		if err := t.commit(); err != nil {
			return err
		}
		out = op
		return nil
	})
	if err != nil {
		return queue.Operation{}, err
	}
	return out, nil
}

// scanOperation decodes an operation's doc; ErrNotFound if there is none.
func scanOperation(row pgx.Row, id string) (queue.Operation, error) {
	var doc []byte
	if err := row.Scan(&doc); errors.Is(err, pgx.ErrNoRows) {
		return queue.Operation{}, fmt.Errorf("operation %s: %w", id, queue.ErrNotFound)
	} else if err != nil {
		return queue.Operation{}, fmt.Errorf("read operation %s: %w", id, err)
	}
	return decodeOperation(doc)
}

func decodeOperation(doc []byte) (queue.Operation, error) {
	var r records.Operation
	if err := json.Unmarshal(doc, &r); err != nil {
		return queue.Operation{}, fmt.Errorf("decode operation: %w", err)
	}
	return r.ToOperation(), nil
}

// collectOperations reads rows of one doc column.
func collectOperations(rows pgx.Rows) ([]queue.Operation, error) {
	var out []queue.Operation
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		op, err := decodeOperation(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, rows.Err()
}

// Operation implements groups.Store.
func (s *Store) Operation(ctx context.Context, id string) (queue.Operation, error) {
	if !storable(id) {
		return queue.Operation{}, fmt.Errorf("operation %q: %w", id, queue.ErrNotFound)
	}
	return scanOperation(s.pool.QueryRow(ctx, "SELECT doc FROM operations WHERE id = $1", id), id)
}

// headsSQL finds each project's first queued operation through the
// pending counts and the queue's primary key: one index probe per project.
const headsSQL = `SELECT o.doc FROM pending p
	CROSS JOIN LATERAL (SELECT op_id FROM queue q WHERE q.tenant = p.tenant AND q.project = p.project ORDER BY q.seq LIMIT 1) h
	JOIN operations o ON o.id = h.op_id
	WHERE p.tenant = $1 AND p.n > 0 ORDER BY p.project`

// Heads implements groups.Store.
func (s *Store) Heads(ctx context.Context, tenant string) ([]queue.Operation, error) {
	if !storable(tenant) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, headsSQL, tenant)
	if err != nil {
		return nil, fmt.Errorf("heads of %s: %w", tenant, err)
	}
	ops, err := collectOperations(rows)
	if err != nil {
		return nil, fmt.Errorf("heads of %s: %w", tenant, err)
	}
	return ops, nil
}

// Depth implements groups.Store.
func (s *Store) Depth(ctx context.Context, tenant string) (queue.Depth, error) {
	if !storable(tenant) {
		return queue.Depth{Projects: map[string]int{}}, nil
	}
	return depth(ctx, s.pool, tenant)
}

const depthSQL = "SELECT project, n FROM pending WHERE tenant = $1 AND n > 0"

func depth(ctx context.Context, q querier, tenant string) (queue.Depth, error) {
	rows, err := q.Query(ctx, depthSQL, tenant)
	if err != nil {
		return queue.Depth{Projects: map[string]int{}}, fmt.Errorf("depth of %s: %w", tenant, err)
	}
	d, err := scanDepth(rows)
	if err != nil {
		return d, fmt.Errorf("depth of %s: %w", tenant, err)
	}
	return d, nil
}

// scanDepth reads the rows of depthSQL.
func scanDepth(rows pgx.Rows) (queue.Depth, error) {
	d := queue.Depth{Projects: map[string]int{}}
	var project string
	var n int
	_, err := pgx.ForEachRow(rows, []any{&project, &n}, func() error {
		d.Projects[project] = n
		d.Total += n
		return nil
	})
	return d, err
}

// placeSQL counts the operations ahead of one in its project's queue and
// reads the tenant's pending counts, in one statement (one snapshot): a
// row per project with some pending, or one row of NULLs for none. Those
// ahead are the project's pending count less those from the operation on:
// counted from the tail, where a fresh operation (whose estimate every 202
// carries) stands, this reads a row or two, not the whole backlog.
const placeSQL = `SELECT a.n, p.project, p.n
	FROM (SELECT greatest(
		coalesce((SELECT n FROM pending WHERE tenant = $1 AND project = $2), 0)
		- (SELECT count(*) FROM queue WHERE tenant = $1 AND project = $2 AND seq >= $3), 0) AS n) a
	LEFT JOIN pending p ON p.tenant = $1 AND p.n > 0`

// Place implements groups.Store.
func (s *Store) Place(ctx context.Context, op queue.Operation) (int, queue.Depth, error) {
	d := queue.Depth{Projects: map[string]int{}}
	if !storable(op.Tenant) || !storable(op.Project) {
		return 0, d, nil
	}
	rows, err := s.pool.Query(ctx, placeSQL, op.Tenant, op.Project, int64(op.Seq))
	if err != nil {
		return 0, d, fmt.Errorf("place of %s: %w", op.ID, err)
	}
	var ahead int
	var project *string
	var n *int
	_, err = pgx.ForEachRow(rows, []any{&ahead, &project, &n}, func() error {
		if project != nil && n != nil {
			d.Projects[*project] = *n
			d.Total += *n
		}
		return nil
	})
	if err != nil {
		return 0, queue.Depth{Projects: map[string]int{}}, fmt.Errorf("place of %s: %w", op.ID, err)
	}
	return ahead, d, nil
}

// Idempotent implements groups.Store.
func (s *Store) Idempotent(ctx context.Context, scope, key string, now time.Time) (string, string, bool, error) {
	if !storable(scope) || !storable(key) {
		return "", "", false, nil
	}
	var opID, fingerprint string
	err := s.pool.QueryRow(ctx, "SELECT op_id, fingerprint FROM idempotency WHERE scope = $1 AND key = $2 AND expires > $3",
		scope, key, now).Scan(&opID, &fingerprint)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("idempotency key: %w", err)
	}
	return opID, fingerprint, true, nil
}

// PurgeIdempotency implements groups.Store.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM idempotency WHERE expires <= $1", now)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// storableName reports whether every part of n can be stored.
func storableName(n groups.Name) bool {
	return storable(n.Tenant) && storable(n.Project) && storable(n.Group)
}

// Group implements groups.Store.
func (s *Store) Group(ctx context.Context, name groups.Name) (groups.Group, error) {
	return getGroup(ctx, s.pool, name)
}

func getGroup(ctx context.Context, q querier, name groups.Name) (groups.Group, error) {
	if !storableName(name) {
		return groups.Group{}, groups.ErrNotFound
	}
	var doc []byte
	err := q.QueryRow(ctx, "SELECT doc FROM groups WHERE tenant = $1 AND project = $2 AND group_key = $3",
		name.Tenant, name.Project, name.Key()).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return groups.Group{}, groups.ErrNotFound
	}
	if err != nil {
		return groups.Group{}, fmt.Errorf("read group %s: %w", name, err)
	}
	return decodeGroup(doc, name.Tenant)
}

func decodeGroup(doc []byte, tenant string) (groups.Group, error) {
	var r records.Group
	if err := json.Unmarshal(doc, &r); err != nil {
		return groups.Group{}, fmt.Errorf("decode group: %w", err)
	}
	return r.ToGroup(tenant), nil
}

// Groups implements groups.Store.
func (s *Store) Groups(ctx context.Context, tenant, project string) ([]groups.Group, error) {
	gs, _, err := s.ListGroups(ctx, tenant, groups.PageQuery{Project: project})
	return gs, err
}

// GroupsVersion implements groups.Store: a row of group_versions, moved by
// the transaction that writes the group, so a reader on any replica sees
// the change on its next call.
func (s *Store) GroupsVersion(ctx context.Context, tenant, project string) (uint64, error) {
	if !storable(tenant) || !storable(project) {
		return 0, nil
	}
	var v int64
	err := s.pool.QueryRow(ctx, "SELECT version FROM group_versions WHERE tenant = $1 AND project = $2", tenant, project).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("groups version of %s/%s: %w", tenant, project, err)
	}
	return uint64(v), nil
}

// ListGroups implements groups.Store. Cursor order is (project, group_key)
// order: a Cursor is project, NUL, key, and neither holds a NUL.
func (s *Store) ListGroups(ctx context.Context, tenant string, q groups.PageQuery) ([]groups.Group, bool, error) {
	out := []groups.Group{}
	if !storable(tenant) || !storable(q.Project) || !storable(q.Prefix) {
		return out, false, nil
	}
	afterProject, afterKey, _ := strings.Cut(q.After, "\x00")
	if !storable(afterProject) || !storable(afterKey) {
		return out, false, fmt.Errorf("list groups: cursor %q cannot be stored", q.After)
	}
	sql := `SELECT doc FROM groups WHERE tenant = $1
		AND ($2 = '' OR project = $2)
		AND starts_with(group_key, $3)
		AND ($4 = '' OR (project, group_key) > ($4, $5))
		ORDER BY project, group_key`
	args := []any{tenant, q.Project, q.Prefix, afterProject, afterKey}
	if q.Limit > 0 {
		sql += " LIMIT $6"
		args = append(args, q.Limit+1)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list groups of %s: %w", tenant, err)
	}
	var doc []byte
	_, err = pgx.ForEachRow(rows, []any{&doc}, func() error {
		g, err := decodeGroup(doc, tenant)
		out = append(out, g)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list groups of %s: %w", tenant, err)
	}
	if q.Limit > 0 && len(out) > q.Limit {
		return out[:q.Limit], true, nil
	}
	return out, false, nil
}

// ListMembers implements groups.Store, in one statement (one snapshot): a
// row with no member says the group exists and the page is empty. Member
// order is (email_key, id) order: a MemberCursor is the two joined by a
// NUL.
func (s *Store) ListMembers(ctx context.Context, name groups.Name, q groups.PageQuery) ([]groups.User, bool, error) {
	if !storableName(name) {
		return nil, false, fmt.Errorf("list members of %s: %w", name, groups.ErrNotFound)
	}
	prefixEmail, prefixID, prefixSplit := strings.Cut(q.Prefix, "\x00")
	afterEmail, afterID, afterSplit := strings.Cut(q.After, "\x00")
	for _, v := range []string{prefixEmail, prefixID, afterEmail, afterID} {
		if !storable(v) {
			return []groups.User{}, false, nil
		}
	}
	// Without a NUL, a prefix is one of the e-mail, and a cursor "e" is
	// before every member of e-mail e (whose cursors are e, NUL, id).
	sql := `SELECT m.id, m.email, m.display_name FROM groups g
		LEFT JOIN LATERAL (
			SELECT id, email, display_name, email_key FROM members m
			WHERE m.tenant = g.tenant AND m.project = g.project AND m.group_key = g.group_key
			AND (CASE WHEN $4 THEN email_key = $5 AND starts_with(id, $6) ELSE starts_with(email_key, $5) END)
			AND (CASE WHEN $7 THEN (email_key, id) > ($8, $9) ELSE ($8 = '' OR email_key >= $8) END)
			ORDER BY email_key, id LIMIT $10
		) m ON true
		WHERE g.tenant = $1 AND g.project = $2 AND g.group_key = $3
		ORDER BY m.email_key, m.id`
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = q.Limit + 1
	}
	rows, err := s.pool.Query(ctx, sql, name.Tenant, name.Project, name.Key(),
		prefixSplit, prefixEmail, prefixID, afterSplit, afterEmail, afterID, limit)
	if err != nil {
		return nil, false, fmt.Errorf("list members of %s: %w", name, err)
	}
	out, found := []groups.User{}, false
	var id, email, display *string
	_, err = pgx.ForEachRow(rows, []any{&id, &email, &display}, func() error {
		found = true
		if id != nil {
			out = append(out, groups.User{ID: *id, Email: *email, DisplayName: *display})
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list members of %s: %w", name, err)
	}
	if !found {
		return nil, false, fmt.Errorf("list members of %s: %w", name, groups.ErrNotFound)
	}
	if q.Limit > 0 && len(out) > q.Limit {
		return out[:q.Limit], true, nil
	}
	return out, false, nil
}

// KnownUsers implements groups.Store: an id is looked up as a user's id
// first, then as an e-mail.
func (s *Store) KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.User, error) {
	out := map[string]groups.User{}
	keys := lowerKeys(ids)
	if len(keys) == 0 || !storable(tenant) {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT kind, key, id, email, display_name FROM known_users
		WHERE tenant = $1 AND kind IN ('i', 'e') AND key = ANY($2)`, tenant, keys)
	if err != nil {
		return nil, fmt.Errorf("known users of %s: %w", tenant, err)
	}
	byID, byEmail := map[string]groups.User{}, map[string]groups.User{}
	var kind byte
	var key string
	var u groups.User
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &u.ID, &u.Email, &u.DisplayName}, func() error {
		if kind == 'i' {
			byID[key] = u
		} else {
			byEmail[key] = u
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("known users of %s: %w", tenant, err)
	}
	for _, id := range ids {
		if u, ok := byID[strings.ToLower(id)]; ok {
			out[id] = u
		} else if u, ok := byEmail[strings.ToLower(id)]; ok {
			out[id] = u
		}
	}
	return out, nil
}

// DeletedUsers implements groups.Store.
func (s *Store) DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]groups.DeletedUser, error) {
	out := map[string]groups.DeletedUser{}
	if !storable(tenant) {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, deletedUsersSQL, tenant, lowerKeys(ids))
	if err != nil {
		return nil, fmt.Errorf("deleted users of %s: %w", tenant, err)
	}
	if err := collectDeleted(rows, ids, out); err != nil {
		return nil, fmt.Errorf("deleted users of %s: %w", tenant, err)
	}
	return out, nil
}

// GroupsSyncedAt implements groups.Store.
func (s *Store) GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error) {
	if !storable(tenant) {
		return time.Time{}, nil
	}
	var at *time.Time
	err := s.pool.QueryRow(ctx, "SELECT groups_synced_at FROM mirror_tenants WHERE tenant = $1", tenant).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("groups synced at of %s: %w", tenant, err)
	}
	return timeOf(at), nil
}

// CheckPending verifies that the pending counts match the queues, that
// every project's group count (group_versions.n) matches its groups, and
// that every queued operation is stored; it returns the first mismatch.
// The counts move with every Append and Unqueue, PutGroup and DeleteGroup
// in the same statement, so a mismatch is a defect.
func (s *Store) CheckPending(ctx context.Context) error {
	var tenant, project string
	var counted, queued int
	err := s.pool.QueryRow(ctx, `SELECT tenant, project, counted, queued FROM (
			SELECT coalesce(p.tenant, q.tenant) AS tenant, coalesce(p.project, q.project) AS project,
				coalesce(p.n, 0) AS counted, coalesce(q.n, 0) AS queued
			FROM pending p FULL JOIN (SELECT tenant, project, count(*)::int AS n FROM queue GROUP BY tenant, project) q
			ON p.tenant = q.tenant AND p.project = q.project) c
		WHERE counted <> queued LIMIT 1`).Scan(&tenant, &project, &counted, &queued)
	if err == nil {
		return fmt.Errorf("pgstore: %s/%s has %d operations queued but counts %d", tenant, project, queued, counted)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("check pending counts: %w", err)
	}
	var groupsHeld int
	err = s.pool.QueryRow(ctx, `SELECT coalesce(v.tenant, g.tenant), coalesce(v.project, g.project), coalesce(v.n, 0)::int, coalesce(g.n, 0)::int
		FROM group_versions v FULL JOIN (SELECT tenant, project, count(*) AS n FROM groups GROUP BY tenant, project) g
		ON v.tenant = g.tenant AND v.project = g.project
		WHERE coalesce(v.n, 0) <> coalesce(g.n, 0) LIMIT 1`).Scan(&tenant, &project, &counted, &groupsHeld)
	if err == nil {
		return fmt.Errorf("pgstore: %s/%s holds %d groups but counts %d", tenant, project, groupsHeld, counted)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("check group counts: %w", err)
	}
	var missing string
	err = s.pool.QueryRow(ctx, `SELECT q.op_id FROM queue q LEFT JOIN operations o ON o.id = q.op_id
		WHERE o.id IS NULL OR o.tenant <> q.tenant LIMIT 1`).Scan(&missing)
	if err == nil {
		return fmt.Errorf("pgstore: queued operation %s is not stored for its tenant", missing)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("check queued operations: %w", err)
	}
	return nil
}
