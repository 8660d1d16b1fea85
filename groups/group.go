package groups

import (
	"context"
	"strings"
	"time"

	"github.com/groupgate/groupgate/throttle"
)

// State is where a group is in its life, as the mirror knows it.
type State string

// The states of a group in the mirror.
const (
	// Creating: a create operation is queued or running.
	Creating State = "creating"
	// Active: the group exists in TechPass.
	Active State = "active"
	// Deleting: a delete operation is queued or running.
	Deleting State = "deleting"
)

// Group is a project's group as the local mirror knows it.
type Group struct {
	Name        Name
	Description string
	State       State
	// UpstreamID is TechPass's id for the group, empty until it is created.
	UpstreamID string
	// PendingOperation is the id of the queued or running create or delete
	// of the group, if any.
	PendingOperation string
	// PendingUpdate is the id of the last queued description update not yet
	// settled, if any; the reconciler leaves the description alone then.
	PendingUpdate string
	// ConfirmedDescription is the description TechPass last confirmed (at
	// creation, by an update, or read by a reconcile pass), valid when
	// DescriptionConfirmed; a failed update restores it.
	ConfirmedDescription string
	DescriptionConfirmed bool
	// Revision identifies the group's settings (description, state,
	// upstream id): the store increases it whenever one of them changes, and
	// the HTTP edge serves it as the ETag. Member changes do not move it.
	Revision uint64
	// SyncedAt is when TechPass last confirmed the group (its creation, or
	// a reconcile pass that saw it); zero if never.
	SyncedAt time.Time
	// MembersSyncedAt is when the mirror last knew the group's whole member
	// list from TechPass (empty at creation, or read by a reconcile pass);
	// zero if never.
	MembersSyncedAt time.Time
	// MembersVersion increases whenever the mirror's member list of the
	// group changes.
	MembersVersion uint64
	// MemberCount is how many members the mirror holds.
	MemberCount int
	// PendingMembers counts the group's member changes queued or running;
	// while there are any, neither a request nor the reconciler may take
	// the member list as settled.
	PendingMembers int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Store keeps the group mirror and enqueues operations atomically with the
// mirror change they imply. Implementations must be safe for concurrent use
// and durable before returning.
type Store interface {
	// CreatePending stores g (in state Creating) and enqueues op, in one
	// transaction. It first applies the enqueue checks of throttle.Store
	// (idempotent replay, queue limits), then returns ErrExists if the
	// project already has a group with g's key, ErrQuota if the project
	// already has limits.ProjectQuota groups and ErrLimit if the tenant
	// already has limits.Groups groups (pending creates included).
	CreatePending(ctx context.Context, g Group, op throttle.Operation, limits Limits) (throttle.Operation, error)
	// DeletePending marks the group Deleting and enqueues op, in one
	// transaction, after the enqueue checks of throttle.Store. It returns
	// ErrNotFound if there is no such group and ErrPending if the group is
	// not Active.
	DeletePending(ctx context.Context, name Name, op throttle.Operation, limits throttle.Limits) (throttle.Operation, error)
	// Group returns the group with name's key in name's project, or
	// ErrNotFound.
	Group(ctx context.Context, name Name) (Group, error)
	// Groups returns the project's groups ordered by key.
	Groups(ctx context.Context, tenant, project string) ([]Group, error)
	// GroupsVersion returns a number that changes whenever the project's
	// groups change (0 before the first change), so a reader can keep what
	// it derived from Groups until then.
	GroupsVersion(ctx context.Context, tenant, project string) (uint64, error)

	// UpdatePending sets the group's description and PendingUpdate to op's
	// id and enqueues op, in one transaction, after the enqueue checks of
	// throttle.Store. With ifRevision not 0 it first returns ErrRevision
	// unless the group's Revision is ifRevision. It returns ErrNotFound if
	// there is no such group and ErrPending if the group is Deleting, and
	// the group as stored.
	UpdatePending(ctx context.Context, name Name, description string, ifRevision uint64, op throttle.Operation, limits throttle.Limits) (Group, throttle.Operation, error)
	// QueueMembers enqueues op, a member change of the group, and counts it
	// in the group's PendingMembers, after the enqueue checks of
	// throttle.Store; ErrNotFound if there is no such group, ErrPending if
	// it is Deleting. With idle set, it returns ErrStale (writing nothing)
	// unless the group is idle at idle.Version (see Idle): the change was
	// worked out from that member list.
	QueueMembers(ctx context.Context, name Name, op throttle.Operation, limits throttle.Limits, idle *Idle) (throttle.Operation, error)
	// RecordMembers stores op, a member change already in a final state,
	// without queueing it (work the mirror showed was done), if the group
	// is idle at idle.Version, and returns ErrStale otherwise;
	// ErrNotFound if there is no such group. The idempotency check of
	// throttle.Store.Enqueue applies (a *throttle.ReplayError or
	// throttle.ErrIdempotencyMismatch); queue limits do not.
	RecordMembers(ctx context.Context, name Name, op throttle.Operation, idle Idle) (throttle.Operation, error)

	// ListGroups returns one page of the tenant's groups (of q.Project
	// only, if set) in order of Cursor, after q.After, whose Key starts
	// with q.Prefix, and whether more follow.
	ListGroups(ctx context.Context, tenant string, q PageQuery) ([]Group, bool, error)
	// ListMembers returns one page of the group's members in the mirror in
	// order of MemberCursor, after q.After, whose lower-cased e-mail starts
	// with q.Prefix, and whether more follow; ErrNotFound if there is no such
	// group. q.Project is ignored. A zero q.Limit means all.
	ListMembers(ctx context.Context, name Name, q PageQuery) ([]User, bool, error)
	// KnownUsers returns the users the tenant's mirror knows (members of
	// any of its groups, or resolved earlier) among ids, which are
	// lower-cased e-mails or object ids, keyed by the id asked for.
	KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]User, error)

	// SyncGroups applies the changes a reconcile pass found in the
	// tenant's group list, each only if its precondition still holds (see
	// GroupChange), sets the tenant's GroupsSyncedAt to at and the SyncedAt
	// of every group in seen (by Cursor key) to at, in one transaction; a
	// seen group with no update pending has its description confirmed. It
	// returns the changes it applied.
	SyncGroups(ctx context.Context, tenant string, changes []GroupChange, seen []Name, at time.Time) ([]GroupChange, error)
	// SyncMembers replaces the group's member list with users if it is
	// still the group with upstreamID (not one made again since), its
	// MembersVersion is still version and no member change is pending
	// (PendingMembers is 0), and sets MembersSyncedAt to at, in one
	// transaction. It returns who was added and removed, and ok false
	// (changing nothing) otherwise.
	SyncMembers(ctx context.Context, name Name, upstreamID string, version uint64, users []User, at time.Time) (added, removed []User, ok bool, err error)
	// SyncOwners records owners as the owners of the group with
	// upstreamID, as a reconcile pass read them through Get Group, if name
	// is still that group, and reports whether it did. Owners are mirrored
	// read-only and do not move the group's Revision.
	SyncOwners(ctx context.Context, name Name, upstreamID string, owners []User) (bool, error)
	// Owners returns the owners last recorded for the group as it is now
	// (nil if never read, or read of a group of this name since made
	// again), ordered by MemberCursor; ErrNotFound if there is no such group.
	Owners(ctx context.Context, name Name) ([]User, error)
	// GroupsSyncedAt returns when a reconcile pass last read the tenant's
	// group list whole; zero if never.
	GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error)
}

