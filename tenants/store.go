package tenants

import (
	"context"
	"time"
)

// Store keeps tenants, projects and keys. Implementations must be safe for
// concurrent use and durable before returning.
type Store interface {
	// CreateTenant stores a new tenant; ErrConflict if the name is taken.
	CreateTenant(ctx context.Context, t Tenant) error
	// Tenant returns the named tenant, or ErrNotFound.
	Tenant(ctx context.Context, name string) (Tenant, error)
	// Tenants returns every tenant, by name.
	Tenants(ctx context.Context) ([]Tenant, error)
	// UpdateTenant applies fn to the tenant and its projects in one
	// transaction and stores what fn leaves (projects added, changed or
	// kept; a project cannot be removed). ErrNotFound if there is no such
	// tenant; fn's error aborts and writes nothing.
	UpdateTenant(ctx context.Context, name string, fn func(t *Tenant, projects *[]Project) error) (Tenant, []Project, error)
	// Project returns a tenant's project, or ErrNotFound.
	Project(ctx context.Context, tenant, name string) (Project, error)
	// Projects returns a tenant's projects, by name.
	Projects(ctx context.Context, tenant string) ([]Project, error)
	// ProjectsByIssuer returns the projects whose identity provider has
	// issuer, across tenants.
	ProjectsByIssuer(ctx context.Context, issuer string) ([]Project, error)
	// CreateKey stores a new key; ErrConflict if the id is taken.
	CreateKey(ctx context.Context, k Key) error
	// Key returns the key with id, or ErrNotFound.
	Key(ctx context.Context, id string) (Key, error)
	// Keys returns the keys of tenant (tenant-admin and project keys), or
	// every key when tenant is empty, ordered by creation.
	Keys(ctx context.Context, tenant string) ([]Key, error)
	// UpdateKey applies fn to the key in one transaction; ErrNotFound if
	// there is none, fn's error aborts.
	UpdateKey(ctx context.Context, id string, fn func(*Key) error) (Key, error)
	// TouchKeys records when keys were last used, keeping the later of the
	// stored and the given time; unknown ids are skipped.
	TouchKeys(ctx context.Context, used map[string]time.Time) error
	// Generation returns a number that changes after every committed change
	// to tenants, projects or keys (other than a key's last use), so a reader
	// may keep a snapshot until it changes.
	Generation() uint64
}
