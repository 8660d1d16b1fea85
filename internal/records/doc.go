// Package records holds the JSON documents both stores keep: an operation,
// a mirrored group, a user, a group's owners, a tenant's TechPass settings
// and credentials, and a project's identity provider, each with its
// conversion to and from the domain type. boltstore keeps them as bbolt
// values and pgstore as the doc columns of its tables, so one document reads
// the same in either store (and copies between them as it is).
//
// Field names and their omitempty/omitzero tags are the stores' format:
// change them only with a schema migration in both stores. records_test.go
// holds each document as the stores write it today.
package records
