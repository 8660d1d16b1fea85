package groups

import (
	"errors"
	"fmt"
	"github.com/groupgate/groupgate/dispatch"
	"time"
)

// Effect is a change to the mirror committed in the same transaction as an
// operation's outcome (queue.Store.Complete, Progress, Finish), such as
// the mirror learning a new group's upstream id. Its meaning is its Apply.
type Effect interface {
	// Apply makes the change in tx. It may run more than once (see
	// Store.Update). An error wrapping dispatch.ErrUnusableEffect says the
	// effect itself can never be applied; any other error is the store's,
	// and the commit is tried again.
	Apply(tx Tx) error
}

// Effects committed with operation outcomes (dispatch.Outcome[Effect]). Each
// applies itself to the store's records in the outcome's transaction, as its
// comment says; an effect on a group the mirror no longer holds changes
// nothing and is not an error, so that an outcome can always be committed.
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
	// MemberChanged gives the group's member with User.ID the rest of User
	// (an e-mail or display name changed in TechPass, as a webhook tells):
	// the list changes (MembersVersion moves) but no one joins or leaves.
	// A group that does not list the user, or lists it as User already, is
	// left alone.
	MemberChanged struct {
		Name Name
		User User
		At   time.Time
	}
	// UsersResolved remembers users of the tenant looked up in TechPass, by
	// lower-cased e-mail and by id, for KnownUsers; a user marked deleted
	// (RemoveDeletedUser) under its id or e-mail no longer is.
	UsersResolved struct {
		Tenant string
		Users  []User
	}
)

// Apply implements Effect.
func (e Created) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "created", func(g *Group) error {
		g.State, g.UpstreamID, g.PendingOperation, g.UpdatedAt = Active, e.UpstreamID, "", e.At
		g.SyncedAt = e.At
		g.ConfirmedDescription, g.DescriptionConfirmed = e.Description, true
		if e.MembersKnown {
			// A group TechPass has just created has no members; an
			// adopted one has members the reconciler will read.
			g.MembersSyncedAt = e.At
		}
		return nil
	})
}

// Apply implements Effect.
func (e DeleteFailed) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "delete-failed", func(g *Group) error {
		g.State, g.PendingOperation, g.UpdatedAt = Active, "", e.At
		return nil
	})
}

// Apply implements Effect.
func (e CreateFailed) Apply(tx Tx) error { return deleteGroup(tx, e.Name) }

// Apply implements Effect.
func (e Deleted) Apply(tx Tx) error { return deleteGroup(tx, e.Name) }

// Apply implements Effect.
func (e Updated) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "updated", func(g *Group) error {
		if g.PendingUpdate == e.Operation {
			g.PendingUpdate = ""
		}
		g.SyncedAt = e.At
		g.ConfirmedDescription, g.DescriptionConfirmed = e.Description, true
		return nil
	})
}

// Apply implements Effect.
func (e UpdateFailed) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "update-failed", func(g *Group) error {
		// A later update queued since owns the description now.
		if g.PendingUpdate != e.Operation || e.Operation == "" {
			return nil
		}
		g.PendingUpdate = ""
		restore := e.Previous
		if g.DescriptionConfirmed {
			// Previous may be an earlier update that never reached
			// TechPass; what TechPass confirmed is what it has.
			restore = g.ConfirmedDescription
		}
		if g.Description != restore {
			g.Description, g.UpdatedAt = restore, e.At
		}
		return nil
	})
}

// Apply implements Effect.
func (e MembersSettled) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "members-settled", func(g *Group) error {
		if e.QueuedAt.Before(g.CreatedAt) {
			return nil // queued on an earlier group of this name
		}
		g.PendingMembers = max(g.PendingMembers-1, 0)
		return nil
	})
}

// Apply implements Effect.
func (e MembersAdded) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "members-added", func(g *Group) error {
		return addMembers(tx, g, e.Users, e.At)
	})
}

// Apply implements Effect.
func (e MembersRemoved) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "members-removed", func(g *Group) error {
		return removeMembers(tx, g, e.UserIDs, e.At)
	})
}

