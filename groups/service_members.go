package groups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/groupgate/groupgate/queue"
)

// MaxUsersPerChange bounds how many users one member change may name.
const MaxUsersPerChange = 100

// ChangeMembers queues adding the users named in add to group name and
// removing those in remove. Identifiers are normalized (NormalizeUser) and
// folded; naming a user on both sides is invalid. Users the mirror already
// shows as wanted (a member to add, an absent one to remove) need no
// upstream call: when that is all of them, the operation is recorded as
// succeeded at once. It returns the operation, whether it is a replay, and
// ErrInvalid, ErrNotFound, ErrPending, queue.ErrQueueFull or
// queue.ErrIdempotencyMismatch (wrapped).
func (s *Service) ChangeMembers(ctx context.Context, req Request, name Name, add, remove []string) (op queue.Operation, replayed bool, err error) {
	if op, ok, err := s.Replayed(ctx, req); ok || err != nil {
		return op, ok, err
	}
	add, remove, err = s.foldUsers(add, remove)
	if err != nil {
		return queue.Operation{}, false, err
	}
	limits := s.queue.Limits(name.Tenant)
	for attempt := 0; ; attempt++ {
		g, err := s.store.Group(ctx, name)
		if err != nil {
			return queue.Operation{}, false, fmt.Errorf("change members of %s: %w", name, err)
		}
		if g.State == Deleting {
			return queue.Operation{}, false, fmt.Errorf("change members of %s: %w: the group is being deleted", name, ErrPending)
		}
		p := membersPayload{FullName: g.Name.String(), Add: add, Remove: remove}
		var idle *Idle
		// The mirror can show a change done only if it knows the member
		// list and no other change is queued that could undo it; a change
		// worked out from it is stored only if the list is still as read.
		if !g.MembersSyncedAt.IsZero() && g.PendingMembers == 0 && attempt < 3 {
			if p.Add, p.Remove, p.Unchanged, err = s.filterByMirror(ctx, g.Name, add, remove); err != nil {
				return queue.Operation{}, false, fmt.Errorf("change members of %s: %w", name, err)
			}
			idle = &Idle{Version: g.MembersVersion}
		}
		op, err = s.newOperation(req, g.Name, p)
		if err != nil {
			return queue.Operation{}, false, err
		}
		var stored queue.Operation
		if len(p.Add) == 0 && len(p.Remove) == 0 {
			res, err := json.Marshal(MembersResult{FullName: p.FullName, Added: []UserResult{}, Removed: []UserResult{}, Unchanged: p.Unchanged})
			if err != nil {
				return queue.Operation{}, false, fmt.Errorf("encode members result: %w", err)
			}
			op.State, op.Result, op.FinishedAt = queue.Succeeded, res, op.CreatedAt
			if idle == nil { // unreachable: only filtering empties a change, and it sets idle
				return queue.Operation{}, false, fmt.Errorf("change members of %s: nothing to change without the mirror", name)
			}
			stored, err = s.store.RecordMembers(ctx, g.Name, op, *idle)
		} else {
			stored, err = s.store.QueueMembers(ctx, g.Name, op, limits, idle)
		}
		if errors.Is(err, ErrStale) {
			continue // the member list moved since it was read: work it out again
		}
		return s.queued(ctx, stored, err, "member change", name)
	}
}

// foldUsers normalizes and de-duplicates the identifiers of a change.
func (s *Service) foldUsers(add, remove []string) ([]string, []string, error) {
	verr := &ValidationError{}
	fold := func(field string, ids []string) []string {
		var out []string
		for i, id := range ids {
			n, err := s.NormalizeUser(fmt.Sprintf("%s[%d]", field, i), id)
			if err != nil {
				verr.Fields = append(verr.Fields, err.(*ValidationError).Fields...)
				continue
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	add, remove = fold("users", add), fold("users", remove)
	switch {
	case len(verr.Fields) > 0:
		return nil, nil, verr
	case len(add)+len(remove) == 0:
		return nil, nil, &ValidationError{Fields: []FieldError{{Field: "users", Message: "name at least one user"}}}
	case len(add)+len(remove) > MaxUsersPerChange:
		return nil, nil, &ValidationError{Fields: []FieldError{{Field: "users", Message: fmt.Sprintf("name at most %d users in one change", MaxUsersPerChange)}}}
	}
	for _, id := range add {
		if slices.Contains(remove, id) {
			return nil, nil, &ValidationError{Fields: []FieldError{{Field: "users", Message: fmt.Sprintf("%q is both added and removed", id)}}}
		}
	}
	return add, remove, nil
}

// filterByMirror splits a change into what still needs TechPass and what the
// mirror shows is already so.
func (s *Service) filterByMirror(ctx context.Context, name Name, add, remove []string) (needAdd, needRemove, unchanged []string, err error) {
	members, err := memberIDs(ctx, s.store, name)
	if err != nil {
		return nil, nil, nil, err
	}
	known, err := s.store.KnownUsers(ctx, name.Tenant, append(slices.Clone(add), remove...))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("look up known users: %w", err)
	}
	for _, id := range add {
		if u, ok := known[id]; ok && members[u.ID] {
			unchanged = append(unchanged, id)
			continue
		}
		needAdd = append(needAdd, id)
	}
	for _, id := range remove {
		// An identifier the mirror cannot resolve (an alias, an e-mail
		// changed in TechPass) may still name a member: TechPass decides.
		if u, ok := known[id]; ok && !members[u.ID] {
			unchanged = append(unchanged, id)
			continue
		}
		needRemove = append(needRemove, id)
	}
	return needAdd, needRemove, unchanged, nil
}

// memberReader is the part of Store that memberIDs needs.
type memberReader interface {
	ListMembers(ctx context.Context, name Name, q PageQuery) ([]User, bool, error)
}

// memberIDs returns the ids of the group's members in the mirror.
func memberIDs(ctx context.Context, store memberReader, name Name) (map[string]bool, error) {
	users, _, err := store.ListMembers(ctx, name, PageQuery{})
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	ids := make(map[string]bool, len(users))
	for _, u := range users {
		ids[u.ID] = true
	}
	return ids, nil
}
