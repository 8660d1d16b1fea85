package pgstore

import (
	"time"

	"github.com/groupgate/groupgate/tenants"
)

// The JSON documents of the tenants and projects tables. Field names are
// part of the schema.

// techPassRecord is a tenant's techpass column. Sealed credentials are
// their ciphertext only.
type techPassRecord struct {
	APIURL                string           `json:"apiUrl,omitempty"`
	DirectoryID           string           `json:"directoryId,omitempty"`
	ClientID              string           `json:"clientId,omitempty"`
	TokenURL              string           `json:"tokenUrl,omitempty"`
	ClientSecret          credentialRecord `json:"clientSecret,omitzero"`
	APIKey                credentialRecord `json:"apiKey,omitzero"`
	WebhookSecret         credentialRecord `json:"webhookSecret,omitzero"`
	PreviousWebhookSecret credentialRecord `json:"previousWebhookSecret,omitzero"`
}

type credentialRecord struct {
	Kind        string    `json:"kind,omitempty"`
	Ref         string    `json:"ref,omitempty"`
	Sealed      []byte    `json:"sealed,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	SetAt       time.Time `json:"setAt,omitzero"`
}

func newCredentialRecord(c tenants.Credential) credentialRecord {
	return credentialRecord{Kind: string(c.Kind), Ref: c.Ref, Sealed: c.Sealed, Fingerprint: c.Fingerprint, SetAt: c.SetAt.UTC()}
}

func (r credentialRecord) credential() tenants.Credential {
	return tenants.Credential{Kind: tenants.CredentialKind(r.Kind), Ref: r.Ref, Sealed: r.Sealed, Fingerprint: r.Fingerprint, SetAt: r.SetAt}
}

func newTechPassRecord(tp tenants.TechPass) techPassRecord {
	return techPassRecord{
		APIURL: tp.APIURL, DirectoryID: tp.DirectoryID, ClientID: tp.ClientID, TokenURL: tp.TokenURL,
		ClientSecret: newCredentialRecord(tp.ClientSecret), APIKey: newCredentialRecord(tp.APIKey),
		WebhookSecret: newCredentialRecord(tp.WebhookSecret), PreviousWebhookSecret: newCredentialRecord(tp.PreviousWebhookSecret),
	}
}

func (r techPassRecord) techPass() tenants.TechPass {
	return tenants.TechPass{
		APIURL: r.APIURL, DirectoryID: r.DirectoryID, ClientID: r.ClientID, TokenURL: r.TokenURL,
		ClientSecret: r.ClientSecret.credential(), APIKey: r.APIKey.credential(),
		WebhookSecret: r.WebhookSecret.credential(), PreviousWebhookSecret: r.PreviousWebhookSecret.credential(),
	}
}

// identityRecord is a project's identity column.
type identityRecord struct {
	Issuer       string   `json:"issuer"`
	Audience     string   `json:"audience"`
	JWKSURL      string   `json:"jwksUrl,omitempty"`
	PublicKeys   []string `json:"publicKeys,omitempty"`
	Algorithms   []string `json:"algorithms,omitempty"`
	SubjectClaim string   `json:"subjectClaim,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

func newIdentityRecord(idp tenants.IdentityProvider) identityRecord {
	return identityRecord{Issuer: idp.Issuer, Audience: idp.Audience, JWKSURL: idp.JWKSURL, PublicKeys: idp.PublicKeys,
		Algorithms: idp.Algorithms, SubjectClaim: idp.SubjectClaim, Scopes: scopeStrings(idp.Scopes)}
}

func (r identityRecord) identity() tenants.IdentityProvider {
	return tenants.IdentityProvider{Issuer: r.Issuer, Audience: r.Audience, JWKSURL: r.JWKSURL, PublicKeys: r.PublicKeys,
		Algorithms: r.Algorithms, SubjectClaim: r.SubjectClaim, Scopes: scopes(r.Scopes)}
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

// nullTime stores the zero time as NULL; PostgreSQL keeps microseconds.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// timeOf reads a nullable timestamp, in UTC.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
