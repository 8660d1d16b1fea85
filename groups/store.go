package groups

import (
	"context"
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Store keeps the group mirror and the operation queue of every tenant. It
// holds data and decides nothing: every rule about what a write means (the
// checks of an enqueue, what an effect does to a group, which reconcile
// change still applies) lives in this package and runs over a Tx inside
// Update (see Ledger). Implementations must be safe for concurrent use and
// durable before returning.
//
// # The transaction contract
//
// Update is what a backend must get right; the domain's invariants
// (idempotency keys, queue limits, quotas, revisions, pending counts) hold
// because of it and nothing else:
//
//   - Atomic: fn's writes are committed together when fn returns nil, and
//     none of them is when fn returns an error (Update then returns that
//     error) or the commit fails.
//   - Serialized per tenant: fn runs as if no other Update of the same
//     tenant ran at the same time, whatever the process (bbolt: its single
//     writer; PostgreSQL: a transaction-scoped advisory lock on the tenant
//     taken first). fn reads what every earlier committed Update wrote.
//   - Durable: once Update returns nil the writes survive a crash.
//   - fn may run more than once (a backend may retry a transaction or a
//     batch of them); only the last run's writes are kept, so fn must derive
//     everything from the Tx and reset anything it accumulates outside it.
//   - fn touches only the records of tenant: its queue and operations, its
//     groups, members, known users, owners and sync time (a group of
//     another tenant reads as ErrNotFound; writing one, or an operation of
//     another tenant, fails). Operations are read by id whatever their
//     tenant, and idempotency records are keyed by the caller's scope.
//
// View runs fn on a consistent snapshot of the tenant's records; fn must
// not write (a backend may refuse it).
//
// The read methods below are plain queries of committed data; they may run
// without the tenant's lock.
type Store interface {
	// Update runs fn in one read-write transaction of tenant's records,
	// under the contract above.
	Update(ctx context.Context, tenant string, fn func(Tx) error) error
	// View runs fn in one read-only transaction of tenant's records.
	View(ctx context.Context, tenant string, fn func(Tx) error) error
	// UpdateOperation applies fn to the stored operation and stores the
	// result in one transaction, serialized with Update of the operation's
	// tenant, and returns it; ErrNotFound (of package queue) if there
	// is none, fn's error if it fails (nothing is written then). fn may run
	// more than once. The operation keeps its place in its queue.
	UpdateOperation(ctx context.Context, id string, fn func(*queue.Operation) error) (queue.Operation, error)

	// Operation returns the operation with id, or queue.ErrNotFound.
	Operation(ctx context.Context, id string) (queue.Operation, error)
	// Heads returns the first operation of each of the tenant's project
	// queues that holds one, in project order; empty when there is none.
	Heads(ctx context.Context, tenant string) ([]queue.Operation, error)
	// Depth returns the tenant's pending counts (see queue.Tx).
	Depth(ctx context.Context, tenant string) (queue.Depth, error)
	// Place returns how many operations of op's project queue have a lower
	// Seq than op, and the tenant's pending counts, read together.
	Place(ctx context.Context, op queue.Operation) (ahead int, depth queue.Depth, err error)
	// Idempotent returns the operation id and fingerprint recorded for
	// scope's key, if one is recorded with Expires after now.
	Idempotent(ctx context.Context, scope, key string, now time.Time) (opID, fingerprint string, ok bool, err error)
	// PurgeIdempotency removes the idempotency records whose Expires is not
	// after now and returns how many it removed.
	PurgeIdempotency(ctx context.Context, now time.Time) (int, error)

	// Group returns the group with name's key in name's project, or
	// ErrNotFound.
	Group(ctx context.Context, name Name) (Group, error)
	// Groups returns the project's groups ordered by key.
	Groups(ctx context.Context, tenant, project string) ([]Group, error)
	// GroupsVersion returns a number that changes whenever a group of the
	// project is written or removed (Tx.PutGroup, Tx.DeleteGroup), 0 before
	// the first, so a reader can keep what it derived from Groups until then.
	GroupsVersion(ctx context.Context, tenant, project string) (uint64, error)
	// ListGroups returns one page of the tenant's groups (of q.Project
	// only, if set) in order of Cursor, after q.After, whose Key starts
	// with q.Prefix, and whether more follow.
	ListGroups(ctx context.Context, tenant string, q PageQuery) ([]Group, bool, error)
	// ListMembers returns one page of the group's members in order of
	// MemberCursor, after q.After, whose MemberCursor starts with q.Prefix,
	// and whether more follow; ErrNotFound if there is no such group.
	// q.Project is ignored. A zero q.Limit means all.
	ListMembers(ctx context.Context, name Name, q PageQuery) ([]User, bool, error)
	// KnownUsers returns the users the tenant's records know (see
	// Tx.PutKnownUsers) among ids, which are lower-cased e-mails or object
	// ids, keyed by the id asked for.
	KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]User, error)
	// GroupsSyncedAt returns the tenant's time set by
	// Tx.SetGroupsSyncedAt; zero if never.
	GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error)
	// DeletedUsers returns the tenant's deleted-user marks (see
	// Tx.PutDeletedUser) stored under ids, keyed by the id asked for.
	DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]DeletedUser, error)
}

