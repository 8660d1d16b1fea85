package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/internal/records"
	"github.com/groupgate/groupgate/tenants"
)

// Tenants, projects and keys (tenants.Store).
//
// A name or id PostgreSQL text cannot hold (NUL, invalid UTF-8) names
// nothing stored: lookups answer ErrNotFound or nothing, as for any
// unknown name.
//
// Concurrency: every write runs in a read-committed transaction that locks
// the rows it changes (SELECT ... FOR UPDATE, or the unique index for
// inserts) and, last, the 'tenants' row of generations, which it
// increments. Updates of one tenant (and its projects) or one key are so
// serialized across replicas, and the generation moves once per committed
// change. The generation row is always the last lock a transaction takes,
// so writers cannot deadlock on it. TouchKeys locks key rows in id order
// and writes only last_used_at, so it never undoes a concurrent update.

var _ tenants.Store = (*Store)(nil)

// errRekeyed reports an update function that changed what records are
// stored under; the update writes nothing.
var errRekeyed = tenants.ErrRekeyed

// bumpTenants moves the tenants generation and signals the change on
// ChannelTenants (delivered at commit); call it last in a write.
func bumpTenants(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "UPDATE generations SET value = value + 1 WHERE name = 'tenants'"); err != nil {
		return err
	}
	return notify(ctx, tx, ChannelTenants, "")
}

// tenantsTx is inTx for a write of tenants, projects or keys (which
// calls bumpTenants): once it has ended, committed or not, Generation
// reads the database again, so this replica sees its own writes at once.
func (s *Store) tenantsTx(ctx context.Context, fn func(pgx.Tx) error) error {
	defer s.generation.invalidate()
	return s.inTx(ctx, fn)
}

// Generation implements tenants.Store: a counter row that every committed
// change of tenants, projects and keys increments in its own transaction,
// so every replica reads the writes of all. With Config.GenerationTTL set,
// it answers from memory what it read less than that long ago (see
// generationCache).
func (s *Store) Generation(ctx context.Context) (uint64, error) {
	return s.generation.get(ctx, s.readGeneration)
}

// readGeneration reads the tenants generation from the database.
func (s *Store) readGeneration(ctx context.Context) (uint64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT value FROM generations WHERE name = 'tenants'").Scan(&v); err != nil {
		return 0, fmt.Errorf("tenants generation: %w", err)
	}
	return uint64(v), nil
}

