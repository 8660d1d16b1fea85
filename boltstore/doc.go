// Package boltstore keeps the service's state in one bbolt file. For the
// group mirror and the operation queue it implements groups.Store: records
// and a transaction (Update over groups.Tx) and nothing else. It decides no
// domain question: the rules (enqueue checks, what an effect or a reconcile
// change does to a group, revisions) are groups.Ledger's, run inside
// Update, so that enqueueing an operation and the mirror change it implies,
// or an operation's outcome and its effects, commit in one transaction.
//
// Every write is fsynced before it returns (bbolt's default), so an
// operation the API has acknowledged survives a crash. Stored records are
// JSON structs (internal/records's where pgstore keeps the same document,
// this package's otherwise), converted to and from domain types at the
// edge of each transaction; bytes never leave a transaction uncopied.
//
// Layout (schema version 1; the members, users and mirror buckets and the
// newer records.Group fields were added within it: Open creates the buckets,
// and a record without the fields reads as zero values):
//
//	meta                       schema -> "1"
//	ops                        <operation id> -> records.Operation
//	queues/<tenant>/<project>  <seq, 8 bytes big-endian> -> operation id
//	                           (the tenant bucket's sequence numbers the queue)
//	groups/<tenant>            <PROJECT> 0x00 <group lower-case> -> records.Group
//	versions/<tenant>          <PROJECT> -> change counter of the project's groups
//	members/<tenant>/<PROJECT> 0x00 <group lower-case>
//	                           <e-mail lower-case> 0x00 <user id> -> records.User
//	                           (the group's key; dropped with the group)
//	users/<tenant>             "e" 0x00 <e-mail lower-case> -> records.User
//	                           "i" 0x00 <user id lower-case> -> records.User
//	                           (users resolved or seen as members, for KnownUsers)
//	                           "d" 0x00 <user id or e-mail lower-case> -> deletedRecord
//	                           (deleted-user marks, kept until their expiry)
//	mirror                     <TENANT> -> mirrorRecord (when the group list was last read whole)
//	webhooks/<tenant>          <delivery digest> -> expiry (8 bytes, Unix ns)
//	                           [+ pending webhooks.Applied in JSON]
//	webhookNotices/<tenant>    <kind> -> noticeRecord
//	owners/<tenant>            <PROJECT> 0x00 <group lower-case> -> records.Owners
//	pending/<tenant>           <PROJECT> -> count of operations on its queue (8 bytes)
//	idempotency/<scope>        <key> -> idemRecord
//	tenants                    <TENANT> -> tenantRecord (credentials sealed or by reference)
//	projects/<tenant>          <PROJECT> -> projectRecord
//	keys                       <key id> -> keyRecord (hash only)
//	audit                      <entry id> -> audit record (ids sort by time)
//	audit_tenant/<tenant>      <entry id> -> "" (index for tenant-scoped queries)
//
// A group is stored as the domain hands it over (groups.Ledger sets its
// Revision from the tenant's sequence, the groups bucket's, through
// NextRevision). Every write of a group moves its project's change counter
// (versions), member changes and sync times included, since lists show
// them. The pending counts move with
// every Append and Unqueue in the same transaction; Open also rebuilds them
// from the queues, which repairs a file last written by a build that did
// not keep them (one process holds the file, so nothing else writes then).
//
// Writers that arrive together share one transaction (see write), so one
// fsync serves many concurrent enqueues.
package boltstore
