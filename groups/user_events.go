package groups

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds what a user's deletion or change in TechPass (told by a
// webhook) means for a tenant's mirror. The webhooks package applies it,
// inside the transaction that records the delivery.

// UserEvent is what RemoveDeletedUser or FollowUpdatedUser changed.
type UserEvent struct {
	// Left are the groups a deleted user was removed from, in Cursor
	// order.
	Left []Name
	// User is the user as the mirror knew it before (zero if unknown).
	User User
	// Known reports whether the mirror knew the user (as a known user or a
	// member).
	Known bool
}

// RemoveDeletedUser applies a user's deletion in TechPass, given by ID, or
// by Email when the ID is not known: the user leaves every group of the
// tenant's mirror (as MembersRemoved does) and its known users, and is
// marked deleted by id and e-mail until until, so queued adds of the user
// fail "User deleted" without a request (see Mirror.DeletedUsers).
//
// The user is found by id when the deletion gives one: its e-mail may name
// another user by now. A key (id or e-mail) that another known user holds
// is neither forgotten nor marked: that user's adds must go on.
func RemoveDeletedUser(tx Tx, u User, at, until time.Time) (UserEvent, error) {
	var out UserEvent
	key := cmp.Or(u.ID, u.Email)
	if key != "" {
		known, ok, err := tx.KnownUser(key)
		if err != nil {
			return out, err
		}
		if ok {
			out.User, out.Known = known, true
			u.ID, u.Email = known.ID, cmp.Or(u.Email, known.Email)
		}
	}
	match := func(m User) bool {
		if u.ID != "" {
			return strings.EqualFold(m.ID, u.ID)
		}
		return u.Email != "" && strings.EqualFold(m.Email, u.Email)
	}
	err := eachGroupListing(tx, match, func(g Group, m User) error {
		if !out.Known {
			out.User, out.Known = m, true
		}
		if err := (MembersRemoved{Name: g.Name, UserIDs: []string{m.ID}, At: at}).Apply(tx); err != nil {
			return err
		}
		out.Left = append(out.Left, g.Name)
		return nil
	})
	if err != nil {
		return out, err
	}
	if out.Known && u.ID == "" {
		u.ID = out.User.ID
	}
	mark := DeletedUser{ID: u.ID, Email: cmp.Or(u.Email, out.User.Email), DeletedAt: at.UTC(), Expires: until.UTC()}
	for _, k := range slices.Compact([]string{u.ID, out.User.Email, u.Email}) {
		if k == "" {
			continue
		}
		if other, ok, err := tx.KnownUser(k); err != nil {
			return out, err
		} else if ok && u.ID != "" && !strings.EqualFold(other.ID, u.ID) {
			continue // k names another user by now
		}
		if err := tx.ForgetKnownUser(k); err != nil {
			return out, err
		}
		if err := tx.PutDeletedUser(k, mark); err != nil {
			return out, err
		}
	}
	return out, nil
}

// FollowUpdatedUser applies a user's new record in TechPass (ID and Email
// set): if the mirror knows the user (by id, as a known user or a member)
// and it is not marked deleted, the known user and the user's memberships
// follow u (as MemberChanged does), so a lookup by the new e-mail is
// answered by the mirror and the old e-mail no longer finds the user. A
// late update of a deleted user changes nothing: it stays deleted. An
// empty DisplayName keeps the known one.
func FollowUpdatedUser(tx Tx, u User, at time.Time) (UserEvent, error) {
	var out UserEvent
	if marks, err := tx.DeletedUsers([]string{u.ID}); err != nil || len(marks) > 0 {
		return out, err
	}
	var err error
	if out.User, out.Known, err = tx.KnownUser(u.ID); err != nil {
		return out, err
	}
	if u.DisplayName == "" {
		u.DisplayName = out.User.DisplayName
	}
	err = eachGroupListing(tx, func(m User) bool { return m.ID == u.ID }, func(g Group, m User) error {
		if !out.Known {
			out.User, out.Known = m, true
		}
		if m == u {
			return nil
		}
		return (MemberChanged{Name: g.Name, User: u, At: at}).Apply(tx)
	})
	if err != nil || !out.Known {
		return out, err // only users the mirror knows follow an update
	}
	return out, rememberUsers(tx, []User{u})
}

// eachGroupListing calls fn for every group of the tenant whose member list
// holds a member matching match, with the first such member, in Cursor
// order.
func eachGroupListing(tx Tx, match func(User) bool, fn func(Group, User) error) error {
	all, err := tx.Groups("")
	if err != nil {
		return err
	}
	for _, g := range all {
		members, err := tx.Members(g.Name)
		if err != nil {
			return fmt.Errorf("members of %s: %w", g.Name, err)
		}
		if i := slices.IndexFunc(members, match); i >= 0 {
			if err := fn(g, members[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// rememberUsers remembers users TechPass shows (PutKnownUsers): a user
// shown again, or a new user given a deleted user's e-mail, is no longer
// marked deleted.
func rememberUsers(tx Tx, users []User) error {
	if err := tx.PutKnownUsers(users); err != nil {
		return err
	}
	for _, u := range users {
		if u.ID == "" {
			continue
		}
		keys := []string{u.ID}
		if u.Email != "" {
			keys = append(keys, u.Email)
		}
		if err := tx.DeleteDeletedUsers(keys...); err != nil {
			return err
		}
	}
	return nil
}
