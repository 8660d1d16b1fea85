package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/tenants"
)

// Directory reads tenants, projects and keys.
type Directory interface {
	Tenants(ctx context.Context) ([]tenants.Tenant, error)
	Tenant(ctx context.Context, name string) (tenants.Tenant, error)
	Projects(ctx context.Context, tenant string) ([]tenants.Project, error)
	Project(ctx context.Context, tenant, name string) (tenants.Project, error)
	Keys(ctx context.Context, tenant string) ([]tenants.Key, error)
	Key(ctx context.Context, id string) (tenants.Key, error)
}

// KeyStatus says what only the authenticator knows about a key.
type KeyStatus interface {
	RotationDue(k tenants.Key) bool
	LastUsed(k tenants.Key) time.Time
}

// ListTenants lists every tenant (operators).
func (h *Handlers) ListTenants(c echo.Context) error {
	if err := tenants.RequireOperator(principal(c)); err != nil {
		return err
	}
	ts, err := h.Directory.Tenants(c.Request().Context())
	if err != nil {
		return err
	}
	out := TenantList{Tenants: make([]Tenant, 0, len(ts))}
	for _, t := range ts {
		out.Tenants = append(out.Tenants, tenantOut(t))
	}
	return c.JSON(http.StatusOK, out)
}

// CreateTenant onboards a tenant (operators).
func (h *Handlers) CreateTenant(c echo.Context) error {
	if err := tenants.RequireOperator(principal(c)); err != nil {
		return err
	}
	var in TenantInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	spec := tenantSpec(in.Disabled, in.GroupLimit, in.IntervalSeconds, in.Techpass)
	spec.Name = in.Name
	noteAudit(c, AuditNote{Tenant: names.Upper(in.Name), Target: names.Upper(in.Name)})
	t, err := h.Admin.CreateTenant(c.Request().Context(), spec)
	if err != nil {
		return err
	}
	if err := h.tenantChanged(c.Request().Context(), t.Name); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tenantOut(t))
}

// GetTenant returns a tenant (operators; the tenant's admins).
func (h *Handlers) GetTenant(c echo.Context, tenant TenantParam) error {
	name := names.Upper(tenant)
	if err := tenants.RequireTenantAdmin(principal(c), name); err != nil {
		return err
	}
	t, err := h.Directory.Tenant(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tenantOut(t))
}

// UpdateTenant changes a tenant's settings (operators).
func (h *Handlers) UpdateTenant(c echo.Context, tenant TenantParam) error {
	if err := tenants.RequireOperator(principal(c)); err != nil {
		return err
	}
	var in TenantPatch
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := h.Admin.UpdateTenant(c.Request().Context(), names.Upper(tenant), tenantSpec(in.Disabled, in.GroupLimit, in.IntervalSeconds, in.Techpass))
	if err != nil {
		return err
	}
	if err := h.tenantChanged(c.Request().Context(), t.Name); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tenantOut(t))
}

// tenantChanged lets the server rebuild the tenant's upstream client and
// dispatcher.
func (h *Handlers) tenantChanged(ctx context.Context, name string) error {
	if h.OnTenantChange == nil {
		return nil
	}
	return h.OnTenantChange(ctx, name)
}

// ListProjects lists a tenant's projects (its admins; operators).
func (h *Handlers) ListProjects(c echo.Context, tenant TenantParam) error {
	name := names.Upper(tenant)
	if err := tenants.RequireTenantAdmin(principal(c), name); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := h.Directory.Tenant(ctx, name); err != nil {
		return err
	}
	ps, err := h.Directory.Projects(ctx, name)
	if err != nil {
		return err
	}
	out := ProjectList{Projects: make([]Project, 0, len(ps))}
	for _, p := range ps {
		out.Projects = append(out.Projects, projectOut(p))
	}
	return c.JSON(http.StatusOK, out)
}

// CreateProject adds a project to a tenant (its admins; operators).
func (h *Handlers) CreateProject(c echo.Context, tenant TenantParam) error {
	name := names.Upper(tenant)
	if err := tenants.RequireTenantAdmin(principal(c), name); err != nil {
		return err
	}
	var in ProjectInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	spec := tenants.ProjectSpec{Name: in.Name, Disabled: in.Disabled, GroupQuota: intPtr(in.GroupQuota), Identity: identityIn(in.Identity)}
	noteAudit(c, AuditNote{Tenant: name, Project: names.Upper(in.Name), Target: name + ":" + names.Upper(in.Name)})
	p, err := h.Admin.CreateProject(c.Request().Context(), name, spec)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, projectOut(p))
}

