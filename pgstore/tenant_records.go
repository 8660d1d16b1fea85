package pgstore

import "time"

// The JSON documents of the tables (operations, groups, owners, a tenant's
// techpass, a project's identity) are internal/records's, shared with
// boltstore.

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