// CreateTenant implements tenants.Store.
func (s *Store) CreateTenant(ctx context.Context, t tenants.Tenant) error {
	tp, err := json.Marshal(records.NewTechPass(t.TechPass))
	if err != nil {
		return fmt.Errorf("encode tenant %s: %w", t.Name, err)
	}
	return s.tenantsTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tenants (name, disabled, group_limit, interval_ns, techpass, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING`,
			t.Name, t.Disabled, t.GroupLimit, int64(t.Interval), tp, nullTime(t.CreatedAt), nullTime(t.UpdatedAt))
		if err != nil {
			return fmt.Errorf("create tenant %s: %w", t.Name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("tenant %s: %w", t.Name, tenants.ErrConflict)
		}
		return bumpTenants(ctx, tx)
	})
}

const tenantColumns = "name, disabled, group_limit, interval_ns, techpass, created_at, updated_at"

func scanTenant(row pgx.Row) (tenants.Tenant, error) {
	var t tenants.Tenant
	var interval int64
	var tp []byte
	var created, updated *time.Time
	if err := row.Scan(&t.Name, &t.Disabled, &t.GroupLimit, &interval, &tp, &created, &updated); err != nil {
		return t, err
	}
	var r records.TechPass
	if err := json.Unmarshal(tp, &r); err != nil {
		return t, fmt.Errorf("decode tenant %s: %w", t.Name, err)
	}
	t.Interval, t.TechPass, t.CreatedAt, t.UpdatedAt = time.Duration(interval), r.ToTechPass(), timeOf(created), timeOf(updated)
	return t, nil
}

// Tenant implements tenants.Store.
func (s *Store) Tenant(ctx context.Context, name string) (tenants.Tenant, error) {
	return getTenant(ctx, s.pool, name, "")
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getTenant reads a tenant; lock is appended to the query ("FOR UPDATE").
func getTenant(ctx context.Context, q querier, name, lock string) (tenants.Tenant, error) {
	if !storable(name) {
		return tenants.Tenant{}, fmt.Errorf("tenant %q: %w", name, tenants.ErrNotFound)
	}
	t, err := scanTenant(q.QueryRow(ctx, "SELECT "+tenantColumns+" FROM tenants WHERE name = $1 "+lock, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return tenants.Tenant{}, fmt.Errorf("tenant %s: %w", name, tenants.ErrNotFound)
	}
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("read tenant %s: %w", name, err)
	}
	return t, nil
}

// Tenants implements tenants.Store.
func (s *Store) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+tenantColumns+" FROM tenants ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenants.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// UpdateTenant implements tenants.Store. The tenant's row is locked (FOR
// UPDATE) before its projects are read, so fn runs once, on the latest
// committed state, while other writers of the tenant wait.
func (s *Store) UpdateTenant(ctx context.Context, name string, fn func(*tenants.Tenant, *[]tenants.Project) error) (tenants.Tenant, []tenants.Project, error) {
	var t tenants.Tenant
	var projects []tenants.Project
	err := s.tenantsTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = getTenant(ctx, tx, name, "FOR UPDATE"); err != nil {
			return err
		}
		if projects, err = getProjects(ctx, tx, name); err != nil {
			return err
		}
		if err := tenants.ApplyUpdate(name, &t, &projects, fn); err != nil {
			return err
		}
		tp, err := json.Marshal(records.NewTechPass(t.TechPass))
		if err != nil {
			return fmt.Errorf("encode tenant %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET disabled = $2, group_limit = $3, interval_ns = $4, techpass = $5,
			created_at = $6, updated_at = $7 WHERE name = $1`,
			name, t.Disabled, t.GroupLimit, int64(t.Interval), tp, nullTime(t.CreatedAt), nullTime(t.UpdatedAt)); err != nil {
			return fmt.Errorf("update tenant %s: %w", name, err)
		}
		for _, p := range projects {
			var idp []byte
			if p.Identity != nil {
				if idp, err = json.Marshal(records.NewIdentity(*p.Identity)); err != nil {
					return fmt.Errorf("encode project %s:%s: %w", name, p.Name, err)
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO projects (tenant, name, disabled, group_quota, identity, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (tenant, name) DO UPDATE SET disabled = excluded.disabled, group_quota = excluded.group_quota,
					identity = excluded.identity, created_at = excluded.created_at, updated_at = excluded.updated_at`,
				name, p.Name, p.Disabled, p.GroupQuota, idp, nullTime(p.CreatedAt), nullTime(p.UpdatedAt)); err != nil {
				return fmt.Errorf("write project %s:%s: %w", name, p.Name, err)
			}
		}
		return bumpTenants(ctx, tx)
	})
	if err != nil {
		return tenants.Tenant{}, nil, err
	}
	return t, projects, nil
}

const projectColumns = "tenant, name, disabled, group_quota, identity, created_at, updated_at"

func scanProject(row pgx.Row) (tenants.Project, error) {
	var p tenants.Project
	var idp []byte
	var created, updated *time.Time
	if err := row.Scan(&p.Tenant, &p.Name, &p.Disabled, &p.GroupQuota, &idp, &created, &updated); err != nil {
		return p, err
	}
	if idp != nil {
		var r records.Identity
		if err := json.Unmarshal(idp, &r); err != nil {
			return p, fmt.Errorf("decode project %s:%s: %w", p.Tenant, p.Name, err)
		}
		ip := r.ToIdentity()
		p.Identity = &ip
	}
	p.CreatedAt, p.UpdatedAt = timeOf(created), timeOf(updated)
	return p, nil
}

func collectProjects(rows pgx.Rows, err error) ([]tenants.Project, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenants.Project, error) { return scanProject(r) })
}

func getProjects(ctx context.Context, q querier, tenant string) ([]tenants.Project, error) {
	if !storable(tenant) {
		return []tenants.Project{}, nil
	}
	out, err := collectProjects(q.Query(ctx, "SELECT "+projectColumns+" FROM projects WHERE tenant = $1 ORDER BY name", tenant))
	if err != nil {
		return nil, fmt.Errorf("projects of %s: %w", tenant, err)
	}
	return out, nil
}

// Project implements tenants.Store.
func (s *Store) Project(ctx context.Context, tenant, name string) (tenants.Project, error) {
	if !storable(tenant) || !storable(name) {
		return tenants.Project{}, fmt.Errorf("project %q:%q: %w", tenant, name, tenants.ErrNotFound)
	}
	p, err := scanProject(s.pool.QueryRow(ctx, "SELECT "+projectColumns+" FROM projects WHERE tenant = $1 AND name = $2", tenant, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return tenants.Project{}, fmt.Errorf("project %s:%s: %w", tenant, name, tenants.ErrNotFound)
	}
	if err != nil {
		return tenants.Project{}, fmt.Errorf("read project %s:%s: %w", tenant, name, err)
	}
	return p, nil
}

// Projects implements tenants.Store.
func (s *Store) Projects(ctx context.Context, tenant string) ([]tenants.Project, error) {
	return getProjects(ctx, s.pool, tenant)
}

// ProjectsByIssuer implements tenants.Store, by an index on the issuer.
func (s *Store) ProjectsByIssuer(ctx context.Context, issuer string) ([]tenants.Project, error) {
	if !storable(issuer) {
		return []tenants.Project{}, nil
	}
	out, err := collectProjects(s.pool.Query(ctx, "SELECT "+projectColumns+" FROM projects WHERE issuer = $1 ORDER BY tenant, name", issuer))
	if err != nil {
		return nil, fmt.Errorf("projects by issuer: %w", err)
	}
	return out, nil
}

// CreateKey implements tenants.Store.
func (s *Store) CreateKey(ctx context.Context, k tenants.Key) error {
	return s.tenantsTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO keys (id, name, role, tenant, project, scopes, hash, created_by, created_at, expires_at, revoked_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`, keyArgs(k)...)
		if err != nil {
			return fmt.Errorf("create key %s: %w", k.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("key %s: %w", k.ID, tenants.ErrConflict)
		}
		return bumpTenants(ctx, tx)
	})
}

func keyArgs(k tenants.Key) []any {
	return []any{k.ID, k.Name, string(k.Role), k.Tenant, k.Project, records.ScopeStrings(k.Scopes), k.Hash[:], k.CreatedBy,
		nullTime(k.CreatedAt), nullTime(k.ExpiresAt), nullTime(k.RevokedAt), nullTime(k.LastUsedAt)}
}

const keyColumns = "id, name, role, tenant, project, scopes, hash, created_by, created_at, expires_at, revoked_at, last_used_at"

func scanKey(row pgx.Row) (tenants.Key, error) {
	var k tenants.Key
	var role string
	var sc []string
	var hash []byte
	var created, expires, revoked, used *time.Time
	if err := row.Scan(&k.ID, &k.Name, &role, &k.Tenant, &k.Project, &sc, &hash, &k.CreatedBy, &created, &expires, &revoked, &used); err != nil {
		return k, err
	}
	if len(hash) != len(k.Hash) {
		return k, fmt.Errorf("key %s: stored hash has %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	k.Role, k.Scopes = tenants.Role(role), records.Scopes(sc)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = timeOf(created), timeOf(expires), timeOf(revoked), timeOf(used)
	return k, nil
}

func getKey(ctx context.Context, q querier, id, lock string) (tenants.Key, error) {
	if !storable(id) {
		return tenants.Key{}, fmt.Errorf("key %q: %w", id, tenants.ErrNotFound)
	}
	k, err := scanKey(q.QueryRow(ctx, "SELECT "+keyColumns+" FROM keys WHERE id = $1 "+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return tenants.Key{}, fmt.Errorf("key %s: %w", id, tenants.ErrNotFound)
	}
	if err != nil {
		return tenants.Key{}, fmt.Errorf("read key %s: %w", id, err)
	}
	return k, nil
}

// Key implements tenants.Store.
func (s *Store) Key(ctx context.Context, id string) (tenants.Key, error) {
	return getKey(ctx, s.pool, id, "")
}

// Keys implements tenants.Store.
func (s *Store) Keys(ctx context.Context, tenant string) ([]tenants.Key, error) {
	if !storable(tenant) {
		return []tenants.Key{}, nil
	}
	var rows pgx.Rows
	var err error
	if tenant == "" {
		rows, err = s.pool.Query(ctx, "SELECT "+keyColumns+" FROM keys ORDER BY created_at, id")
	} else {
		rows, err = s.pool.Query(ctx, "SELECT "+keyColumns+" FROM keys WHERE tenant = $1 ORDER BY created_at, id", tenant)
	}
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenants.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// UpdateKey implements tenants.Store; the key's row is locked (FOR UPDATE)
// while fn runs, so fn runs once, on the latest committed key.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*tenants.Key) error) (tenants.Key, error) {
	var k tenants.Key
	err := s.tenantsTx(ctx, func(tx pgx.Tx) error {
		var err error
		if k, err = getKey(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		if err := fn(&k); err != nil {
			return err
		}
		if k.ID != id {
			return fmt.Errorf("update key %s: id changed to %q: %w", id, k.ID, errRekeyed)
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET name = $2, role = $3, tenant = $4, project = $5, scopes = $6, hash = $7,
			created_by = $8, created_at = $9, expires_at = $10, revoked_at = $11, last_used_at = $12 WHERE id = $1`, keyArgs(k)...); err != nil {
			return fmt.Errorf("update key %s: %w", id, err)
		}
		return bumpTenants(ctx, tx)
	})
	if err != nil {
		return tenants.Key{}, err
	}
	return k, nil
}

// TouchKeys implements tenants.Store: one statement that moves only
// last_used_at forward, locking the rows in id order.
func (s *Store) TouchKeys(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := make([]string, 0, len(used))
	for id := range used {
		if storable(id) { // else unknown: no stored id holds it
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ats := make([]time.Time, len(ids))
	for i, id := range ids {
		ats[i] = used[id].UTC()
	}
	_, err := s.pool.Exec(ctx, `WITH u AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)),
		locked AS (SELECT k.id FROM keys k JOIN u ON u.id = k.id ORDER BY k.id FOR UPDATE OF k)
		UPDATE keys k SET last_used_at = u.at FROM u, locked
		WHERE k.id = u.id AND locked.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`, ids, ats)
	if err != nil {
		return fmt.Errorf("touch keys: %w", err)
	}
	return nil
}