// Tx is one tenant's records inside a store transaction (see Store.Update):
// the operation queue (queue.Tx) and the group mirror, with its
// known users and deleted-user marks. Its methods
// are data primitives with no rules; each says what it guarantees. Names
// are found by key (Name.Key: the group part case-insensitively).
type Tx interface {
	queue.Tx

	// Group returns the stored group with name's key in name's project, or
	// ErrNotFound.
	Group(name Name) (Group, error)
	// PutGroup stores g under its name's key exactly as given (Revision
	// included), replacing a stored group, and moves the project's
	// GroupsVersion.
	PutGroup(g Group) error
	// DeleteGroup removes the group with name's key and its member list and
	// moves the project's GroupsVersion; it does nothing if there is none.
	DeleteGroup(name Name) error
	// CountGroups returns how many groups the tenant holds: in project, or
	// in every project when project is "".
	CountGroups(project string) (int, error)
	// Groups returns the tenant's groups in Cursor order: those of project,
	// or of every project when project is "".
	Groups(project string) ([]Group, error)
	// NextRevision returns the next number of the tenant's revision
	// sequence: greater than every number it returned before and than
	// after. Numbers are never handed out twice, even across a group's
	// removal.
	NextRevision(after uint64) (uint64, error)

	// Members returns the group's member list in MemberCursor order; empty
	// if it has none.
	Members(name Name) ([]User, error)
	// PutMember stores u in the group's member list under MemberCursor(u),
	// replacing a member stored under that key.
	PutMember(name Name, u User) error
	// RemoveMember removes the member stored under MemberCursor(u), if any.
	RemoveMember(name Name, u User) error
	// DropMembers removes the group's whole member list.
	DropMembers(name Name) error
	// PutKnownUsers remembers the tenant's users by id and by e-mail, both
	// case-insensitively, for KnownUsers (users with no ID are skipped),
	// replacing what was stored under the user's id: the user's earlier
	// e-mail no longer finds it.
	PutKnownUsers(users []User) error
	// KnownUser returns the known user stored under idOrEmail
	// (case-insensitively): as an id, else as an e-mail; false if none.
	KnownUser(idOrEmail string) (User, bool, error)
	// ForgetKnownUser removes whatever PutKnownUsers stored under
	// idOrEmail, as an id and as an e-mail; what a user has stored under its
	// other key stays.
	ForgetKnownUser(idOrEmail string) error
	// DeletedUsers returns the deleted-user marks stored under ids
	// (case-insensitively), keyed by the id asked for.
	DeletedUsers(ids []string) (map[string]DeletedUser, error)
	// PutDeletedUser stores d as the mark under idOrEmail
	// (case-insensitively), replacing one. The store keeps it until
	// d.Expires, then may forget it (webhooks.Store.PruneDeliveries).
	PutDeletedUser(idOrEmail string, d DeletedUser) error
	// DeleteDeletedUsers removes the marks stored under ids, if any.
	DeleteDeletedUsers(ids ...string) error
	// Owners returns the group's owners record, and false if none.
	Owners(name Name) (Owners, bool, error)
	// PutOwners stores the group's owners record, replacing one.
	PutOwners(name Name, o Owners) error
	// SetGroupsSyncedAt records the tenant's time for GroupsSyncedAt.
	SetGroupsSyncedAt(at time.Time) error
}

// Owners is the record of a group's owners as a reconcile pass read them:
// the upstream id of the group they were read of (a group made again under
// the same name does not show its predecessor's owners), and the owners in
// MemberCursor order.
type Owners struct {
	UpstreamID string
	Users      []User
}
