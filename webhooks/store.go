package webhooks

import (
	"context"
	"time"

	"github.com/groupgate/groupgate/groups"
)

// Store keeps a tenant's delivery records beside its group mirror, so that
// a delivery's record and its effects on the mirror commit together. It
// holds data and decides nothing: what a delivery means (Apply, Recorded)
// runs over a Tx inside UpdateDeliveries. Implementations must be safe for
// concurrent use.
type Store interface {
	// UpdateDeliveries runs fn in one read-write transaction of tenant's
	// records, the group mirror's (groups.Tx) and the tenant's delivery
	// records, under groups.Store's transaction contract: atomic (fn's
	// writes, to the mirror and to the delivery records, are all committed
	// when it returns nil and none when it fails; the error is returned),
	// serialized with every other UpdateDeliveries and every groups.Store
	// Update of the tenant, durable when it returns nil, and fn may run
	// more than once (only the last run's writes are kept).
	UpdateDeliveries(ctx context.Context, tenant string, fn func(Tx) error) error
	// PruneDeliveries forgets every delivery record (of every tenant) whose
	// Expires is not after now, and every deleted-user mark
	// (groups.Tx.PutDeletedUser) whose Expires is not after now, and
	// returns how many it forgot. It may run at any time: a record it
	// forgets is one Apply would no longer take as a duplicate.
	PruneDeliveries(ctx context.Context, now time.Time) (int, error)
}

// Tx is one tenant's records inside UpdateDeliveries: its group mirror and
// its delivery records, by digest. Its methods are data primitives with no
// rules.
type Tx interface {
	groups.Tx
	// Delivery returns the tenant's record of the delivery digest, and
	// false if none is stored. A record past its Expires is returned until
	// PruneDeliveries forgets it.
	Delivery(digest [32]byte) (Record, bool, error)
	// PutDelivery stores r as the tenant's record of the delivery digest,
	// replacing one; r.Pending is kept as given (nil stays nil).
	PutDelivery(digest [32]byte, r Record) error
}

// Record is a delivery remembered, for Apply to tell a repeat.
type Record struct {
	// Expires is when the record may be forgotten.
	Expires time.Time
	// Pending is what applying the delivery changed, kept until its
	// outcome is recorded (Recorded); nil once it is.
	Pending *Applied
}

// Delivery is a verified delivery's effect on its tenant's mirror. At most
// one of Gone and Changed is set; neither means the delivery is only
// remembered.
type Delivery struct {
	Tenant  string
	Digest  [32]byte
	At      time.Time
	Expires time.Time
	// Gone is a user deleted from TechPass (by ID, or by Email when the ID
	// is not known): see groups.RemoveDeletedUser. Its marks are kept for
	// MarkRetention after At.
	Gone *groups.User
	// Changed is a user's new record (ID and Email set): see
	// groups.FollowUpdatedUser.
	Changed *groups.User
}

// Applied is what Apply changed.
type Applied struct {
	// Left are the groups a Gone user was removed from, in key order.
	Left []groups.Name `json:"left,omitempty"`
	// User is the user as the mirror knew it before (zero if unknown).
	User groups.User `json:"user,omitzero"`
	// Known reports whether the mirror knew the user.
	Known bool `json:"known,omitempty"`
	// Resumed reports a delivery applied before, whose outcome was not
	// recorded: only the recording is left to do.
	Resumed bool `json:"-"`
}
