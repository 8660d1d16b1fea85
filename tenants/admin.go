package tenants

import (
	"context"
	"errors"
	"fmt"
	"github.com/groupgate/groupgate/names"
	"strings"
	"time"
)

// Sealer encrypts credential values written through the API (see package
// secretbox).
type Sealer interface {
	Seal(plaintext []byte, where string) []byte
}

// CredentialInput is how a credential is given: by reference (File or Env)
// or, once, by Value, which is sealed and never returned. Exactly one is set.
type CredentialInput struct {
	File  string
	Env   string
	Value string
}

// Admin manages tenants, projects and keys, keeping their invariants: valid
// definitions, project quotas within the tenant's group limit, keys issued
// only in their owner's reach. Callers check who may call each method (see
// authz.go). It is safe for concurrent use.
type Admin struct {
	store Store
	box   Sealer
	now   func() time.Time
	// checkIdentity validates an identity provider beyond its shape (keys,
	// algorithms); optional.
	checkIdentity func(IdentityProvider) error
	// checkUpstream checks that an enabled tenant's TechPass credentials
	// can be read (a file or variable given by reference exists and holds
	// a value); optional.
	checkUpstream func(Tenant) error
	// groupLimit and interval are given to tenants created without them.
	groupLimit int
	interval   time.Duration
}

// DefaultsFrom makes tenants created without a group limit or interval get
// these (the service's configured defaults) instead of DefaultGroupLimit and
// DefaultInterval. Zero leaves a default as it is.
func (a *Admin) DefaultsFrom(groupLimit int, interval time.Duration) {
	if groupLimit > 0 {
		a.groupLimit = groupLimit
	}
	if interval > 0 {
		a.interval = interval
	}
}

// CheckIdentityWith makes the admin validate identity providers with check
// (for example, parsing their keys) before registering them.
func (a *Admin) CheckIdentityWith(check func(IdentityProvider) error) { a.checkIdentity = check }

// CheckUpstreamWith makes the admin refuse, with ErrInvalid and before
// anything is stored, a tenant change that leaves an enabled tenant with
// TechPass credentials that check cannot read. check may return an
// *InvalidError naming the fields; any other error is reported on techpass.
func (a *Admin) CheckUpstreamWith(check func(Tenant) error) { a.checkUpstream = check }

// upstreamUsable runs the upstream check on t when it is enabled.
func (a *Admin) upstreamUsable(t Tenant) error {
	if a.checkUpstream == nil || t.Disabled {
		return nil
	}
	err := a.checkUpstream(t)
	var ie *InvalidError
	if err == nil || errors.As(err, &ie) {
		return err
	}
	return &InvalidError{Fields: []FieldError{{Field: "techpass", Message: err.Error()}}}
}

// identityFree checks an identity provider before it is given to project
// (tenant:name): valid, and its issuer and audience used by no other
// project, so that one team's tokens never open another's project.
func (a *Admin) identityFree(ctx context.Context, tenant, name string, idp *IdentityProvider) error {
	if idp == nil {
		return nil
	}
	if a.checkIdentity != nil {
		if err := a.checkIdentity(*idp); err != nil {
			return err
		}
	}
	others, err := a.store.ProjectsByIssuer(ctx, idp.Issuer)
	if err != nil {
		return err
	}
	for _, o := range others {
		if (o.Tenant != tenant || o.Name != name) && o.Identity.Audience == idp.Audience {
			return fmt.Errorf("%w: project %s:%s already trusts this issuer and audience", ErrConflict, o.Tenant, o.Name)
		}
	}
	return nil
}

// NewAdmin returns an admin over store; box seals credential values (nil
// refuses them).
func NewAdmin(store Store, box Sealer, now func() time.Time) *Admin {
	if now == nil {
		now = time.Now
	}
	return &Admin{store: store, box: box, now: now, groupLimit: DefaultGroupLimit, interval: DefaultInterval}
}

