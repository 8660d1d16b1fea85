package tenants_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/tenants/tenantstest"
)

// memStore is tenants.Store in memory: the second backend the conformance
// suite runs against, so that the suite is seen to assume nothing of bbolt
// (no serialization making copies for free, no ordered keys).
type memStore struct {
	mu       sync.Mutex
	gen      uint64
	tenants  map[string]tenants.Tenant
	projects map[string]map[string]tenants.Project
	keys     map[string]tenants.Key
}

var _ tenants.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{tenants: map[string]tenants.Tenant{}, projects: map[string]map[string]tenants.Project{}, keys: map[string]tenants.Key{}}
}

func TestMemStore(t *testing.T) {
	tenantstest.RunStoreTests(t, func(*testing.T) tenants.Store { return newMemStore() })
}

func TestMemStoreConcurrency(t *testing.T) {
	tenantstest.RunConcurrencyTests(t, func(*testing.T) tenants.Store { return newMemStore() })
}

func copyCred(c tenants.Credential) tenants.Credential { c.Sealed = slices.Clone(c.Sealed); return c }

func copyTenant(t tenants.Tenant) tenants.Tenant {
	tp := &t.TechPass
	tp.ClientSecret, tp.APIKey = copyCred(tp.ClientSecret), copyCred(tp.APIKey)
	tp.WebhookSecret, tp.PreviousWebhookSecret = copyCred(tp.WebhookSecret), copyCred(tp.PreviousWebhookSecret)
	return t
}

func copyProject(p tenants.Project) tenants.Project {
	if p.Identity != nil {
		idp := *p.Identity
		idp.PublicKeys, idp.Algorithms, idp.Scopes = slices.Clone(idp.PublicKeys), slices.Clone(idp.Algorithms), slices.Clone(idp.Scopes)
		p.Identity = &idp
	}
	return p
}

func copyKey(k tenants.Key) tenants.Key { k.Scopes = slices.Clone(k.Scopes); return k }

func byName(a, b tenants.Project) int { return cmp.Compare(a.Name, b.Name) }

// create stores a copy of v under id in records unless id is taken there:
// what CreateTenant and CreateKey share.
func create[V any](m *memStore, records map[string]V, what, id string, v V, copyOf func(V) V) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := records[id]; ok {
		return fmt.Errorf("%s %s: %w", what, id, tenants.ErrConflict)
	}
	records[id] = copyOf(v)
	m.gen++
	return nil
}

// get returns a copy of the record under id: what Tenant and Key share.
func get[V any](m *memStore, records map[string]V, what, id string, copyOf func(V) V) (V, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := records[id]
	if !ok {
		var zero V
		return zero, fmt.Errorf("%s %s: %w", what, id, tenants.ErrNotFound)
	}
	return copyOf(v), nil
}

func (m *memStore) CreateTenant(_ context.Context, t tenants.Tenant) error {
	return create(m, m.tenants, "tenant", t.Name, t, copyTenant)
}

func (m *memStore) Tenant(_ context.Context, name string) (tenants.Tenant, error) {
	return get(m, m.tenants, "tenant", name, copyTenant)
}

func (m *memStore) Tenants(context.Context) ([]tenants.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tenants.Tenant
	for _, t := range m.tenants {
		out = append(out, copyTenant(t))
	}
	slices.SortFunc(out, func(a, b tenants.Tenant) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memStore) projectsOf(tenant string) []tenants.Project {
	var out []tenants.Project
	for _, p := range m.projects[tenant] {
		out = append(out, copyProject(p))
	}
	slices.SortFunc(out, byName)
	return out
}

func (m *memStore) UpdateTenant(_ context.Context, name string, fn func(*tenants.Tenant, *[]tenants.Project) error) (tenants.Tenant, []tenants.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, ok := m.tenants[name]
	if !ok {
		return tenants.Tenant{}, nil, fmt.Errorf("tenant %s: %w", name, tenants.ErrNotFound)
	}
	t, projects := copyTenant(stored), m.projectsOf(name)
	if err := tenants.ApplyUpdate(name, &t, &projects, fn); err != nil {
		return tenants.Tenant{}, nil, err
	}
	next := map[string]tenants.Project{}
	for _, p := range projects {
		next[p.Name] = copyProject(p)
	}
	m.tenants[name], m.projects[name] = copyTenant(t), next
	m.gen++
	out := make([]tenants.Project, len(projects))
	for i, p := range projects {
		out[i] = copyProject(p)
	}
	return copyTenant(t), out, nil
}

func (m *memStore) Project(_ context.Context, tenant, name string) (tenants.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.projects[tenant][name]
	if !ok {
		return tenants.Project{}, fmt.Errorf("project %s:%s: %w", tenant, name, tenants.ErrNotFound)
	}
	return copyProject(p), nil
}

func (m *memStore) Projects(_ context.Context, tenant string) ([]tenants.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.projectsOf(tenant), nil
}

func (m *memStore) ProjectsByIssuer(_ context.Context, issuer string) ([]tenants.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tenants.Project
	for _, ps := range m.projects {
		for _, p := range ps {
			if p.Identity != nil && p.Identity.Issuer == issuer {
				out = append(out, copyProject(p))
			}
		}
	}
	slices.SortFunc(out, func(a, b tenants.Project) int { return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), byName(a, b)) })
	return out, nil
}

func (m *memStore) CreateKey(_ context.Context, k tenants.Key) error {
	return create(m, m.keys, "key", k.ID, k, copyKey)
}

func (m *memStore) Key(_ context.Context, id string) (tenants.Key, error) {
	return get(m, m.keys, "key", id, copyKey)
}

func (m *memStore) Keys(_ context.Context, tenant string) ([]tenants.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tenants.Key
	for _, k := range m.keys {
		if tenant == "" || k.Tenant == tenant {
			out = append(out, copyKey(k))
		}
	}
	slices.SortFunc(out, func(a, b tenants.Key) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

func (m *memStore) UpdateKey(_ context.Context, id string, fn func(*tenants.Key) error) (tenants.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, ok := m.keys[id]
	if !ok {
		return tenants.Key{}, fmt.Errorf("key %s: %w", id, tenants.ErrNotFound)
	}
	k := copyKey(stored)
	if err := fn(&k); err != nil {
		return tenants.Key{}, err
	}
	if k.ID != id {
		return tenants.Key{}, errors.New("the key's id changed")
	}
	m.keys[id] = copyKey(k)
	m.gen++
	return copyKey(k), nil
}

func (m *memStore) TouchKeys(_ context.Context, used map[string]time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, at := range used {
		if k, ok := m.keys[id]; ok && at.After(k.LastUsedAt) {
			k.LastUsedAt = at
			m.keys[id] = k
		}
	}
	return nil
}

func (m *memStore) Generation(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen, nil
}
