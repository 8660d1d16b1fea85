package boltstore

import (
	"encoding/json"
	"testing"
)

// TestTenantRecordBytes: a tenant, project and key as bbolt files hold them
// decode and encode again to the same bytes; their credentials and identity
// provider are internal/records's.
func TestTenantRecordBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  string
		trip func([]byte) (any, error)
	}{
		{"tenant", `{"name":"SHIP","groupLimit":50,"intervalNs":1000000000,"apiUrl":"https://api.example","directoryId":"d",` +
			`"clientId":"c","tokenUrl":"https://login.example/token",` +
			`"clientSecret":{"kind":"sealed","sealed":"AAEC","fingerprint":"fp1","setAt":"2026-01-02T11:04:05+08:00"},` +
			`"apiKey":{},"webhookSecret":{"kind":"env","ref":"WH"},` +
			`"createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:05Z"}`,
			func(b []byte) (any, error) {
				var r tenantRecord
				err := json.Unmarshal(b, &r)
				return newTenantRecord(r.tenant()), err
			}},
		{"project", `{"name":"MOH","disabled":true,"groupQuota":10,"identity":{"issuer":"https://idp.example","audience":"gg",` +
			`"jwksUrl":"https://idp.example/jwks","algorithms":["RS256"],"scopes":["groups:read"]},` +
			`"createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:05Z"}`,
			func(b []byte) (any, error) {
				var r projectRecord
				err := json.Unmarshal(b, &r)
				return newProjectRecord(r.project("SHIP")), err
			}},
		{"project without identity", `{"name":"HR","groupQuota":0,"createdAt":"2026-01-02T03:04:00Z","updatedAt":"2026-01-02T03:04:00Z"}`,
			func(b []byte) (any, error) {
				var r projectRecord
				err := json.Unmarshal(b, &r)
				return newProjectRecord(r.project("SHIP")), err
			}},
		{"key", `{"id":"k1","name":"ci","role":"project","tenant":"SHIP","project":"MOH","scopes":["groups:write"],` +
			`"hash":"` + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" + `","createdBy":"admin",` +
			`"createdAt":"2026-01-02T03:04:00Z","expiresAt":"2027-01-02T03:04:00Z"}`,
			func(b []byte) (any, error) {
				var r keyRecord
				err := json.Unmarshal(b, &r)
				return newKeyRecord(r.key()), err
			}},
	} {
		again, err := c.trip([]byte(c.doc))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.doc {
			t.Errorf("%s encoded again:\n got %s\nwant %s", c.name, got, c.doc)
		}
	}
}
