package tenants

import (
	"context"
	"fmt"
)

// Resume returns the principal of the API key with id keyID, checked as
// Authenticate checks a presented key except for its secret: the key must
// still exist and be usable (not revoked, not expired) and its tenant and
// project must be enabled, in the same snapshot requests are checked
// against. It is for a caller that verified the key's secret earlier and
// kept only its id (the web console's session), so that a revocation,
// expiry or disabled tenant ends that caller's access at its next request.
// Like Authenticate, it records a use of the key. An error that does not
// wrap ErrUnauthenticated or ErrDisabled (a store that could not be read)
// says nothing about the key.
func (a *Authenticator) Resume(ctx context.Context, keyID string) (Principal, error) {
	return a.resume(ctx, keyID, true)
}

// Peek is Resume without recording a use of the key: for requests the
// caller's browser makes on its own (a page refreshing itself), which are
// not the key's owner using it.
func (a *Authenticator) Peek(ctx context.Context, keyID string) (Principal, error) {
	return a.resume(ctx, keyID, false)
}

func (a *Authenticator) resume(ctx context.Context, keyID string, touch bool) (Principal, error) {
	k, found, err := a.lookup(ctx, keyID)
	if err != nil {
		return Principal{}, fmt.Errorf("look up key %s: %w", keyID, err)
	}
	if !found {
		return Principal{}, fmt.Errorf("%w: key %s no longer exists", ErrUnauthenticated, keyID)
	}
	p, err := a.check(ctx, k)
	if err == nil && touch {
		a.touch(k, a.cfg.Now())
	}
	return p, err
}

// principalOf returns the principal of k, a key whose secret was verified,
// if k is usable now and its tenant and project are enabled, and records
// the use.
func (a *Authenticator) principalOf(ctx context.Context, k Key) (Principal, error) {
	p, err := a.check(ctx, k)
	if err == nil {
		a.touch(k, a.cfg.Now())
	}
	return p, err
}

// check returns the principal of k if k is usable now and its tenant and
// project are enabled.
func (a *Authenticator) check(ctx context.Context, k Key) (Principal, error) {
	if !k.Usable(a.cfg.Now()) {
		return Principal{}, fmt.Errorf("%w: key %s is revoked or expired", ErrUnauthenticated, k.ID)
	}
	if err := a.enabled(ctx, k.Tenant, k.Project); err != nil {
		return Principal{}, err
	}
	p := Principal{Role: k.Role, KeyID: k.ID, Tenant: k.Tenant, Project: k.Project, Scopes: k.Scopes}
	if p.Role == RoleProject && len(p.Scopes) == 0 {
		p.Scopes = ProjectScopes()
	}
	return p, nil
}
