package boltstore

import (
	"encoding/hex"
	"sort"
	"time"

	"github.com/groupgate/groupgate/internal/records"
	"github.com/groupgate/groupgate/tenants"
)

// tenantRecord is how a tenant is stored. Sealed credentials are stored as
// their ciphertext only.
type tenantRecord struct {
	Name         string             `json:"name"`
	Disabled     bool               `json:"disabled,omitempty"`
	GroupLimit   int                `json:"groupLimit"`
	IntervalNs   int64              `json:"intervalNs"`
	APIURL       string             `json:"apiUrl,omitempty"`
	DirectoryID  string             `json:"directoryId,omitempty"`
	ClientID     string             `json:"clientId,omitempty"`
	TokenURL     string             `json:"tokenUrl,omitempty"`
	ClientSecret records.Credential `json:"clientSecret"`
	APIKey       records.Credential `json:"apiKey"`
	// The webhook secrets, absent in files written before webhooks.
	WebhookSecret         records.Credential `json:"webhookSecret,omitzero"`
	PreviousWebhookSecret records.Credential `json:"previousWebhookSecret,omitzero"`
	CreatedAt             time.Time          `json:"createdAt"`
	UpdatedAt             time.Time          `json:"updatedAt"`
}

func newTenantRecord(t tenants.Tenant) tenantRecord {
	return tenantRecord{
		Name: t.Name, Disabled: t.Disabled, GroupLimit: t.GroupLimit, IntervalNs: int64(t.Interval),
		APIURL: t.TechPass.APIURL, DirectoryID: t.TechPass.DirectoryID, ClientID: t.TechPass.ClientID, TokenURL: t.TechPass.TokenURL,
		ClientSecret: records.NewCredential(t.TechPass.ClientSecret), APIKey: records.NewCredential(t.TechPass.APIKey),
		WebhookSecret: records.NewCredential(t.TechPass.WebhookSecret), PreviousWebhookSecret: records.NewCredential(t.TechPass.PreviousWebhookSecret),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func (r tenantRecord) tenant() tenants.Tenant {
	return tenants.Tenant{
		Name: r.Name, Disabled: r.Disabled, GroupLimit: r.GroupLimit, Interval: time.Duration(r.IntervalNs),
		TechPass: tenants.TechPass{
			APIURL: r.APIURL, DirectoryID: r.DirectoryID, ClientID: r.ClientID, TokenURL: r.TokenURL,
			ClientSecret: r.ClientSecret.ToCredential(), APIKey: r.APIKey.ToCredential(),
			WebhookSecret: r.WebhookSecret.ToCredential(), PreviousWebhookSecret: r.PreviousWebhookSecret.ToCredential(),
		},
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

type projectRecord struct {
	Name       string            `json:"name"`
	Disabled   bool              `json:"disabled,omitempty"`
	GroupQuota int               `json:"groupQuota"`
	Identity   *records.Identity `json:"identity,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
	UpdatedAt  time.Time         `json:"updatedAt"`
}

func newProjectRecord(p tenants.Project) projectRecord {
	r := projectRecord{Name: p.Name, Disabled: p.Disabled, GroupQuota: p.GroupQuota, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if idp := p.Identity; idp != nil {
		ri := records.NewIdentity(*idp)
		r.Identity = &ri
	}
	return r
}

func (r projectRecord) project(tenant string) tenants.Project {
	p := tenants.Project{Tenant: tenant, Name: r.Name, Disabled: r.Disabled, GroupQuota: r.GroupQuota, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if idp := r.Identity; idp != nil {
		pi := idp.ToIdentity()
		p.Identity = &pi
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
	return keyRecord{ID: k.ID, Name: k.Name, Role: string(k.Role), Tenant: k.Tenant, Project: k.Project, Scopes: records.ScopeStrings(k.Scopes),
		Hash: hex.EncodeToString(k.Hash[:]), CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
		RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

func (r keyRecord) key() tenants.Key {
	k := tenants.Key{ID: r.ID, Name: r.Name, Role: tenants.Role(r.Role), Tenant: r.Tenant, Project: r.Project, Scopes: records.Scopes(r.Scopes),
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt}
	if b, err := hex.DecodeString(r.Hash); err == nil && len(b) == len(k.Hash) {
		copy(k.Hash[:], b)
	}
	return k
}

func sortKeys(ks []tenants.Key) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].CreatedAt.Equal(ks[j].CreatedAt) {
			return ks[i].CreatedAt.Before(ks[j].CreatedAt)
		}
		return ks[i].ID < ks[j].ID
	})
}
