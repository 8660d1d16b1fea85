package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/groupgate/groupgate/internal/records"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/storecopy"
	"github.com/groupgate/groupgate/webhooks"
)

var _ storecopy.Store = (*Store)(nil)

// dataTables are the tables that hold a store's records (storecopy.Dump);
// the others coordinate running replicas (leases, pacing, replicas) or
// count changes (generations).
var dataTables = []string{"tenants", "projects", "keys", "audit", "webhook_notices", "mirror_tenants", "operations",
	"queue", "pending", "idempotency", "groups", "group_versions", "members", "known_users", "deleted_users",
	"deliveries", "owners"}

// notCopied are the tables a copy leaves out: the schema version (set by
// migrate), what coordinates running replicas, and the tenants generation.
var notCopied = []string{"groupgate_schema", "leases", "pacing", "replicas", "generations"}

// checkTables fails when the database has a table this file does not
// know, so that a table added by a migration is not silently left out of
// a copy.
func checkTables(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if !slices.Contains(dataTables, n) && !slices.Contains(notCopied, n) {
			return fmt.Errorf("table %s is neither copied nor known to be left out (pgstore/export.go)", n)
		}
	}
	return nil
}

// Export implements storecopy.Exporter: every record, read in one
// repeatable-read transaction (one snapshot).
func (s *Store) Export(ctx context.Context) (*storecopy.Dump, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("export: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	d := &storecopy.Dump{}
	if err := checkTables(ctx, tx); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := exportTx(ctx, tx, d); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	d.Sort()
	return d, nil
}

// each runs sql and calls fn with every row.
func each(ctx context.Context, tx pgx.Tx, sql string, fn func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func exportTx(ctx context.Context, tx pgx.Tx, d *storecopy.Dump) error {
	steps := []struct {
		table, sql string
		fn         func(pgx.Rows) error
	}{
		{"tenants", "SELECT " + tenantColumns + " FROM tenants", func(r pgx.Rows) error {
			t, err := scanTenant(r)
			d.Tenants = append(d.Tenants, t)
			return err
		}},
		{"projects", "SELECT " + projectColumns + " FROM projects", func(r pgx.Rows) error {
			p, err := scanProject(r)
			d.Projects = append(d.Projects, p)
			return err
		}},
		{"keys", "SELECT " + keyColumns + " FROM keys", func(r pgx.Rows) error {
			k, err := scanKey(r)
			d.Keys = append(d.Keys, k)
			return err
		}},
		{"mirror_tenants", "SELECT tenant, queue_seq, revision, groups_synced_at FROM mirror_tenants", func(r pgx.Rows) error {
			var m storecopy.Mirror
			var seq, rev int64
			var synced *time.Time
			if err := r.Scan(&m.Tenant, &seq, &rev, &synced); err != nil {
				return err
			}
			m.QueueSeq, m.Revision, m.GroupsSyncedAt = uint64(seq), uint64(rev), timeOf(synced)
			if m != (storecopy.Mirror{Tenant: m.Tenant}) {
				d.Mirrors = append(d.Mirrors, m)
			}
			return nil
		}},
		{"operations", "SELECT doc FROM operations", func(r pgx.Rows) error {
			var doc []byte
			if err := r.Scan(&doc); err != nil {
				return err
			}
			op, err := decodeOperation(doc)
			d.Operations = append(d.Operations, op)
			return err
		}},
		{"queue", "SELECT tenant, project, seq, op_id FROM queue", func(r pgx.Rows) error {
			var q storecopy.Queued
			var seq int64
			err := r.Scan(&q.Tenant, &q.Project, &seq, &q.Operation)
			q.Seq = uint64(seq)
			d.Queue = append(d.Queue, q)
			return err
		}},
		{"pending", "SELECT tenant, project, n FROM pending WHERE n > 0", func(r pgx.Rows) error {
			var p storecopy.Pending
			err := r.Scan(&p.Tenant, &p.Project, &p.N)
			d.Pending = append(d.Pending, p)
			return err
		}},
		{"idempotency", "SELECT scope, key, op_id, fingerprint, expires FROM idempotency", func(r pgx.Rows) error {
			var ik storecopy.Idempotency
			err := r.Scan(&ik.Scope, &ik.Key, &ik.Operation, &ik.Fingerprint, &ik.Expires)
			ik.Expires = utc(ik.Expires)
			d.Idempotency = append(d.Idempotency, ik)
			return err
		}},
		{"groups", "SELECT tenant, doc FROM groups", func(r pgx.Rows) error {
			var tenant string
			var doc []byte
			if err := r.Scan(&tenant, &doc); err != nil {
				return err
			}
			g, err := decodeGroup(doc, tenant)
			d.Groups = append(d.Groups, g)
			return err
		}},
		{"group_versions", "SELECT tenant, project, version FROM group_versions", func(r pgx.Rows) error {
			var v storecopy.Version
			var n int64
			err := r.Scan(&v.Tenant, &v.Project, &n)
			v.Version = uint64(n)
			d.Versions = append(d.Versions, v)
			return err
		}},
		{"members", "SELECT tenant, project, group_key, id, email, display_name FROM members", func(r pgx.Rows) error {
			var m storecopy.Member
			err := r.Scan(&m.Group.Tenant, &m.Group.Project, &m.Group.Group, &m.User.ID, &m.User.Email, &m.User.DisplayName)
			d.Members = append(d.Members, m)
			return err
		}},
		{"known_users", "SELECT tenant, kind::text, key, id, email, display_name FROM known_users", func(r pgx.Rows) error {
			var u storecopy.KnownUser
			var kind string
			if err := r.Scan(&u.Tenant, &kind, &u.Key, &u.User.ID, &u.User.Email, &u.User.DisplayName); err != nil {
				return err
			}
			if len(kind) != 1 {
				return fmt.Errorf("known user kind %q", kind)
			}
			u.Kind = kind[0]
			d.KnownUsers = append(d.KnownUsers, u)
			return nil
		}},
		{"deleted_users", "SELECT tenant, key, id, email, deleted_at, expires FROM deleted_users", func(r pgx.Rows) error {
			var m storecopy.Deleted
			var deleted *time.Time
			err := r.Scan(&m.Tenant, &m.Key, &m.User.ID, &m.User.Email, &deleted, &m.User.Expires)
			m.User.DeletedAt, m.User.Expires = timeOf(deleted), utc(m.User.Expires)
			d.Deleted = append(d.Deleted, m)
			return err
		}},
		{"owners", "SELECT tenant, project, group_key, doc FROM owners", func(r pgx.Rows) error {
			var o storecopy.Owners
			var doc []byte
			if err := r.Scan(&o.Group.Tenant, &o.Group.Project, &o.Group.Group, &doc); err != nil {
				return err
			}
			var rec records.Owners
			if err := json.Unmarshal(doc, &rec); err != nil {
				return fmt.Errorf("decode owners of %s: %w", o.Group, err)
			}
			o.Owners = groups.Owners{UpstreamID: rec.UpstreamID, Users: make([]groups.User, 0, len(rec.Owners))}
			for _, u := range rec.Owners {
				o.Owners.Users = append(o.Owners.Users, groups.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName})
			}
			d.Owners = append(d.Owners, o)
			return nil
		}},
		{"deliveries", "SELECT tenant, digest, expires, pending FROM deliveries", func(r pgx.Rows) error {
			var dl storecopy.Delivery
			var digest, pending []byte
			if err := r.Scan(&dl.Tenant, &digest, &dl.Record.Expires, &pending); err != nil {
				return err
			}
			if len(digest) != len(dl.Digest) {
				return fmt.Errorf("delivery digest of %d bytes", len(digest))
			}
			copy(dl.Digest[:], digest)
			dl.Record.Expires = utc(dl.Record.Expires)
			if pending != nil {
				dl.Record.Pending = new(webhooks.Applied)
				if err := json.Unmarshal(pending, dl.Record.Pending); err != nil {
					return fmt.Errorf("decode delivery record of %s: %w", dl.Tenant, err)
				}
			}
			d.Deliveries = append(d.Deliveries, dl)
			return nil
		}},
		{"webhook_notices", "SELECT tenant, kind, text, expires FROM webhook_notices", func(r pgx.Rows) error {
			var n storecopy.Notice
			err := r.Scan(&n.Tenant, &n.Kind, &n.Text, &n.Expires)
			n.Expires = utc(n.Expires)
			d.Notices = append(d.Notices, n)
			return err
		}},
		{"audit", "SELECT id, tenant, project, actor, role, action, target, outcome, status, request_id, operation_id, detail FROM audit", func(r pgx.Rows) error {
			var e audit.Entry
			if err := r.Scan(&e.ID, &e.Tenant, &e.Project, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Outcome, &e.Status,
				&e.RequestID, &e.OperationID, &e.Detail); err != nil {
				return err
			}
			at, _, err := audit.ParseID(e.ID)
			if err != nil {
				return fmt.Errorf("audit entry %q: %w", e.ID, err)
			}
			e.Time = at
			d.Audit = append(d.Audit, e)
			return nil
		}},
	}
	for _, st := range steps {
		if err := each(ctx, tx, st.sql, st.fn); err != nil {
			return fmt.Errorf("%s: %w", st.table, err)
		}
	}
	return nil
}

// importBatch bounds the statements sent in one round trip.
const importBatch = 1000

// Import implements storecopy.Importer: it writes every record of d as it
// is, in one transaction, into a database whose tables hold none
// (storecopy.ErrNotEmpty otherwise). The tenants generation moves once.
func (s *Store) Import(ctx context.Context, d *storecopy.Dump) error {
	err := s.tenantsTx(ctx, func(tx pgx.Tx) error {
		// Two imports at once would both find the tables empty.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(dataTables, ", ")+" IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		var parts []string
		for _, t := range dataTables {
			parts = append(parts, "EXISTS (SELECT 1 FROM "+t+")")
		}
		var full bool
		if err := tx.QueryRow(ctx, "SELECT "+strings.Join(parts, " OR ")).Scan(&full); err != nil {
			return err
		}
		if full {
			return storecopy.ErrNotEmpty
		}
		if err := checkTables(ctx, tx); err != nil {
			return err
		}
		b := &importer{ctx: ctx, tx: tx}
		if err := importRows(b, d); err != nil {
			return err
		}
		if err := b.flush(); err != nil {
			return err
		}
		return bumpTenants(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// importer queues statements and sends them in batches.
type importer struct {
	ctx   context.Context
	tx    pgx.Tx
	batch pgx.Batch
}

func (b *importer) add(sql string, args ...any) error {
	b.batch.Queue(sql, args...)
	if b.batch.Len() >= importBatch {
		return b.flush()
	}
	return nil
}

func (b *importer) flush() error {
	if b.batch.Len() == 0 {
		return nil
	}
	err := b.tx.SendBatch(b.ctx, &b.batch).Close()
	b.batch = pgx.Batch{}
	return err
}

func importRows(b *importer, d *storecopy.Dump) error {
	for _, t := range d.Tenants {
		tp, err := json.Marshal(records.NewTechPass(t.TechPass))
		if err != nil {
			return fmt.Errorf("encode tenant %s: %w", t.Name, err)
		}
		if err := b.add(`INSERT INTO tenants (`+tenantColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.Name, t.Disabled, t.GroupLimit, int64(t.Interval), tp, nullTime(t.CreatedAt), nullTime(t.UpdatedAt)); err != nil {
			return err
		}
	}
	for _, p := range d.Projects {
		var idp []byte
		if p.Identity != nil {
			var err error
			if idp, err = json.Marshal(records.NewIdentity(*p.Identity)); err != nil {
				return fmt.Errorf("encode project %s:%s: %w", p.Tenant, p.Name, err)
			}
		}
		if err := b.add(`INSERT INTO projects (`+projectColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			p.Tenant, p.Name, p.Disabled, p.GroupQuota, idp, nullTime(p.CreatedAt), nullTime(p.UpdatedAt)); err != nil {
			return err
		}
	}
	for _, k := range d.Keys {
		if err := b.add(`INSERT INTO keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, keyArgs(k)...); err != nil {
			return err
		}
	}
	for _, m := range d.Mirrors {
		if err := b.add(`INSERT INTO mirror_tenants (tenant, queue_seq, revision, groups_synced_at) VALUES ($1, $2, $3, $4)`,
			m.Tenant, int64(m.QueueSeq), int64(m.Revision), nullTime(m.GroupsSyncedAt)); err != nil {
			return err
		}
	}
	for _, op := range d.Operations {
		doc, err := json.Marshal(records.NewOperation(op))
		if err != nil {
			return fmt.Errorf("encode operation %s: %w", op.ID, err)
		}
		if err := b.add(`INSERT INTO operations (id, tenant, doc) VALUES ($1, $2, $3)`, op.ID, op.Tenant, doc); err != nil {
			return err
		}
	}
	for _, q := range d.Queue {
		if err := b.add(`INSERT INTO queue (tenant, project, seq, op_id) VALUES ($1, $2, $3, $4)`,
			q.Tenant, q.Project, int64(q.Seq), q.Operation); err != nil {
			return err
		}
	}
	for _, p := range d.Pending {
		if err := b.add(`INSERT INTO pending (tenant, project, n) VALUES ($1, $2, $3)`, p.Tenant, p.Project, p.N); err != nil {
			return err
		}
	}
	for _, ik := range d.Idempotency {
		if err := b.add(`INSERT INTO idempotency (scope, key, op_id, fingerprint, expires) VALUES ($1, $2, $3, $4, $5)`,
			ik.Scope, ik.Key, ik.Operation, ik.Fingerprint, ik.Expires.UTC()); err != nil {
			return err
		}
	}
	for _, g := range d.Groups {
		doc, err := json.Marshal(records.NewGroup(g))
		if err != nil {
			return fmt.Errorf("encode group %s: %w", g.Name, err)
		}
		if err := b.add(`INSERT INTO groups (tenant, project, group_key, doc) VALUES ($1, $2, $3, $4)`,
			g.Name.Tenant, g.Name.Project, g.Name.Key(), doc); err != nil {
			return err
		}
	}
	for _, v := range d.Versions {
		if err := b.add(`INSERT INTO group_versions (tenant, project, version) VALUES ($1, $2, $3)`, v.Tenant, v.Project, int64(v.Version)); err != nil {
			return err
		}
	}
	// The groups each project holds, counted once they are all in (as
	// migration 0003 does).
	if err := b.add(`INSERT INTO group_versions (tenant, project, version, n)
		SELECT tenant, project, 1, count(*) FROM groups GROUP BY tenant, project
		ON CONFLICT (tenant, project) DO UPDATE SET n = EXCLUDED.n`); err != nil {
		return err
	}
	for _, m := range d.Members {
		if err := b.add(`INSERT INTO members (tenant, project, group_key, email_key, id, email, display_name) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			m.Group.Tenant, m.Group.Project, m.Group.Key(), strings.ToLower(m.User.Email), m.User.ID, m.User.Email, m.User.DisplayName); err != nil {
			return err
		}
	}
	for _, u := range d.KnownUsers {
		if err := b.add(`INSERT INTO known_users (tenant, kind, key, id, email, email_key, display_name) VALUES ($1, $2::text::"char", $3, $4, $5, $6, $7)`,
			u.Tenant, string(rune(u.Kind)), u.Key, u.User.ID, u.User.Email, strings.ToLower(u.User.Email), u.User.DisplayName); err != nil {
			return err
		}
	}
	for _, m := range d.Deleted {
		if err := b.add(`INSERT INTO deleted_users (tenant, key, id, email, deleted_at, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
			m.Tenant, m.Key, m.User.ID, m.User.Email, nullTime(m.User.DeletedAt), m.User.Expires.UTC()); err != nil {
			return err
		}
	}
	for _, o := range d.Owners {
		rec := records.Owners{UpstreamID: o.Owners.UpstreamID, Owners: make([]records.User, 0, len(o.Owners.Users))}
		for _, u := range o.Owners.Users {
			rec.Owners = append(rec.Owners, records.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName})
		}
		doc, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode owners of %s: %w", o.Group, err)
		}
		if err := b.add(`INSERT INTO owners (tenant, project, group_key, doc) VALUES ($1, $2, $3, $4)`,
			o.Group.Tenant, o.Group.Project, o.Group.Key(), doc); err != nil {
			return err
		}
	}
	for _, dl := range d.Deliveries {
		var pending []byte
		if dl.Record.Pending != nil {
			var err error
			if pending, err = json.Marshal(dl.Record.Pending); err != nil {
				return fmt.Errorf("encode delivery record of %s: %w", dl.Tenant, err)
			}
		}
		if err := b.add(`INSERT INTO deliveries (tenant, digest, expires, pending) VALUES ($1, $2, $3, $4)`,
			dl.Tenant, dl.Digest[:], dl.Record.Expires.UTC(), pending); err != nil {
			return err
		}
	}
	for _, n := range d.Notices {
		if err := b.add(`INSERT INTO webhook_notices (tenant, kind, text, expires) VALUES ($1, $2, $3, $4)`,
			n.Tenant, n.Kind, n.Text, n.Expires.UTC()); err != nil {
			return err
		}
	}
	for _, e := range d.Audit {
		if err := b.add(`INSERT INTO audit (id, tenant, project, actor, role, action, target, outcome, status, request_id, operation_id, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			e.ID, e.Tenant, e.Project, e.Actor, e.Role, e.Action, e.Target, e.Outcome, e.Status, e.RequestID, e.OperationID, e.Detail); err != nil {
			return err
		}
	}
	return nil
}
