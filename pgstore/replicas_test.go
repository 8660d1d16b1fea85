package pgstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/audit/audittest"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tenants/tenantstest"
)

// replicas spreads calls over several stores (pools) on one database in
// turn, as a load balancer spreads requests over replicas: a suite run
// through it sees each write made by one replica and read by another, and
// its concurrent writers on different pools.
type replicas struct {
	stores []*pgstore.Store
	n      atomic.Uint64
}

func newReplicas(t *testing.T, n int) *replicas {
	dsn := pgtest.DSN(t)
	r := &replicas{}
	for range n {
		r.stores = append(r.stores, mustOpenDSN(t, dsn))
	}
	return r
}

func (r *replicas) next() *pgstore.Store { return r.stores[r.n.Add(1)%uint64(len(r.stores))] }

func (r *replicas) CreateTenant(ctx context.Context, t tenants.Tenant) error {
	return r.next().CreateTenant(ctx, t)
}
func (r *replicas) Tenant(ctx context.Context, name string) (tenants.Tenant, error) {
	return r.next().Tenant(ctx, name)
}
func (r *replicas) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	return r.next().Tenants(ctx)
}
func (r *replicas) UpdateTenant(ctx context.Context, name string, fn func(*tenants.Tenant, *[]tenants.Project) error) (tenants.Tenant, []tenants.Project, error) {
	return r.next().UpdateTenant(ctx, name, fn)
}
func (r *replicas) Project(ctx context.Context, tenant, name string) (tenants.Project, error) {
	return r.next().Project(ctx, tenant, name)
}
func (r *replicas) Projects(ctx context.Context, tenant string) ([]tenants.Project, error) {
	return r.next().Projects(ctx, tenant)
}
func (r *replicas) ProjectsByIssuer(ctx context.Context, issuer string) ([]tenants.Project, error) {
	return r.next().ProjectsByIssuer(ctx, issuer)
}
func (r *replicas) CreateKey(ctx context.Context, k tenants.Key) error {
	return r.next().CreateKey(ctx, k)
}
func (r *replicas) Key(ctx context.Context, id string) (tenants.Key, error) {
	return r.next().Key(ctx, id)
}
func (r *replicas) Keys(ctx context.Context, tenant string) ([]tenants.Key, error) {
	return r.next().Keys(ctx, tenant)
}
func (r *replicas) UpdateKey(ctx context.Context, id string, fn func(*tenants.Key) error) (tenants.Key, error) {
	return r.next().UpdateKey(ctx, id, fn)
}
func (r *replicas) TouchKeys(ctx context.Context, used map[string]time.Time) error {
	return r.next().TouchKeys(ctx, used)
}
func (r *replicas) Generation(ctx context.Context) (uint64, error) {
	return r.next().Generation(ctx)
}
func (r *replicas) AppendAudit(ctx context.Context, entries ...audit.Entry) error {
	return r.next().AppendAudit(ctx, entries...)
}
func (r *replicas) QueryAudit(ctx context.Context, f audit.Filter, before string, limit int) ([]audit.Entry, string, error) {
	return r.next().QueryAudit(ctx, f, before, limit)
}
func (r *replicas) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	return r.next().PurgeAudit(ctx, before)
}

// TestTenantsStoreAcrossReplicas: the tenants suite, every call going to
// one of two replicas in turn: the generation counts every replica's
// writes, and concurrent writers on two pools lose nothing.
func TestTenantsStoreAcrossReplicas(t *testing.T) {
	tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return newReplicas(t, 2) })
	tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store { return newReplicas(t, 2) })
}

// TestAuditStoreAcrossReplicas: the audit suite's concurrency cases over
// two replicas (its sequential cases hold nothing a second pool changes).
func TestAuditStoreAcrossReplicas(t *testing.T) {
	audittest.RunConcurrencyTests(t, func(t *testing.T) audit.Store { return newReplicas(t, 2) })
}
