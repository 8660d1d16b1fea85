package tenants

import (
	"context"
	"time"
)

// Store keeps tenants, projects and keys. It keeps data; the rules (valid
// definitions, quotas, who may issue what) are Admin's. Package tenantstest
// checks this contract against any backend.
//
// Implementations must be safe for concurrent use. A write is durable and
// seen by every later read before it returns. Values are copied in and out:
// changing a value after passing it, or one returned (its slices and
// pointers included), never changes what is stored. Times keep at least
// microseconds (compare them with Equal); a nil and an empty slice are the
// same.
type Store interface {
	// CreateTenant stores a new tenant; ErrConflict if the name is taken
	// (of concurrent creates of one name, exactly one succeeds).
	CreateTenant(ctx context.Context, t Tenant) error
	// Tenant returns the named tenant, or ErrNotFound.
	Tenant(ctx context.Context, name string) (Tenant, error)
	// Tenants returns every tenant, by name.
	Tenants(ctx context.Context) ([]Tenant, error)
	// UpdateTenant applies fn to the tenant and its projects (by name) in
	// one transaction and stores what fn leaves: the tenant, and every
	// project in the slice, added or changed. It returns what it stored,
	// the projects in the order fn left them. Updates of one tenant are
	// serialized, so none is lost; fn may be called more than once, each
	// time on the stored state, so it must not depend on earlier calls.
	//
	// ErrNotFound if there is no such tenant (fn is not called). fn's
	// error aborts: nothing is written and the error is returned (wrapped).
	// Names are the store's keys and a project cannot be removed: if fn
	// renames the tenant, drops a project from the slice, lists a name
	// twice or gives a project another tenant, nothing is written and the
	// error says so (a programming error, none of this package's).
	UpdateTenant(ctx context.Context, name string, fn func(t *Tenant, projects *[]Project) error) (Tenant, []Project, error)
	// Project returns a tenant's project, or ErrNotFound (also when there
	// is no such tenant).
	Project(ctx context.Context, tenant, name string) (Project, error)
	// Projects returns a tenant's projects, by name; none for an unknown
	// tenant.
	Projects(ctx context.Context, tenant string) ([]Project, error)
	// ProjectsByIssuer returns the projects, across tenants, whose identity
	// provider's issuer is exactly issuer, by tenant then name.
	ProjectsByIssuer(ctx context.Context, issuer string) ([]Project, error)
	// CreateKey stores a new key; ErrConflict if the id is taken (of
	// concurrent creates of one id, exactly one succeeds).
	CreateKey(ctx context.Context, k Key) error
	// Key returns the key with id, or ErrNotFound.
	Key(ctx context.Context, id string) (Key, error)
	// Keys returns the keys of tenant (tenant-admin and project keys), or
	// every key when tenant is empty, ordered by creation (CreatedAt, then
	// ID).
	Keys(ctx context.Context, tenant string) ([]Key, error)
	// UpdateKey applies fn to the key in one transaction and returns what
	// it stored. Updates of one key are serialized, so none is lost; fn may
	// be called more than once, each time on the stored key. ErrNotFound if
	// there is none (fn is not called); fn's error aborts and writes
	// nothing. Changing the key's ID writes nothing and returns an error.
	UpdateKey(ctx context.Context, id string, fn func(*Key) error) (Key, error)
	// TouchKeys records when keys were last used, keeping the later of the
	// stored and the given time; unknown ids are skipped. It changes
	// nothing else, even racing UpdateKey (a revocation is never undone),
	// and does not move Generation.
	TouchKeys(ctx context.Context, used map[string]time.Time) error
	// Generation returns a number that increases after every successful
	// CreateTenant, UpdateTenant, CreateKey and UpdateKey, before that call
	// returns, so a reader may keep what it derived from the store (the
	// Authenticator's snapshot) until the number changes. It never
	// decreases; reads, TouchKeys and refused or aborted writes (ErrConflict,
	// ErrNotFound, fn's error) leave it as it is. A backend shared by several
	// processes must count the writes of all of them. An error means the
	// store cannot tell: the reader's copy may be out of date.
	Generation(ctx context.Context) (uint64, error)
}
