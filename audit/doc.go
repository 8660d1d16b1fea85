// Package audit keeps the accountable record of what happened: every
// mutating API call (accepted or denied) and every upstream outcome of a
// queued operation, who caused it, in which tenant and project, and how it
// ended. Tenant admins read their own tenant's record and operators read
// everything, so the record must be append-only, queryable by tenant without
// scanning the whole log, and free of secrets.
//
// A Log is what the rest of the service uses: Record stamps an Entry with a
// time-ordered ID and stores it, without ever failing the caller's request;
// Query pages through entries newest first with an opaque cursor; Purge
// applies the retention period. The Log sits on a Store, which every
// storage backend implements and proves with the conformance suite in
// package audittest.
//
// # IDs and time
//
// An ID is 24 lower-case hex digits: the entry's instant as 8 bytes of
// big-endian Unix nanoseconds, then a 4-byte sequence number. IDs therefore
// sort by time as plain strings (or bytes), a backend can use them as its
// primary key and turn a time bound into a key bound, and an entry's Time is
// exactly the instant in its ID. A Log issues strictly increasing IDs: two
// entries in the same nanosecond differ in the sequence number, and if the
// wall clock steps back the Log keeps issuing IDs (and Times) just after the
// last one until the clock catches up. Each new nanosecond starts the
// sequence at a random point below 2³¹, so two Logs writing to one store
// (two replicas) practically never collide; if they do, the store refuses the
// duplicate and Record retries with a new ID.
//
// # Secrets
//
// An entry never holds a secret, key, token or request body. The callers are
// responsible for not putting them there; as a second line of defence every
// string field is passed through Sanitize, which redacts anything shaped like
// an API key secret, a JWT or an Authorization header value, and stores
// refuse entries whose fields are not already sanitized (Entry.Validate).
package audit
