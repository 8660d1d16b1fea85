package pgstore

import (
	"context"

	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/audit"
)

// The audit log (audit.Store): one row per entry, keyed by its ID, which
// sorts by time (the "C" collation), so time bounds are key bounds and
// newest-first is a backward scan of the primary key, or of (tenant, id)
// for a tenant's entries.

var _ audit.Store = (*Store)(nil)

// auditPurgeBatch bounds the rows one purge transaction deletes.
const auditPurgeBatch = 2048

// AppendAudit implements audit.Store: the entries are validated, then
// written with those of every other call waiting at the time (a group
// commit, see auditBatcher) in one INSERT and one commit; AppendAudit
// returns when that commit has answered. An ID already stored (or repeated
// in the call) fails the call with ErrDuplicate and stores none of its
// entries. Concurrent appends of one ID: the unique index makes the second
// wait for the first and then find it.
//
// When ctx ends before the batch holding the entries has committed,
// AppendAudit returns ctx's error, and the entries may yet be stored.
func (s *Store) AppendAudit(ctx context.Context, entries ...audit.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	return s.audits.append(ctx, entries, s.insertAudit)
}

// insertAudit writes entries in one transaction: all of them, or none and
// ErrDuplicate when an ID is taken (or repeated among them).
func (s *Store) insertAudit(ctx context.Context, entries []audit.Entry) error {
	n := len(entries)
	cols := make([][]string, 10)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	ids, status := make([]string, n), make([]int32, n)
	for i, e := range entries {
		ids[i], status[i] = e.ID, int32(e.Status)
		for j, v := range []string{e.Tenant, e.Project, e.Actor, e.Role, e.Action, e.Target, e.Outcome, e.RequestID, e.OperationID, e.Detail} {
			cols[j][i] = v
		}
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO audit (id, tenant, project, actor, role, action, target, outcome, request_id, operation_id, detail, status)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[])
			ON CONFLICT (id) DO NOTHING`,
			ids, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], status)
		if err != nil {
			return fmt.Errorf("append audit entries: %w", err)
		}
		if tag.RowsAffected() != int64(n) {
			return fmt.Errorf("%w: %d of %d entries", audit.ErrDuplicate, int64(n)-tag.RowsAffected(), n)
		}
		return nil
	})
}

// QueryAudit implements audit.Store. The filter is applied by the
// database; the query never stops early, so next is set only when more
// than limit entries match.
func (s *Store) QueryAudit(ctx context.Context, f audit.Filter, before string, limit int) ([]audit.Entry, string, error) {
	if err := audit.CheckQuery(before, limit); err != nil {
		return nil, "", err
	}
	for _, v := range []string{f.Tenant, f.Project, f.Actor, f.Action, f.Outcome} {
		if !storable(v) {
			// No stored entry holds it (entries pass Validate), and
			// PostgreSQL text cannot even hold it to compare.
			return []audit.Entry{}, "", nil
		}
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	for _, c := range []struct{ col, v string }{
		{"tenant", f.Tenant}, {"project", f.Project}, {"actor", f.Actor}, {"action", f.Action}, {"outcome", f.Outcome},
	} {
		if c.v != "" {
			add(c.col+" = $%d", c.v)
		}
	}
	if !f.Since.IsZero() {
		add("id >= $%d", audit.MakeID(f.Since, 0))
	}
	if !f.Until.IsZero() {
		add("id <= $%d", audit.MakeID(f.Until, math.MaxUint32))
	}
	if before != "" {
		add("id < $%d", before)
	}
	if f.Tenant != "" {
		where = append(where, "tenant <> ''") // lets the planner use the tenant index
	}
	sql := "SELECT id, tenant, project, actor, role, action, target, outcome, status, request_id, operation_id, detail FROM audit"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	sql += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("query audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Entry, error) {
		var e audit.Entry
		var status int32
		if err := r.Scan(&e.ID, &e.Tenant, &e.Project, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Outcome, &status,
			&e.RequestID, &e.OperationID, &e.Detail); err != nil {
			return e, err
		}
		at, _, err := audit.ParseID(e.ID)
		if err != nil {
			return e, fmt.Errorf("audit entry %q: %w", e.ID, err)
		}
		e.Time, e.Status = at, int(status)
		return e, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("query audit log: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// storable reports whether PostgreSQL text can hold v: valid UTF-8
// without NUL.
func storable(v string) bool { return utf8.ValidString(v) && !strings.ContainsRune(v, 0) }

// PurgeAudit implements audit.Store: batches of at most auditPurgeBatch
// rows, oldest first, each its own transaction.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	bound := audit.MakeID(before, 0)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tag, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE id IN (
			SELECT id FROM audit WHERE id < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`, bound, auditPurgeBatch)
		if err != nil {
			return total, fmt.Errorf("purge audit log: %w", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < auditPurgeBatch {
			return total, nil
		}
	}
}