// GetProject returns a project (the tenant's admins; operators).
func (h *Handlers) GetProject(c echo.Context, tenant TenantParam, project ProjectParam) error {
	t, p := names.Upper(tenant), names.Upper(project)
	if err := tenants.RequireTenantAdmin(principal(c), t); err != nil {
		return err
	}
	pr, err := h.Directory.Project(c.Request().Context(), t, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, projectOut(pr))
}

// UpdateProject changes a project's settings (the tenant's admins;
// operators).
func (h *Handlers) UpdateProject(c echo.Context, tenant TenantParam, project ProjectParam) error {
	t, p := names.Upper(tenant), names.Upper(project)
	if err := tenants.RequireTenantAdmin(principal(c), t); err != nil {
		return err
	}
	var in ProjectPatch
	raw, err := decodeJSONRaw(c, &in)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	spec := tenants.ProjectSpec{Disabled: in.Disabled, GroupQuota: intPtr(in.GroupQuota), Identity: identityIn(in.Identity),
		ClearIdentity: string(fields["identity"]) == "null"}
	pr, err := h.Admin.UpdateProject(c.Request().Context(), t, p, spec)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, projectOut(pr))
}

// ListKeys lists keys' metadata: every key for operators, their tenant's
// for tenant-admins.
func (h *Handlers) ListKeys(c echo.Context, params ListKeysParams) error {
	p := principal(c)
	tenant := ""
	if params.Tenant != nil {
		tenant = names.Upper(*params.Tenant)
	}
	switch p.Role {
	case tenants.RoleOperator:
	case tenants.RoleTenantAdmin:
		if tenant != "" && tenant != p.Tenant {
			return fmt.Errorf("%w: %s administers %s", tenants.ErrForbidden, p.Actor(), p.Tenant)
		}
		tenant = p.Tenant
	default:
		return fmt.Errorf("%w: only operators and tenant-admins list keys", tenants.ErrForbidden)
	}
	ks, err := h.Directory.Keys(c.Request().Context(), tenant)
	if err != nil {
		return err
	}
	out := KeyList{Keys: make([]Key, 0, len(ks))}
	for _, k := range ks {
		out.Keys = append(out.Keys, h.keyOut(k))
	}
	return c.JSON(http.StatusOK, out)
}

// CreateKey issues a key and shows it once.
func (h *Handlers) CreateKey(c echo.Context) error {
	var in KeyInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	spec := tenants.KeySpec{Name: in.Name, Role: tenants.Role(in.Role), Tenant: deref(in.Tenant), Project: deref(in.Project)}
	if in.Scopes != nil {
		for _, s := range *in.Scopes {
			spec.Scopes = append(spec.Scopes, tenants.Scope(s))
		}
	}
	if in.ExpiresAt != nil {
		spec.ExpiresAt = *in.ExpiresAt
	}
	p := principal(c)
	if err := tenants.RequireIssue(p, tenants.Key{Role: spec.Role, Tenant: names.Upper(spec.Tenant)}); err != nil {
		return err
	}
	plain, k, err := h.Admin.IssueKey(c.Request().Context(), p.Actor(), spec)
	if err != nil {
		return err
	}
	noteAudit(c, AuditNote{Tenant: k.Tenant, Project: k.Project, Target: "key:" + k.ID})
	ko := h.keyOut(k)
	return c.JSON(http.StatusCreated, KeyCreated{
		Id: ko.Id, Name: ko.Name, Role: ko.Role, Tenant: ko.Tenant, Project: ko.Project, Scopes: ko.Scopes,
		State: KeyCreatedState(ko.State), RotationDue: ko.RotationDue, CreatedBy: ko.CreatedBy, CreatedAt: ko.CreatedAt,
		ExpiresAt: ko.ExpiresAt, Key: plain,
	})
}

// GetKey returns a key's metadata. A key the caller may not manage reads as
// not found.
func (h *Handlers) GetKey(c echo.Context, id string) error {
	k, err := h.manageableKey(c, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.keyOut(k))
}

// RevokeKey revokes a key; it stops working with the next request (on
// other PostgreSQL replicas, within postgres.auth_cache_ttl).
func (h *Handlers) RevokeKey(c echo.Context, id string) error {
	owned, err := h.manageableKey(c, id)
	if err != nil {
		return err
	}
	noteAudit(c, AuditNote{Tenant: owned.Tenant, Project: owned.Project, Target: "key:" + id})
	k, err := h.Admin.RevokeKey(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.keyOut(k))
}

