package records

import (
	"time"

	"github.com/groupgate/groupgate/tenants"
)

// Credential is a stored tenant credential. A sealed credential is stored
// as its ciphertext only.
type Credential struct {
	Kind        string    `json:"kind,omitempty"`
	Ref         string    `json:"ref,omitempty"`
	Sealed      []byte    `json:"sealed,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	SetAt       time.Time `json:"setAt,omitzero"`
}

// NewCredential is c as it is stored.
func NewCredential(c tenants.Credential) Credential {
	return Credential{Kind: string(c.Kind), Ref: c.Ref, Sealed: c.Sealed, Fingerprint: c.Fingerprint, SetAt: c.SetAt}
}

// ToCredential converts the record.
func (r Credential) ToCredential() tenants.Credential {
	return tenants.Credential{Kind: tenants.CredentialKind(r.Kind), Ref: r.Ref, Sealed: r.Sealed, Fingerprint: r.Fingerprint, SetAt: r.SetAt}
}

// TechPass is a tenant's TechPass settings as pgstore keeps them, in the
// tenants table's techpass column. (bbolt's tenant record holds the same
// fields inline, its two first credentials without omitzero.)
type TechPass struct {
	APIURL                string     `json:"apiUrl,omitempty"`
	DirectoryID           string     `json:"directoryId,omitempty"`
	ClientID              string     `json:"clientId,omitempty"`
	TokenURL              string     `json:"tokenUrl,omitempty"`
	ClientSecret          Credential `json:"clientSecret,omitzero"`
	APIKey                Credential `json:"apiKey,omitzero"`
	WebhookSecret         Credential `json:"webhookSecret,omitzero"`
	PreviousWebhookSecret Credential `json:"previousWebhookSecret,omitzero"`
}

// NewTechPass is tp as it is stored, each credential's SetAt in UTC.
func NewTechPass(tp tenants.TechPass) TechPass {
	utc := func(c tenants.Credential) Credential {
		r := NewCredential(c)
		r.SetAt = r.SetAt.UTC()
		return r
	}
	return TechPass{
		APIURL: tp.APIURL, DirectoryID: tp.DirectoryID, ClientID: tp.ClientID, TokenURL: tp.TokenURL,
		ClientSecret: utc(tp.ClientSecret), APIKey: utc(tp.APIKey),
		WebhookSecret: utc(tp.WebhookSecret), PreviousWebhookSecret: utc(tp.PreviousWebhookSecret),
	}
}

// ToTechPass converts the record.
func (r TechPass) ToTechPass() tenants.TechPass {
	return tenants.TechPass{
		APIURL: r.APIURL, DirectoryID: r.DirectoryID, ClientID: r.ClientID, TokenURL: r.TokenURL,
		ClientSecret: r.ClientSecret.ToCredential(), APIKey: r.APIKey.ToCredential(),
		WebhookSecret: r.WebhookSecret.ToCredential(), PreviousWebhookSecret: r.PreviousWebhookSecret.ToCredential(),
	}
}

// Identity is a stored project identity provider.
type Identity struct {
	Issuer       string   `json:"issuer"`
	Audience     string   `json:"audience"`
	JWKSURL      string   `json:"jwksUrl,omitempty"`
	PublicKeys   []string `json:"publicKeys,omitempty"`
	Algorithms   []string `json:"algorithms,omitempty"`
	SubjectClaim string   `json:"subjectClaim,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

// NewIdentity is idp as it is stored.
func NewIdentity(idp tenants.IdentityProvider) Identity {
	return Identity{Issuer: idp.Issuer, Audience: idp.Audience, JWKSURL: idp.JWKSURL, PublicKeys: idp.PublicKeys,
		Algorithms: idp.Algorithms, SubjectClaim: idp.SubjectClaim, Scopes: ScopeStrings(idp.Scopes)}
}

// ToIdentity converts the record.
func (r Identity) ToIdentity() tenants.IdentityProvider {
	return tenants.IdentityProvider{Issuer: r.Issuer, Audience: r.Audience, JWKSURL: r.JWKSURL, PublicKeys: r.PublicKeys,
		Algorithms: r.Algorithms, SubjectClaim: r.SubjectClaim, Scopes: Scopes(r.Scopes)}
}

// ScopeStrings is ss as stored: a slice of strings, empty (not nil) for none.
func ScopeStrings(ss []tenants.Scope) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// Scopes reads stored scopes; none is nil.
func Scopes(ss []string) []tenants.Scope {
	if len(ss) == 0 {
		return nil
	}
	out := make([]tenants.Scope, len(ss))
	for i, s := range ss {
		out[i] = tenants.Scope(s)
	}
	return out
}
