package tenants

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/groupgate/groupgate/names"
)

// Role is what kind of caller a credential stands for.
type Role string

// The roles, from most to least powerful. Each may do only what it needs.
const (
	// RoleOperator is the platform team: it manages tenants and every key,
	// and reads every audit entry, but does not touch groups.
	RoleOperator Role = "operator"
	// RoleTenantAdmin manages one tenant's projects and keys, reads its
	// audit log, and may act on every project of the tenant.
	RoleTenantAdmin Role = "tenant-admin"
	// RoleProject is one downstream team's backend: it acts on its own
	// project's groups within its scopes.
	RoleProject Role = "project"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleOperator || r == RoleTenantAdmin || r == RoleProject }

// The scopes of project credentials.
const (
	MembersRead  Scope = "members:read"
	MembersWrite Scope = "members:write"
)

// ProjectScopes lists every scope a project credential may carry.
func ProjectScopes() []Scope { return []Scope{GroupsRead, GroupsWrite, MembersRead, MembersWrite} }

var keyNameRE = regexp.MustCompile(`^[\pL\pN ._:/@-]{1,64}$`)

// Defaults for a new tenant.
const (
	DefaultGroupLimit = 50
	DefaultInterval   = time.Second
)

// Tenant is a TechPass namespace that uses the service.
type Tenant struct {
	// Name is the namespace, upper case, e.g. SHIP.
	Name string
	// Disabled tenants accept no calls; their queue is paused.
	Disabled bool
	// GroupLimit is the namespace's group limit in TechPass.
	GroupLimit int
	// Interval is the minimum gap between the starts of two upstream requests.
	Interval time.Duration
	// TechPass says where and how to reach TechPass; an empty APIURL means
	// the built-in simulator.
	TechPass  TechPass
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TechPass is a tenant's upstream settings. Credentials are references (a
// file or an environment variable, for secret managers) or values stored
// sealed; they are never returned by the API.
type TechPass struct {
	APIURL      string
	DirectoryID string
	ClientID    string
	// TokenURL overrides the token endpoint built from DirectoryID.
	TokenURL     string
	ClientSecret Credential
	APIKey       Credential
	// WebhookSecret verifies TechPass's webhook deliveries; during a
	// changeover PreviousWebhookSecret is accepted too. Both optional.
	WebhookSecret         Credential
	PreviousWebhookSecret Credential
}

// CredentialKind says where a credential's value is.
type CredentialKind string

// The kinds of credential.
const (
	// CredentialNone: not set.
	CredentialNone CredentialKind = ""
	// CredentialFile: read from the file at Ref, and again when it changes
	// (checked periodically and on SIGHUP).
	CredentialFile CredentialKind = "file"
	// CredentialEnv: read from the environment variable Ref.
	CredentialEnv CredentialKind = "env"
	// CredentialStored: written once through the API, kept sealed (AES-256-GCM).
	CredentialStored CredentialKind = "stored"
)

// Credential is one secret of a tenant, by reference or sealed. Its value is
// never held here in plain text.
type Credential struct {
	Kind CredentialKind
	// Ref is the file path or variable name (for file and env kinds).
	Ref string
	// Sealed is the encrypted value (for the stored kind).
	Sealed []byte
	// Fingerprint identifies the stored value without revealing it.
	Fingerprint string
	// SetAt is when the credential was last set.
	SetAt time.Time
}

// Set reports whether the credential is configured.
func (c Credential) Set() bool { return c.Kind != CredentialNone }

// Project is a downstream team inside a tenant.
type Project struct {
	Tenant string
	// Name is upper case, e.g. MOH.
	Name string
	// Disabled projects accept no calls.
	Disabled bool
	// GroupQuota is how many groups the project may have (pending creates
	// included); 0 means no quota of its own, so only the tenant's group
	// limit bounds it. The quotas of a tenant's projects add up to at most
	// the tenant's GroupLimit.
	GroupQuota int
	// Identity, if set, lets the project's own identity provider vouch for
	// its callers with JWTs.
	Identity  *IdentityProvider
	CreatedAt time.Time
	UpdatedAt time.Time
}

// IdentityProvider is a project's own token issuer: a JWT it signs, for the
// audience, is accepted as the project's credential with Scopes.
type IdentityProvider struct {
	Issuer   string
	Audience string
	// JWKSURL or PublicKeys (PEM) give the verification keys.
	JWKSURL    string
	PublicKeys []string
	// Algorithms allowed; default RS256 and ES256.
	Algorithms []string
	// SubjectClaim names the caller; default "sub".
	SubjectClaim string
	// Scopes granted to the provider's callers; default all project scopes.
	Scopes []Scope
}

// Key is an issued API key as stored: never the key itself.
type Key struct {
	// ID is the key's public identifier, the <keyid> part of the key.
	ID string
	// Name is a label chosen by its creator.
	Name string
	Role Role
	// Tenant is set for tenant-admin and project keys.
	Tenant string
	// Project is set for project keys.
	Project string
	// Scopes of a project key; empty means all project scopes.
	Scopes []Scope
	// Hash is the SHA-256 of the whole key.
	Hash [32]byte
	// CreatedBy is the actor that issued the key.
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
}

// Usable reports whether the key works at now: not revoked, not expired.
func (k Key) Usable(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// FieldError is one problem with one field of an input: the field as the
// HTTP API names it (dotted for nested fields, e.g. techpass.clientId) and
// what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// problems collects validation problems.
type problems []FieldError

func (p *problems) add(field, format string, a ...any) {
	*p = append(*p, FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
}

// absent adds the problem msg about field if bad.
func (p *problems) absent(field string, bad bool, msg string) {
	if bad {
		p.add(field, "%s", msg)
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &InvalidError{Fields: p}
}

// InvalidError lists every problem with an input, field by field. It wraps
// ErrInvalid.
type InvalidError struct{ Fields []FieldError }

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Validate checks a tenant, reporting every problem.
func (t Tenant) Validate() error {
	var p problems
	if !names.CanonicalTenant(t.Name) {
		p.add("name", names.TenantRule)
	}
	if t.GroupLimit < 1 || t.GroupLimit > 100000 {
		p.add("groupLimit", "must be between 1 and 100000")
	}
	if t.Interval < 10*time.Millisecond || t.Interval > time.Hour {
		p.add("intervalSeconds", "must be between 10ms and 1h")
	}
	tp := t.TechPass
	if tp.APIURL != "" {
		for name, v := range map[string]string{"apiUrl": tp.APIURL, "tokenUrl": tp.TokenURL} {
			if v == "" {
				continue
			}
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
				p.add("techpass."+name, "must be an http(s) URL without credentials")
			}
		}
		if tp.TokenURL == "" && tp.DirectoryID == "" {
			p.add("techpass.directoryId", "is required (or tokenUrl)")
		}
		if tp.ClientID == "" {
			p.add("techpass.clientId", "is required")
		}
		if !tp.ClientSecret.Set() {
			p.add("techpass.clientSecret", "is required")
		}
		if !tp.APIKey.Set() {
			p.add("techpass.apiKey", "is required")
		}
	}
	for name, c := range map[string]Credential{"clientSecret": tp.ClientSecret, "apiKey": tp.APIKey} {
		switch c.Kind {
		case CredentialNone, CredentialStored:
		case CredentialFile:
			if !strings.HasPrefix(c.Ref, "/") {
				p.add("techpass."+name+".file", "must be an absolute path")
			}
		case CredentialEnv:
			if !names.ValidEnv(c.Ref) {
				p.add("techpass."+name+".env", "must be an environment variable name")
			}
		default:
			p.add("techpass."+name, "has an unknown kind")
		}
	}
	return p.err()
}

// Validate checks a project, reporting every problem.
func (pr Project) Validate() error {
	var p problems
	if !names.CanonicalProject(pr.Name) {
		p.add("name", names.ProjectRule)
	}
	if pr.GroupQuota < 0 {
		p.add("groupQuota", "must not be negative")
	}
	if idp := pr.Identity; idp != nil {
		if u, err := url.Parse(idp.Issuer); idp.Issuer == "" || err != nil {
			p.add("identity.issuer", "is required")
		} else if u.Scheme != "https" && u.Scheme != "http" {
			p.add("identity.issuer", "must be a URL")
		}
		if idp.Audience == "" {
			p.add("identity.audience", "is required")
		}
		if (idp.JWKSURL == "") == (len(idp.PublicKeys) == 0) {
			p.add("identity", "needs exactly one of jwksUrl and publicKeys")
		}
		for _, s := range idp.Scopes {
			if !slices.Contains(ProjectScopes(), s) {
				p.add("identity.scopes", "unknown scope %q", s)
			}
		}
	}
	return p.err()
}

// Validate checks a key's definition (not its secret), reporting every
// problem.
func (k Key) Validate() error {
	var p problems
	if !keyNameRE.MatchString(k.Name) {
		p.add("name", "must be 1-64 letters, digits, spaces or ._:/@-")
	}
	switch k.Role {
	case RoleOperator:
		p.absent("tenant", k.Tenant != "", "an operator key has no tenant")
		p.absent("project", k.Project != "", "an operator key has no project")
		p.absent("scopes", len(k.Scopes) > 0, "an operator key has no scopes")
	case RoleTenantAdmin:
		p.absent("tenant", k.Tenant == "", "a tenant-admin key needs a tenant")
		p.absent("project", k.Project != "", "a tenant-admin key has no project")
		p.absent("scopes", len(k.Scopes) > 0, "a tenant-admin key has no scopes")
	case RoleProject:
		p.absent("tenant", k.Tenant == "", "a project key needs a tenant")
		p.absent("project", k.Project == "", "a project key needs a project")
		for _, s := range k.Scopes {
			if !slices.Contains(ProjectScopes(), s) {
				p.add("scopes", "unknown scope %q", s)
			}
		}
	default:
		p.add("role", "must be operator, tenant-admin or project")
	}
	if !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(k.CreatedAt) {
		p.add("expiresAt", "must be after the key's creation")
	}
	return p.err()
}

// fingerprint identifies a secret value without revealing it.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:6])
}