func (h *Handlers) manageableKey(c echo.Context, id string) (tenants.Key, error) {
	k, err := h.Directory.Key(c.Request().Context(), id)
	if err != nil {
		return tenants.Key{}, err
	}
	if err := tenants.RequireIssue(principal(c), k); err != nil {
		return tenants.Key{}, fmt.Errorf("key %s: %w", id, tenants.ErrNotFound)
	}
	return k, nil
}

func tenantSpec(disabled *bool, limit *int32, interval *float64, tp *TechPassInput) tenants.TenantSpec {
	spec := tenants.TenantSpec{Disabled: disabled, GroupLimit: intPtr(limit)}
	if interval != nil {
		d := time.Duration(*interval * float64(time.Second))
		spec.Interval = &d
	}
	if tp != nil {
		spec.APIURL, spec.DirectoryID, spec.ClientID, spec.TokenURL = tp.ApiUrl, tp.DirectoryId, tp.ClientId, tp.TokenUrl
		spec.ClientSecret, spec.APIKey = credentialIn(tp.ClientSecret), credentialIn(tp.ApiKey)
		spec.WebhookSecret, spec.PreviousWebhookSecret = credentialIn(tp.WebhookSecret), credentialIn(tp.PreviousWebhookSecret)
	}
	return spec
}

func credentialIn(in *CredentialInput) *tenants.CredentialInput {
	if in == nil {
		return nil
	}
	return &tenants.CredentialInput{File: deref(in.File), Env: deref(in.Env), Value: deref(in.Value)}
}

func identityIn(in *IdentityProvider) *tenants.IdentityProvider {
	if in == nil {
		return nil
	}
	idp := &tenants.IdentityProvider{Issuer: in.Issuer, Audience: in.Audience, JWKSURL: deref(in.JwksUrl), SubjectClaim: deref(in.SubjectClaim)}
	if in.PublicKeys != nil {
		idp.PublicKeys = *in.PublicKeys
	}
	if in.Algorithms != nil {
		for _, a := range *in.Algorithms {
			idp.Algorithms = append(idp.Algorithms, string(a))
		}
	}
	if in.Scopes != nil {
		for _, s := range *in.Scopes {
			idp.Scopes = append(idp.Scopes, tenants.Scope(s))
		}
	}
	return idp
}