// TenantSpec is a tenant's settings as given by an operator. Nil fields are
// left as they are on update (defaults on create).
type TenantSpec struct {
	Name         string
	Disabled     *bool
	GroupLimit   *int
	Interval     *time.Duration
	APIURL       *string
	DirectoryID  *string
	ClientID     *string
	TokenURL     *string
	ClientSecret *CredentialInput
	APIKey       *CredentialInput
	// WebhookSecret and PreviousWebhookSecret verify TechPass's webhooks;
	// an empty CredentialInput removes one.
	WebhookSecret         *CredentialInput
	PreviousWebhookSecret *CredentialInput
}

// touchesUpstream reports whether s changes how the tenant reaches TechPass.
func (s TenantSpec) touchesUpstream() bool {
	return s.APIURL != nil || s.DirectoryID != nil || s.ClientID != nil || s.TokenURL != nil || s.ClientSecret != nil || s.APIKey != nil
}

// CreateTenant creates a tenant from spec; a group limit or interval it
// does not give is the admin's default (see DefaultsFrom).
func (a *Admin) CreateTenant(ctx context.Context, spec TenantSpec) (Tenant, error) {
	now := a.now()
	t := Tenant{Name: names.Upper(spec.Name), GroupLimit: a.groupLimit, Interval: a.interval, CreatedAt: now, UpdatedAt: now}
	if err := a.apply(&t, spec, now); err != nil {
		return Tenant{}, err
	}
	if err := a.upstreamUsable(t); err != nil {
		return Tenant{}, err
	}
	if err := a.store.CreateTenant(ctx, t); err != nil {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", t.Name, err)
	}
	return t, nil
}

// UpdateTenant changes the tenant's settings given in spec. Lowering the
// group limit below the projects' quotas is refused with ErrQuota.
func (a *Admin) UpdateTenant(ctx context.Context, name string, spec TenantSpec) (Tenant, error) {
	t, _, err := a.store.UpdateTenant(ctx, name, func(t *Tenant, projects *[]Project) error {
		now := a.now()
		wasDisabled := t.Disabled
		if err := a.apply(t, spec, now); err != nil {
			return err
		}
		if wasDisabled || spec.touchesUpstream() {
			if err := a.upstreamUsable(*t); err != nil {
				return err
			}
		}
		t.UpdatedAt = now
		return checkQuotas(*t, *projects)
	})
	if err != nil {
		return Tenant{}, fmt.Errorf("update tenant %s: %w", name, err)
	}
	return t, nil
}

func (a *Admin) apply(t *Tenant, s TenantSpec, now time.Time) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	if s.Disabled != nil {
		t.Disabled = *s.Disabled
	}
	if s.GroupLimit != nil {
		t.GroupLimit = *s.GroupLimit
	}
	if s.Interval != nil {
		t.Interval = *s.Interval
	}
	set(&t.TechPass.APIURL, s.APIURL)
	set(&t.TechPass.DirectoryID, s.DirectoryID)
	set(&t.TechPass.ClientID, s.ClientID)
	set(&t.TechPass.TokenURL, s.TokenURL)
	var p problems
	for _, c := range []struct {
		in    *CredentialInput
		dst   *Credential
		field string
	}{{s.ClientSecret, &t.TechPass.ClientSecret, "clientSecret"}, {s.APIKey, &t.TechPass.APIKey, "apiKey"}} {
		if c.in == nil {
			continue
		}
		cred, err := a.credential(*c.in, t.Name, c.field, now)
		if err != nil {
			p.add("techpass."+c.field, "%v", err)
			continue
		}
		*c.dst = cred
	}
	for _, c := range []struct {
		in    *CredentialInput
		dst   *Credential
		field string
	}{{s.WebhookSecret, &t.TechPass.WebhookSecret, "webhookSecret"}, {s.PreviousWebhookSecret, &t.TechPass.PreviousWebhookSecret, "previousWebhookSecret"}} {
		switch {
		case c.in == nil:
		case *c.in == CredentialInput{}:
			*c.dst = Credential{} // optional: an empty one removes it
		case c.in.Value != "" && len(c.in.Value) < MinWebhookSecret:
			p.add("techpass."+c.field, "a webhook secret must hold at least %d bytes", MinWebhookSecret)
		default:
			cred, err := a.credential(*c.in, t.Name, c.field, now)
			if err != nil {
				p.add("techpass."+c.field, "%v", err)
				continue
			}
			*c.dst = cred
		}
	}
	if err := p.err(); err != nil {
		return err
	}
	return t.Validate()
}