// Apply implements Effect.
func (e MemberChanged) Apply(tx Tx) error {
	return updateGroup(tx, e.Name, "member-changed", func(g *Group) error {
		have, err := membersByID(tx, g.Name)
		if err != nil {
			return err
		}
		old, ok := have[e.User.ID]
		if !ok || old == e.User {
			return nil
		}
		if err := tx.RemoveMember(g.Name, old); err != nil {
			return err
		}
		if err := tx.PutMember(g.Name, e.User); err != nil {
			return err
		}
		g.MembersVersion++
		g.UpdatedAt = e.At
		return nil
	})
}

// Apply implements Effect.
func (e UsersResolved) Apply(tx Tx) error {
	if err := rememberUsers(tx, e.Users); err != nil {
		return fmt.Errorf("apply users-resolved of %s: %w", e.Tenant, err)
	}
	return nil
}

// applyEffects applies effects in order. A nil effect (a handler's bug)
// fails with dispatch.ErrUnusableEffect: the dispatcher then fails its
// operation once instead of retrying the commit for ever.
func applyEffects(tx Tx, effects []Effect) error {
	for _, e := range effects {
		if e == nil {
			return fmt.Errorf("apply effects: a nil effect: %w", dispatch.ErrUnusableEffect)
		}
		if err := e.Apply(tx); err != nil {
			return err
		}
	}
	return nil
}

// updateGroup applies fn to the stored group and stores the result (see
// putGroup); a missing group is left alone and is not an error. what names
// the effect in errors.
func updateGroup(tx Tx, name Name, what string, fn func(*Group) error) error {
	g, err := tx.Group(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply %s %s: %w", what, name, err)
	}
	before := g
	if err := fn(&g); err != nil {
		return fmt.Errorf("apply %s %s: %w", what, name, err)
	}
	if g == before {
		return nil // spare the write and the groups version
	}
	if _, err := putGroup(tx, g); err != nil {
		return fmt.Errorf("apply %s %s: %w", what, name, err)
	}
	return nil
}

// deleteGroup removes the group and its members, if the mirror holds it.
func deleteGroup(tx Tx, name Name) error {
	if _, err := tx.Group(name); errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	if err := tx.DeleteGroup(name); err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	return nil
}

// membersByID returns the group's stored members by id. A group holds a few
// thousand members at most, so a scan serves where an index would need
// upkeep.
func membersByID(tx Tx, name Name) (map[string]User, error) {
	list, err := tx.Members(name)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	have := make(map[string]User, len(list))
	for _, u := range list {
		have[u.ID] = u
	}
	return have, nil
}

// addMembers adds the users not yet members (by id) to g's list, keeping
// g's MemberCount and MembersVersion in step, and remembers all of them as
// known users.
func addMembers(tx Tx, g *Group, users []User, at time.Time) error {
	have, err := membersByID(tx, g.Name)
	if err != nil {
		return err
	}
	changed := false
	for _, u := range users {
		if _, ok := have[u.ID]; ok || u.ID == "" {
			continue
		}
		if err := tx.PutMember(g.Name, u); err != nil {
			return err
		}
		have[u.ID] = u
		changed = true
	}
	if changed {
		g.MembersVersion++
		g.MemberCount, g.UpdatedAt = len(have), at
	}
	return rememberUsers(tx, users)
}

// removeMembers removes the users with these ids from g's list, keeping g's
// MemberCount and MembersVersion in step.
func removeMembers(tx Tx, g *Group, ids []string, at time.Time) error {
	have, err := membersByID(tx, g.Name)
	if err != nil {
		return err
	}
	changed := false
	for _, id := range ids {
		u, ok := have[id]
		if !ok {
			continue
		}
		if err := tx.RemoveMember(g.Name, u); err != nil {
			return err
		}
		delete(have, id)
		changed = true
	}
	if changed {
		g.MembersVersion++
		g.MemberCount, g.UpdatedAt = len(have), at
	}
	return nil
}

// Outcome is what the Executor reports of one try of an operation, with the
// effects to commit with it.
type Outcome = dispatch.Outcome[Effect]