func tenantOut(t tenants.Tenant) Tenant {
	tp := TechPassInfo{Upstream: Techpass, ClientSecret: credentialOut(t.TechPass.ClientSecret), ApiKey: credentialOut(t.TechPass.APIKey)}
	if c := t.TechPass.WebhookSecret; c.Set() {
		info := credentialOut(c)
		tp.WebhookSecret = &info
	}
	if c := t.TechPass.PreviousWebhookSecret; c.Set() {
		info := credentialOut(c)
		tp.PreviousWebhookSecret = &info
	}
	if t.TechPass.APIURL == "" {
		tp.Upstream = Simulator
	}
	tp.ApiUrl, tp.DirectoryId, tp.ClientId, tp.TokenUrl = strPtr(t.TechPass.APIURL), strPtr(t.TechPass.DirectoryID), strPtr(t.TechPass.ClientID), strPtr(t.TechPass.TokenURL)
	return Tenant{Name: t.Name, Disabled: t.Disabled, GroupLimit: int32(t.GroupLimit), IntervalSeconds: t.Interval.Seconds(),
		Techpass: tp, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// credentialOut shows which credential is set, never its value.
func credentialOut(c tenants.Credential) CredentialInfo {
	out := CredentialInfo{Kind: None}
	switch c.Kind {
	case tenants.CredentialFile:
		out.Kind, out.Ref = File, strPtr(c.Ref)
	case tenants.CredentialEnv:
		out.Kind, out.Ref = Env, strPtr(c.Ref)
	case tenants.CredentialStored:
		out.Kind, out.Fingerprint = Stored, strPtr(c.Fingerprint)
	}
	if !c.SetAt.IsZero() {
		t := c.SetAt.UTC()
		out.SetAt = &t
	}
	return out
}

func projectOut(p tenants.Project) Project {
	out := Project{Tenant: p.Tenant, Name: p.Name, Disabled: p.Disabled, GroupQuota: int32(p.GroupQuota),
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
	if idp := p.Identity; idp != nil {
		o := IdentityProvider{Issuer: idp.Issuer, Audience: idp.Audience, JwksUrl: strPtr(idp.JWKSURL), SubjectClaim: strPtr(idp.SubjectClaim)}
		if len(idp.PublicKeys) > 0 {
			keys := append([]string(nil), idp.PublicKeys...)
			o.PublicKeys = &keys
		}
		if len(idp.Algorithms) > 0 {
			algs := make([]IdentityProviderAlgorithms, len(idp.Algorithms))
			for i, a := range idp.Algorithms {
				algs[i] = IdentityProviderAlgorithms(a)
			}
			o.Algorithms = &algs
		}
		if len(idp.Scopes) > 0 {
			sc := scopesOut(idp.Scopes)
			o.Scopes = &sc
		}
		out.Identity = &o
	}
	return out
}

func (h *Handlers) keyOut(k tenants.Key) Key {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	out := Key{Id: k.ID, Name: k.Name, Role: Role(k.Role), Tenant: strPtr(k.Tenant), Project: strPtr(k.Project),
		Scopes: scopesOut(k.Scopes), State: KeyStateActive, CreatedBy: strPtr(k.CreatedBy), CreatedAt: k.CreatedAt.UTC()}
	if k.Role == tenants.RoleProject && len(k.Scopes) == 0 {
		out.Scopes = scopesOut(tenants.ProjectScopes())
	}
	switch {
	case !k.RevokedAt.IsZero():
		out.State = KeyStateRevoked
		t := k.RevokedAt.UTC()
		out.RevokedAt = &t
	case !k.ExpiresAt.IsZero() && !now().Before(k.ExpiresAt):
		out.State = KeyStateExpired
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	if h.KeyStatus != nil {
		out.RotationDue = out.State == KeyStateActive && h.KeyStatus.RotationDue(k)
		if t := h.KeyStatus.LastUsed(k); !t.IsZero() {
			t = t.UTC()
			out.LastUsedAt = &t
		}
	}
	return out
}

func scopesOut(ss []tenants.Scope) []Scope {
	out := make([]Scope, len(ss))
	for i, s := range ss {
		out[i] = Scope(s)
	}
	return out
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	Tenant, Project, Actor, Action string
	Since, Until                   time.Time
	Cursor                         string
	Limit                          int
}

// AuditLog reads the audit log, newest first; next is empty on the last
// page. A malformed cursor or filter is an error wrapping ErrBadQuery.
type AuditLog interface {
	Query(ctx context.Context, q AuditQuery) (entries []AuditEntry, next string, err error)
}

// ErrBadQuery marks an audit query the log cannot answer (a malformed
// cursor, an inverted time range).
var ErrBadQuery = errors.New("bad audit query")

// ListAudit reads the audit log: operators everything, tenant-admins their
// tenant's entries.
func (h *Handlers) ListAudit(c echo.Context, params ListAuditParams) error {
	p := principal(c)
	q := AuditQuery{Tenant: names.Upper(deref(params.Tenant)), Project: names.Upper(deref(params.Project)),
		Actor: deref(params.Actor), Action: deref(params.Action), Cursor: deref(params.Cursor)}
	if params.Since != nil {
		q.Since = *params.Since
	}
	if params.Until != nil {
		q.Until = *params.Until
	}
	if params.Limit != nil {
		q.Limit = *params.Limit
	}
	switch p.Role {
	case tenants.RoleOperator:
	case tenants.RoleTenantAdmin:
		if q.Tenant != "" && q.Tenant != p.Tenant {
			return fmt.Errorf("%w: %s administers %s", tenants.ErrForbidden, p.Actor(), p.Tenant)
		}
		q.Tenant = p.Tenant
	default:
		return fmt.Errorf("%w: only operators and tenant-admins read the audit log", tenants.ErrForbidden)
	}
	entries, next, err := h.Audit.Query(c.Request().Context(), q)
	if err != nil {
		if errors.Is(err, ErrBadQuery) {
			return &Error{Status: http.StatusBadRequest, Title: "Invalid audit query", Detail: "The cursor or the filters are malformed."}
		}
		return err
	}
	page := AuditPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []AuditEntry{}
	}
	if next != "" {
		page.Next = &next
	}
	return c.JSON(http.StatusOK, page)
}

// Backup writes a consistent copy of the store.
type Backup interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// ErrBackupsNotServed: the store has no hot backup to stream
// (Handlers.Backups is nil: PostgreSQL, backed up by its own tools).
var ErrBackupsNotServed = errors.New("the store is not backed up through the API")

// GetBackup streams a hot backup of the store (operators).
func (h *Handlers) GetBackup(c echo.Context) error {
	if err := tenants.RequireOperator(principal(c)); err != nil {
		return err
	}
	if h.Backups == nil {
		return ErrBackupsNotServed
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, echo.MIMEOctetStream)
	res.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=groupgate-%s.db", now().UTC().Format("20060102T150405Z")))
	res.WriteHeader(http.StatusOK)
	// Once streaming has begun a failure can only cut the body short; the
	// CLI verifies what it received.
	_, err := h.Backups.Backup(c.Request().Context(), res)
	return err
}
