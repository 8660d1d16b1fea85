package boltstore

import "time"

// The operation, group, user and owners records are internal/records's,
// shared with pgstore; these are bbolt's own.

// mirrorRecord is what the store keeps about a tenant's mirror as a whole.
type mirrorRecord struct {
	GroupsSyncedAt time.Time `json:"groupsSyncedAt,omitzero"`
}

// idemRecord is a remembered idempotency key: which operation it created,
// for which request, until when.
type idemRecord struct {
	Fingerprint string    `json:"fingerprint"`
	Operation   string    `json:"operation"`
	Expires     time.Time `json:"expires"`
}
