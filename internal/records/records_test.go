package records

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/tenants"
)

// roundTrip decodes doc (bytes as boltstore and pgstore wrote them before
// the records were shared), converts it to the domain type and back, and
// requires the same bytes again.
func roundTrip[R any, D any](t *testing.T, doc string, to func(R) D, from func(D) R) D {
	t.Helper()
	var r R
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	d := to(r)
	got, err := json.Marshal(from(d))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != doc {
		t.Errorf("encoded again:\n got %s\nwant %s", got, doc)
	}
	return d
}

func TestOperationBytes(t *testing.T) {
	const doc = `{"id":"0abc","tenant":"ACME","project":"PAY","kind":"create","target":"ops","payload":"eyJ4IjoxfQ==",` +
		`"actor":"key:k1","state":"failed","seq":7,"attempts":3,"failures":2,"notBefore":"2026-01-02T03:04:05Z",` +
		`"lastError":"boom","failure":{"status":409,"title":"Conflict","detail":"taken"},` +
		`"createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:06.5Z","startedAt":"2026-01-02T03:04:01Z",` +
		`"finishedAt":"2026-01-02T03:04:06.5Z","failingSince":"2026-01-02T03:04:02Z"}`
	op := roundTrip(t, doc, Operation.ToOperation, NewOperation)
	if op.State != queue.State("failed") || op.Failure == nil || op.Failure.Status != 409 || string(op.Payload) != `{"x":1}` || op.Seq != 7 {
		t.Errorf("operation = %+v", op)
	}
	roundTrip(t, `{"id":"0abd","tenant":"ACME","project":"PAY","kind":"create","target":"ops","state":"queued","seq":1,"attempts":0,`+
		`"createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:00Z"}`, Operation.ToOperation, NewOperation)
}

func TestGroupBytes(t *testing.T) {
	const doc = `{"project":"PAY","group":"ops","description":"on call","state":"active","upstreamId":"u-1",` +
		`"pendingOp":"0abc","pendingUpdate":"0abd","revision":4,"syncedAt":"2026-01-02T03:04:05Z",` +
		`"membersSyncedAt":"2026-01-02T03:04:06Z","membersVersion":2,"memberCount":3,"pendingMembers":1,` +
		`"confirmedDescription":"","createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:07Z"}`
	to := func(r Group) groups.Group { return r.ToGroup("ACME") }
	g := roundTrip(t, doc, to, NewGroup)
	if g.Name != (groups.Name{Tenant: "ACME", Project: "PAY", Group: "ops"}) || g.Revision != 4 || !g.DescriptionConfirmed || g.ConfirmedDescription != "" {
		t.Errorf("group = %+v", g)
	}

	// A bbolt record written before revisions existed reads as revision 1.
	var old Group
	if err := json.Unmarshal([]byte(`{"project":"PAY","group":"ops","description":"","state":"active","createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:00Z"}`), &old); err != nil {
		t.Fatal(err)
	}
	if g := old.ToGroup("ACME"); g.Revision != 1 || g.DescriptionConfirmed {
		t.Errorf("old group = %+v", g)
	}
}

func TestUserAndOwnersBytes(t *testing.T) {
	roundTrip(t, `{"id":"u1","email":"a@example.com","displayName":"A"}`, User.ToUser, NewUser)
	roundTrip(t, `{"id":"u2","email":"b@example.com"}`, User.ToUser, NewUser)
	o := roundTrip(t, `{"upstreamId":"g-1","owners":[{"id":"u1","email":"a@example.com","displayName":"A"}]}`, Owners.ToOwners, NewOwners)
	if o.UpstreamID != "g-1" || len(o.Users) != 1 || o.Users[0].DisplayName != "A" {
		t.Errorf("owners = %+v", o)
	}
	roundTrip(t, `{"upstreamId":"g-1","owners":[]}`, Owners.ToOwners, NewOwners)

	// pgstore wrote an empty upstream id with omitempty; it reads the same.
	var r Owners
	if err := json.Unmarshal([]byte(`{"owners":[]}`), &r); err != nil {
		t.Fatal(err)
	}
	if o := r.ToOwners(); o.UpstreamID != "" || len(o.Users) != 0 {
		t.Errorf("owners = %+v", o)
	}
}

func TestTechPassBytes(t *testing.T) {
	const doc = `{"apiUrl":"https://api.example","directoryId":"d","clientId":"c","tokenUrl":"https://login.example/token",` +
		`"clientSecret":{"kind":"sealed","sealed":"AAEC","fingerprint":"fp1","setAt":"2026-01-02T03:04:05Z"},` +
		`"apiKey":{"kind":"file","ref":"/run/key","fingerprint":"fp2"},` +
		`"webhookSecret":{"kind":"env","ref":"WH"}}`
	tp := roundTrip(t, doc, TechPass.ToTechPass, NewTechPass)
	if tp.ClientSecret.Kind != tenants.CredentialKind("sealed") || string(tp.ClientSecret.Sealed) != "\x00\x01\x02" || tp.PreviousWebhookSecret.Kind != "" {
		t.Errorf("techpass = %+v", tp)
	}
	// pgstore keeps SetAt in UTC.
	tp.APIKey.SetAt = time.Date(2026, 1, 2, 11, 4, 5, 0, time.FixedZone("SGT", 8*3600))
	if got := NewTechPass(tp).APIKey.SetAt; got.Location() != time.UTC || !got.Equal(tp.APIKey.SetAt) {
		t.Errorf("SetAt = %v", got)
	}
	// bbolt's tenant record holds credentials as they are (its SetAt unchanged).
	c := roundTrip(t, `{"kind":"sealed","sealed":"AAEC","setAt":"2026-01-02T11:04:05+08:00"}`, Credential.ToCredential, NewCredential)
	if _, off := c.SetAt.Zone(); off != 8*3600 {
		t.Errorf("credential SetAt = %v", c.SetAt)
	}
}

func TestIdentityBytes(t *testing.T) {
	const doc = `{"issuer":"https://idp.example","audience":"groupgate","jwksUrl":"https://idp.example/jwks",` +
		`"algorithms":["RS256"],"subjectClaim":"sub","scopes":["groups:read","groups:write"]}`
	idp := roundTrip(t, doc, Identity.ToIdentity, NewIdentity)
	if len(idp.Scopes) != 2 || idp.Scopes[1] != tenants.Scope("groups:write") {
		t.Errorf("identity = %+v", idp)
	}
	roundTrip(t, `{"issuer":"i","audience":"a","publicKeys":["-----BEGIN PUBLIC KEY-----"]}`, Identity.ToIdentity, NewIdentity)
	if got := ScopeStrings(nil); got == nil || len(got) != 0 {
		t.Errorf("ScopeStrings(nil) = %#v, want empty", got)
	}
	if got := Scopes([]string{}); got != nil {
		t.Errorf("Scopes(empty) = %#v, want nil", got)
	}
}
