package boltstore

import (
	"encoding/hex"
	"sort"
	"time"

	"github.com/groupgate/groupgate/tenants"
)

// tenantRecord is how a tenant is stored. Sealed credentials are stored as
// their ciphertext only.
type tenantRecord struct {
	Name         string           `json:"name"`
	Disabled     bool             `json:"disabled,omitempty"`
	GroupLimit   int              `json:"groupLimit"`
	IntervalNs   int64            `json:"intervalNs"`
	APIURL       string           `json:"apiUrl,omitempty"`
	DirectoryID  string           `json:"directoryId,omitempty"`
	ClientID     string           `json:"clientId,omitempty"`
	TokenURL     string           `json:"tokenUrl,omitempty"`
	ClientSecret credentialRecord `json:"clientSecret"`
	APIKey       credentialRecord `json:"apiKey"`
	// The webhook secrets, absent in files written before webhooks.
	WebhookSecret         credentialRecord `json:"webhookSecret,omitzero"`
	PreviousWebhookSecret credentialRecord `json:"previousWebhookSecret,omitzero"`
	CreatedAt             time.Time        `json:"createdAt"`
	UpdatedAt             time.Time        `json:"updatedAt"`
}

type credentialRecord struct {
	Kind        string    `json:"kind,omitempty"`
	Ref         string    `json:"ref,omitempty"`
	Sealed      []byte    `json:"sealed,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	SetAt       time.Time `json:"setAt,omitzero"`
}

func newCredentialRecord(c tenants.Credential) credentialRecord {
	return credentialRecord{Kind: string(c.Kind), Ref: c.Ref, Sealed: c.Sealed, Fingerprint: c.Fingerprint, SetAt: c.SetAt}
}

func (r credentialRecord) credential() tenants.Credential {
	return tenants.Credential{Kind: tenants.CredentialKind(r.Kind), Ref: r.Ref, Sealed: r.Sealed, Fingerprint: r.Fingerprint, SetAt: r.SetAt}
}

func newTenantRecord(t tenants.Tenant) tenantRecord {
	return tenantRecord{
		Name: t.Name, Disabled: t.Disabled, GroupLimit: t.GroupLimit, IntervalNs: int64(t.Interval),
		APIURL: t.TechPass.APIURL, DirectoryID: t.TechPass.DirectoryID, ClientID: t.TechPass.ClientID, TokenURL: t.TechPass.TokenURL,
		ClientSecret: newCredentialRecord(t.TechPass.ClientSecret), APIKey: newCredentialRecord(t.TechPass.APIKey),
		WebhookSecret: newCredentialRecord(t.TechPass.WebhookSecret), PreviousWebhookSecret: newCredentialRecord(t.TechPass.PreviousWebhookSecret),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func (r tenantRecord) tenant() tenants.Tenant {
	return tenants.Tenant{
		Name: r.Name, Disabled: r.Disabled, GroupLimit: r.GroupLimit, Interval: time.Duration(r.IntervalNs),
		TechPass: tenants.TechPass{
			APIURL: r.APIURL, DirectoryID: r.DirectoryID, ClientID: r.ClientID, TokenURL: r.TokenURL,
			ClientSecret: r.ClientSecret.credential(), APIKey: r.APIKey.credential(),
			WebhookSecret: r.WebhookSecret.credential(), PreviousWebhookSecret: r.PreviousWebhookSecret.credential(),
		},
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

type projectRecord struct {
	Name       string          `json:"name"`
	Disabled   bool            `json:"disabled,omitempty"`
	GroupQuota int             `json:"groupQuota"`
	Identity   *identityRecord `json:"identity,omitempty"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

type identityRecord struct {
	Issuer       string   `json:"issuer"`
	Audience     string   `json:"audience"`
	JWKSURL      string   `json:"jwksUrl,omitempty"`
	PublicKeys   []string `json:"publicKeys,omitempty"`
	Algorithms   []string `json:"algorithms,omitempty"`
	SubjectClaim string   `json:"subjectClaim,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

func newProjectRecord(p tenants.Project) projectRecord {
	r := projectRecord{Name: p.Name, Disabled: p.Disabled, GroupQuota: p.GroupQuota, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if idp := p.Identity; idp != nil {
		r.Identity = &identityRecord{Issuer: idp.Issuer, Audience: idp.Audience, JWKSURL: idp.JWKSURL, PublicKeys: idp.PublicKeys,
			Algorithms: idp.Algorithms, SubjectClaim: idp.SubjectClaim, Scopes: scopeStrings(idp.Scopes)}
	}
	return r
}

func (r projectRecord) project(tenant string) tenants.Project {
	p := tenants.Project{Tenant: tenant, Name: r.Name, Disabled: r.Disabled, GroupQuota: r.GroupQuota, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if idp := r.Identity; idp != nil {
		p.Identity = &tenants.IdentityProvider{Issuer: idp.Issuer, Audience: idp.Audience, JWKSURL: idp.JWKSURL, PublicKeys: idp.PublicKeys,
			Algorithms: idp.Algorithms, SubjectClaim: idp.SubjectClaim, Scopes: scopes(idp.Scopes)}
	}
	return p
}

type keyRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Tenant     string    `json:"tenant,omitempty"`
	Project    string    `json:"project,omitempty"`
	Scopes     []string  `json:"scopes,omitempty"`
	Hash       string    `json:"hash"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt,omitzero"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
}

func newKeyRecord(k tenants.Key) keyRecord {
	return keyRecord{ID: k.ID, Name: k.Name, Role: string(k.Role), Tenant: k.Tenant, Project: k.Project, Scopes: scopeStrings(k.Scopes),
		Hash: hex.EncodeToString(k.Hash[:]), CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
		RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

func (r keyRecord) key() tenants.Key {
	k := tenants.Key{ID: r.ID, Name: r.Name, Role: tenants.Role(r.Role), Tenant: r.Tenant, Project: r.Project, Scopes: scopes(r.Scopes),
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt}
	if b, err := hex.DecodeString(r.Hash); err == nil && len(b) == len(k.Hash) {
		copy(k.Hash[:], b)
	}
	return k
}

func scopeStrings(ss []tenants.Scope) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func scopes(ss []string) []tenants.Scope {
	if len(ss) == 0 {
		return nil
	}
	out := make([]tenants.Scope, len(ss))
	for i, s := range ss {
		out[i] = tenants.Scope(s)
	}
	return out
}

func sortKeys(ks []tenants.Key) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].CreatedAt.Equal(ks[j].CreatedAt) {
			return ks[i].CreatedAt.Before(ks[j].CreatedAt)
		}
		return ks[i].ID < ks[j].ID
	})
}
