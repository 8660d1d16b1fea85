package groups

import (
	"strings"
	"time"

	"github.com/groupgate/groupgate/queue"
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
	// upstream id): the Ledger moves it whenever one of them changes, and
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
	Queue queue.Limits
}
