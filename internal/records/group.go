package records

import (
	"time"

	"github.com/groupgate/groupgate/groups"
)

// Group is a stored mirrored group; the tenant is the store's key (a bbolt
// bucket, a table column), not part of the document. Fields added after
// the first release are optional: a record written without them reads as
// zero values, except Revision (see Group.ToGroup).
type Group struct {
	Project         string    `json:"project"`
	Group           string    `json:"group"`
	Description     string    `json:"description"`
	State           string    `json:"state"`
	UpstreamID      string    `json:"upstreamId,omitempty"`
	PendingOp       string    `json:"pendingOp,omitempty"`
	PendingUpdate   string    `json:"pendingUpdate,omitempty"`
	Revision        uint64    `json:"revision,omitempty"`
	SyncedAt        time.Time `json:"syncedAt,omitzero"`
	MembersSyncedAt time.Time `json:"membersSyncedAt,omitzero"`
	MembersVersion  uint64    `json:"membersVersion,omitempty"`
	MemberCount     int       `json:"memberCount,omitempty"`
	PendingMembers  int       `json:"pendingMembers,omitempty"`
	Confirmed       *string   `json:"confirmedDescription,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
}

// NewGroup is g as it is stored.
func NewGroup(g groups.Group) Group {
	r := Group{
		Project: g.Name.Project, Group: g.Name.Group, Description: g.Description, State: string(g.State),
		UpstreamID: g.UpstreamID, PendingOp: g.PendingOperation, PendingUpdate: g.PendingUpdate,
		Revision: g.Revision, SyncedAt: g.SyncedAt, MembersSyncedAt: g.MembersSyncedAt,
		MembersVersion: g.MembersVersion, MemberCount: g.MemberCount, PendingMembers: g.PendingMembers,
		CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
	}
	if g.DescriptionConfirmed {
		r.Confirmed = &g.ConfirmedDescription
	}
	return r
}

// ToGroup converts the record of a group of tenant. A record written before
// revisions existed (Revision 0, only in bbolt files) reads as revision 1:
// every stored group has a revision a client can send back, since 0 means
// "no precondition" to UpdatePending. Stores number revisions from 1.
func (r Group) ToGroup(tenant string) groups.Group {
	g := groups.Group{
		Name:        groups.Name{Tenant: tenant, Project: r.Project, Group: r.Group},
		Description: r.Description, State: groups.State(r.State), UpstreamID: r.UpstreamID,
		PendingOperation: r.PendingOp, PendingUpdate: r.PendingUpdate, Revision: max(r.Revision, 1),
		SyncedAt: r.SyncedAt, MembersSyncedAt: r.MembersSyncedAt,
		MembersVersion: r.MembersVersion, MemberCount: r.MemberCount, PendingMembers: r.PendingMembers,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Confirmed != nil {
		g.ConfirmedDescription, g.DescriptionConfirmed = *r.Confirmed, true
	}
	return g
}

// User is a stored user, as a group member, an owner and in a tenant's
// cache of known users.
type User struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
}

// NewUser is u as it is stored.
func NewUser(u groups.User) User {
	return User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName}
}

// ToUser converts the record.
func (r User) ToUser() groups.User {
	return groups.User{ID: r.ID, Email: r.Email, DisplayName: r.DisplayName}
}

// Owners is how a group's owners are stored, beside the group: the upstream
// id they were read of, so a group made again under the same name does not
// show its predecessor's owners.
type Owners struct {
	UpstreamID string `json:"upstreamId"`
	Owners     []User `json:"owners"`
}

// NewOwners is o as it is stored.
func NewOwners(o groups.Owners) Owners {
	r := Owners{UpstreamID: o.UpstreamID, Owners: make([]User, 0, len(o.Users))}
	for _, u := range o.Users {
		r.Owners = append(r.Owners, NewUser(u))
	}
	return r
}

// ToOwners converts the record.
func (r Owners) ToOwners() groups.Owners {
	o := groups.Owners{UpstreamID: r.UpstreamID, Users: make([]groups.User, 0, len(r.Owners))}
	for _, u := range r.Owners {
		o.Users = append(o.Users, u.ToUser())
	}
	return o
}