// Idle is a precondition on a group's member list: no member change is
// queued or running (PendingMembers is 0) and MembersVersion is Version.
type Idle struct{ Version uint64 }

// PageQuery selects one page of a list.
type PageQuery struct {
	// Project restricts a group list to one project; empty means all the
	// tenant's projects.
	Project string
	// Prefix keeps the entries whose key starts with it (lower case).
	Prefix string
	// After is the Cursor (or MemberCursor) of the last entry of the
	// previous page; empty for the first page.
	After string
	// Limit is the most entries to return; 0 means all.
	Limit int
}

// Cursor is a group's place in a tenant's group list: project, then the
// group's Key.
func Cursor(n Name) string { return n.Project + "\x00" + n.Key() }

// MemberCursor is a user's place in a group's member list: lower-cased
// e-mail, then id.
func MemberCursor(u User) string { return strings.ToLower(u.Email) + "\x00" + u.ID }

// User is a TechPass user as the mirror knows it.
type User struct {
	// ID is the user's Azure AD object id.
	ID string
	// Email is the user's login e-mail, as TechPass spells it.
	Email       string
	DisplayName string
}

// ChangeKind says what a reconcile pass found for one group.
type ChangeKind string

// The kinds of group drift.
const (
	// GroupAppeared: TechPass has a group of a known project that the
	// mirror lacks. Applied only if the mirror still has no group of that
	// key.
	GroupAppeared ChangeKind = "appeared"
	// GroupVanished: an Active group of the mirror is not in TechPass.
	// Applied only if the group is still Active at Revision with no member
	// change pending (the change fails first, then a later pass applies it).
	GroupVanished ChangeKind = "vanished"
	// GroupChanged: TechPass has another description for an Active group
	// with no pending update. Applied only if the group is still at
	// Revision with no pending update.
	GroupChanged ChangeKind = "changed"
	// GroupReplaced: TechPass has a group of the same name with another id
	// (deleted and made again outside the gateway). Applied only if the
	// group is still Active at Revision with no update or member change
	// pending (they fail against the old id first): it takes the new
	// UpstreamID and
	// description, and its member list is dropped and unknown
	// (MembersSyncedAt zero) until read again.
	GroupReplaced ChangeKind = "replaced"
)

