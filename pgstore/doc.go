// Package pgstore keeps the service's state in PostgreSQL, so that several
// replicas of the gateway can share one store and coordinate through it.
// bbolt (package boltstore) stays the embedded default for one machine.
//
// It holds tenants, projects and keys (tenants.Store), the audit log
// (audit.Store), the group mirror and the operation queue with
// idempotency records (groups.Store, groups.go: each Update one
// transaction under the tenant's advisory lock, pipelined into a handful of
// round trips), the webhook notices shown in /readyz, and the coordination
// primitives of the per-tenant dispatcher: leases with fencing epochs
// (leases.go) and a Leadership that keeps one renewed and ends the leader's
// context before it could lapse (lead.go), the durable pacing record of
// upstream requests (pacing.go), the live replicas and the spread of
// tenants over them (replicas.go), dispatch.Leases built on them
// (Leading, leading.go; a transaction fenced by a lead's epoch, fence.go),
// and LISTEN/NOTIFY signals with a polling fallback (notify.go; an enqueue
// signals ChannelQueue after its commit, coalesced: wakes.go). The tenants
// generation is kept for Config.GenerationTTL (generation.go), and
// concurrent audit appends share a commit (auditbatch.go).
// Webhook delivery records (webhooks.Store, deliveries.go) commit in the
// mirror's transaction.
//
// # Durability
//
// Every write commits before it returns. Open refuses a server whose
// synchronous_commit is not on (or remote_apply), and every new connection
// of the pool is checked again, so a commit that returned is on disk (and,
// with synchronous replication, on a standby).
// A COMMIT that gets no clear answer (the connection lost, or a FATAL
// answer, which may follow a local commit) is ErrAmbiguousCommit: the
// caller cannot know whether the write is stored, and says so (503 with
// Retry-After) rather than guess.
//
// # Schema
//
// The schema is versioned: migrations/NNNN_name.sql, embedded, applied in
// order at Open in one transaction under an advisory lock, so replicas
// starting together apply each once. The applied versions are rows of
// groupgate_schema; a database at a version newer than this build knows is
// refused (ErrSchemaTooNew) rather than written with an older layout's
// rules.
//
// # Clocks
//
// Whatever must agree across replicas (lease expiry, the start of the last
// upstream request, a Retry-After hold) is timed by the database's clock
// (clock_timestamp()), never a replica's; a replica turns it into a local
// deadline by measuring from before its request (see Lease.Deadline).
//
// # Secrets
//
// The DSN carries no password (Config.Validate refuses one); the password
// comes separately (Config.Password, read by the caller from a file or the
// environment like every other secret). Neither appears in an error or a
// log line of this package.
package pgstore
