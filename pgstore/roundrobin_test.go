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

// roundRobin spreads calls over several stores (pools) on one database in
// turn, as a load balancer spreads requests over replicas: a suite run
// through it sees each write made by one replica and read by another, and
// its concurrent writers on different pools.
type roundRobin struct {
	stores []*pgstore.Store
	n      atomic.Uint64
}

func newRoundRobin(t *testing.T, n int) *roundRobin {
	dsn := pgtest.DSN(t)
	r := &roundRobin{}
	for range n {
		r.stores = append(r.stores, mustOpenDSN(t, dsn))
	}
	return r
}

func (r *roundRobin) next() *pgstore.Store { return r.stores[r.n.Add(1)%uint64(len(r.stores))] }

func (r *roundRobin) CreateTenant(ctx context.Context, t tenants.Tenant) error {
	return r.next().CreateTenant(ctx, t)
}
func (r *roundRobin) Tenant(ctx context.Context, name string) (tenants.Tenant, error) {
	return r.next().Tenant(ctx, name)
}
func (r *roundRobin) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	return r.next().Tenants(ctx)
}
func (r *roundRobin) UpdateTenant(ctx context.Context, name string, fn func(*tenants.Tenant, *[]tenants.Project) error) (tenants.Tenant, []tenants.Project, error) {
	return r.next().UpdateTenant(ctx, name, fn)
}
func (r *roundRobin) Project(ctx context.Context, tenant, name string) (tenants.Project, error) {
	return r.next().Project(ctx, tenant, name)
}
func (r *roundRobin) Projects(ctx context.Context, tenant string) ([]tenants.Project, error) {
	return r.next().Projects(ctx, tenant)
}
func (r *roundRobin) ProjectsByIssuer(ctx context.Context, issuer string) ([]tenants.Project, error) {
	return r.next().ProjectsByIssuer(ctx, issuer)
}
func (r *roundRobin) CreateKey(ctx context.Context, k tenants.Key) error {
	return r.next().CreateKey(ctx, k)
}
func (r *roundRobin) Key(ctx context.Context, id string) (tenants.Key, error) {
	return r.next().Key(ctx, id)
}
func (r *roundRobin) Keys(ctx context.Context, tenant string) ([]tenants.Key, error) {
	return r.next().Keys(ctx, tenant)
}
func (r *roundRobin) UpdateKey(ctx context.Context, id string, fn func(*tenants.Key) error) (tenants.Key, error) {
	return r.next().UpdateKey(ctx, id, fn)
}
func (r *roundRobin) TouchKeys(ctx context.Context, used map[string]time.Time) error {
	return r.next().TouchKeys(ctx, used)
}
func (r *roundRobin) Generation(ctx context.Context) (uint64, error) {
	return r.next().Generation(ctx)
}
func (r *roundRobin) AppendAudit(ctx context.Context, entries ...audit.Entry) error {
	return r.next().AppendAudit(ctx, entries...)
}
func (r *roundRobin) QueryAudit(ctx context.Context, f audit.Filter, before string, limit int) ([]audit.Entry, string, error) {
	return r.next().QueryAudit(ctx, f, before, limit)
}
func (r *roundRobin) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	return r.next().PurgeAudit(ctx, before)
}

// TestTenantsStoreAcrossReplicas: the tenants suite, every call going to
// one of two roundRobin in turn: the generation counts every replica's
// writes, and concurrent writers on two pools lose nothing.
func TestTenantsStoreAcrossReplicas(t *testing.T) {
	tenantstest.RunStoreTests(t, func(t *testing.T) tenants.Store { return newRoundRobin(t, 2) })
	tenantstest.RunConcurrencyTests(t, func(t *testing.T) tenants.Store { return newRoundRobin(t, 2) })
}

// TestAuditStoreAcrossReplicas: the audit suite's concurrency cases over
// two roundRobin (its sequential cases hold nothing a second pool changes).
func TestAuditStoreAcrossReplicas(t *testing.T) {
	audittest.RunConcurrencyTests(t, func(t *testing.T) audit.Store { return newRoundRobin(t, 2) })
}
