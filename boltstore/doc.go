// Package boltstore keeps the service's state in one bbolt file: the
// operation queue (throttle.Store) and the group mirror (groups.Store), so
// that enqueueing an operation and the mirror change it implies, or an
// operation's outcome and its effects, commit in one transaction.
//
// Every write is fsynced before it returns (bbolt's default), so an
// operation the API has acknowledged survives a crash. Stored records are
// JSON structs of this package, converted to and from domain types at the
// edge of each transaction; bytes never leave a transaction uncopied.
//
// Layout (schema version 1):
//
//	meta                       schema -> "1"
//	ops                        <operation id> -> opRecord
//	queues/<tenant>/<project>  <seq, 8 bytes big-endian> -> operation id
//	                           (the tenant bucket's sequence numbers the queue)
//	groups/<tenant>            <PROJECT> 0x00 <group lower-case> -> groupRecord
//	versions/<tenant>          <PROJECT> -> change counter of the project's groups
//	idempotency/<scope>        <key> -> idemRecord
//	tenants                    <TENANT> -> tenantRecord (credentials sealed or by reference)
//	projects/<tenant>          <PROJECT> -> projectRecord
//	keys                       <key id> -> keyRecord (hash only)
//	audit                      <entry id> -> audit record (ids sort by time)
//	audit_tenant/<tenant>      <entry id> -> "" (index for tenant-scoped queries)
//
// Writers that arrive together share one transaction (see write), so one
// fsync serves many concurrent enqueues.
package boltstore