// MinWebhookSecret is the shortest webhook secret accepted, in bytes: a
// shorter one (given as a value here; read from a file or a variable, it is
// refused at each delivery and shown in /readyz) could be guessed.
const MinWebhookSecret = 16

// CredentialPlace names where a sealed credential belongs; a value sealed
// for one place does not open in another.
func CredentialPlace(tenant, field string) string { return "tenant/" + tenant + "/" + field }

func (a *Admin) credential(in CredentialInput, tenant, field string, now time.Time) (Credential, error) {
	n := 0
	for _, v := range []string{in.File, in.Env, in.Value} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return Credential{}, errors.New("give exactly one of file, env and value")
	case in.File != "":
		return Credential{Kind: CredentialFile, Ref: in.File, SetAt: now}, nil
	case in.Env != "":
		return Credential{Kind: CredentialEnv, Ref: in.Env, SetAt: now}, nil
	case a.box == nil:
		return Credential{}, errors.New("values cannot be stored: the server has no key-encryption key configured")
	default:
		return Credential{Kind: CredentialStored, Sealed: a.box.Seal([]byte(in.Value), CredentialPlace(tenant, field)),
			Fingerprint: fingerprint(in.Value), SetAt: now}, nil
	}
}

// checkQuotas refuses project quotas that add up to more than the tenant's
// group limit. Projects without a quota (0) share what the limit allows.
func checkQuotas(t Tenant, projects []Project) error {
	sum := 0
	for _, p := range projects {
		sum += p.GroupQuota
	}
	if sum > t.GroupLimit {
		return fmt.Errorf("%w: the projects' quotas add up to %d, the tenant's group limit is %d", ErrQuota, sum, t.GroupLimit)
	}
	return nil
}

// ProjectSpec is a project's settings. Nil fields are left as they are on
// update (and zero on create).
type ProjectSpec struct {
	Name       string
	Disabled   *bool
	GroupQuota *int
	// Identity replaces the identity provider; set ClearIdentity to remove it.
	Identity      *IdentityProvider
	ClearIdentity bool
}

// CreateProject adds a project to tenant.
func (a *Admin) CreateProject(ctx context.Context, tenant string, spec ProjectSpec) (Project, error) {
	if err := a.identityFree(ctx, tenant, names.Upper(spec.Name), spec.Identity); err != nil {
		return Project{}, fmt.Errorf("create project %s:%s: %w", tenant, spec.Name, err)
	}
	var created Project
	_, _, err := a.store.UpdateTenant(ctx, tenant, func(t *Tenant, projects *[]Project) error {
		now := a.now()
		pr := Project{Tenant: t.Name, Name: names.Upper(spec.Name), CreatedAt: now, UpdatedAt: now}
		for _, p := range *projects {
			if p.Name == pr.Name {
				return fmt.Errorf("project %s:%s: %w", t.Name, pr.Name, ErrConflict)
			}
		}
		if err := applyProject(&pr, spec); err != nil {
			return err
		}
		*projects = append(*projects, pr)
		created = pr
		return checkQuotas(*t, *projects)
	})
	if err != nil {
		return Project{}, fmt.Errorf("create project %s:%s: %w", tenant, spec.Name, err)
	}
	return created, nil
}