// GroupChange is one difference between the mirror and TechPass.
type GroupChange struct {
	Kind ChangeKind
	// Group is the group as it should be after the change (for
	// GroupVanished, as the mirror had it); its Revision is the
	// precondition.
	Group Group
	// Previous is the mirror's description before a GroupChanged.
	Previous string
}

// Limits bound what a create may add.
type Limits struct {
	// Groups is the tenant's namespace group limit; 0 means none.
	Groups int
	// ProjectQuota is the project's group quota; 0 means none.
	ProjectQuota int
	// Queue bounds the tenant's and the project's pending operations.
	Queue throttle.Limits
}

// Undo returns the effects that revert the mirror change an operation made
// when it was queued: a create's reservation is released, a deleting group
// is active again, an update's description is restored; a member change
// stops counting as pending. They are committed when an operation is cancelled or given up.
func Undo(op throttle.Operation, at time.Time) []throttle.Effect {
	n := targetName(op)
	switch op.Kind {
	case KindDelete:
		return []throttle.Effect{DeleteFailed{Name: n, At: at}}
	case KindUpdate:
		return []throttle.Effect{undoUpdate(op, at)}
	case KindMembers:
		// The change's steps are in the mirror already; only its pending
		// count is released.
		return []throttle.Effect{MembersSettled{Name: n, QueuedAt: op.CreatedAt}}
	}
	return []throttle.Effect{CreateFailed{Name: n}}
}

// targetName splits an operation's stored full name without validating it
// (it was validated when the operation was queued).
func targetName(op throttle.Operation) Name {
	parts := strings.SplitN(op.Target, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return Name{Tenant: parts[0], Project: parts[1], Group: parts[2]}
}

// Effects committed with operation outcomes (see throttle.Effect). A Store
// implementation must apply each as documented; an effect on a group the
// mirror no longer holds changes nothing and is not an error, so that an
// outcome can always be committed.
type (
	// Created makes the group Active with its upstream id, confirmed
	// (SyncedAt) at At. With MembersKnown (the gateway made the group, so
	// it is empty) MembersSyncedAt is At too; a group adopted from TechPass
	// keeps an unknown member list until the reconciler reads it.
	Created struct {
		Name         Name
		UpstreamID   string
		At           time.Time
		MembersKnown bool
		// Description is the one TechPass has for the group.
		Description string
	}
	// MembersSettled ends one pending member change of the group
	// (PendingMembers goes down by one, never below zero). QueuedAt is when
	// the change was queued: a group made after it (the one the change was
	// queued on is gone) is left alone.
	MembersSettled struct {
		Name     Name
		QueuedAt time.Time
	}
	// CreateFailed removes the group's reservation.
	CreateFailed struct{ Name Name }
	// Deleted removes the group.
	Deleted struct{ Name Name }
	// DeleteFailed makes the group Active again.
	DeleteFailed struct {
		Name Name
		At   time.Time
	}
	// Updated clears the group's PendingUpdate if it is Operation, and
	// marks the group and its Description confirmed (SyncedAt,
	// ConfirmedDescription) at At.
	Updated struct {
		Name        Name
		Operation   string
		Description string
		At          time.Time
	}
	// UpdateFailed, if the group's PendingUpdate is still Operation (no
	// later update was queued), restores the description TechPass last
	// confirmed (Previous if none is known) and clears PendingUpdate;
	// otherwise it changes nothing.
	UpdateFailed struct {
		Name      Name
		Operation string
		Previous  string
		At        time.Time
	}
	// MembersAdded adds Users to the group's member list (a user already
	// there is left as is).
	MembersAdded struct {
		Name  Name
		Users []User
		At    time.Time
	}
	// MembersRemoved removes the users with these ids from the group's
	// member list (an absent one is ignored).
	MembersRemoved struct {
		Name    Name
		UserIDs []string
		At      time.Time
	}
	// UsersResolved remembers users of the tenant looked up in TechPass, by
	// lower-cased e-mail and by id, for KnownUsers.
	UsersResolved struct {
		Tenant string
		Users  []User
	}
)