// UpdateProject changes a project's settings given in spec.
func (a *Admin) UpdateProject(ctx context.Context, tenant, name string, spec ProjectSpec) (Project, error) {
	if err := a.identityFree(ctx, tenant, name, spec.Identity); err != nil {
		return Project{}, fmt.Errorf("update project %s:%s: %w", tenant, name, err)
	}
	var updated Project
	_, _, err := a.store.UpdateTenant(ctx, tenant, func(t *Tenant, projects *[]Project) error {
		for i := range *projects {
			pr := &(*projects)[i]
			if pr.Name != name {
				continue
			}
			spec.Name = pr.Name
			if err := applyProject(pr, spec); err != nil {
				return err
			}
			pr.UpdatedAt = a.now()
			updated = *pr
			return checkQuotas(*t, *projects)
		}
		return fmt.Errorf("project %s:%s: %w", tenant, name, ErrNotFound)
	})
	if err != nil {
		return Project{}, fmt.Errorf("update project %s:%s: %w", tenant, name, err)
	}
	return updated, nil
}

func applyProject(pr *Project, s ProjectSpec) error {
	if s.Disabled != nil {
		pr.Disabled = *s.Disabled
	}
	if s.GroupQuota != nil {
		pr.GroupQuota = *s.GroupQuota
	}
	if s.ClearIdentity {
		pr.Identity = nil
	}
	if s.Identity != nil {
		idp := *s.Identity
		pr.Identity = &idp
	}
	return pr.Validate()
}

// KeySpec is a key to issue.
type KeySpec struct {
	Name      string
	Role      Role
	Tenant    string
	Project   string
	Scopes    []Scope
	ExpiresAt time.Time
}

// IssueKey creates a key for spec on behalf of actor and returns it once,
// with its stored form. A project key's project must exist.
func (a *Admin) IssueKey(ctx context.Context, actor string, spec KeySpec) (string, Key, error) {
	plain, k := NewKey()
	k.Name, k.Role, k.Tenant, k.Project = strings.TrimSpace(spec.Name), spec.Role, names.Upper(spec.Tenant), names.Upper(spec.Project)
	k.Scopes, k.ExpiresAt, k.CreatedBy, k.CreatedAt = spec.Scopes, spec.ExpiresAt, actor, a.now()
	if err := k.Validate(); err != nil {
		return "", Key{}, err
	}
	switch k.Role {
	case RoleProject:
		if _, err := a.store.Project(ctx, k.Tenant, k.Project); err != nil {
			return "", Key{}, fmt.Errorf("issue key for %s:%s: %w", k.Tenant, k.Project, err)
		}
	case RoleTenantAdmin:
		if _, err := a.store.Tenant(ctx, k.Tenant); err != nil {
			return "", Key{}, fmt.Errorf("issue key for %s: %w", k.Tenant, err)
		}
	}
	// A taken id (two random 80-bit ids alike) is not the caller's
	// conflict: the key is issued under a fresh id.
	for tries := 1; ; tries++ {
		err := a.store.CreateKey(ctx, k)
		if err == nil {
			return plain, k, nil
		}
		if !errors.Is(err, ErrConflict) || tries == maxKeyIDTries {
			return "", Key{}, fmt.Errorf("issue key: %w", err)
		}
		var fresh Key
		plain, fresh = NewKey()
		k.ID, k.Hash = fresh.ID, fresh.Hash
	}
}

// maxKeyIDTries bounds how many fresh ids IssueKey tries when an id is
// taken.
const maxKeyIDTries = 3

// RevokeKey revokes key id; it stops working at once. Revoking a revoked
// key changes nothing.
func (a *Admin) RevokeKey(ctx context.Context, id string) (Key, error) {
	k, err := a.store.UpdateKey(ctx, id, func(k *Key) error {
		if k.RevokedAt.IsZero() {
			k.RevokedAt = a.now()
		}
		return nil
	})
	if err != nil {
		return Key{}, fmt.Errorf("revoke key %s: %w", id, err)
	}
	return k, nil
}
