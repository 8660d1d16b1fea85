package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Ledger is the mirror and the operation queue with their rules: every
// write goes through one of its methods, which applies the rule over a
// Store's records in one Store.Update. It is the queue.Store of the
// tenants' dispatchers (its effects are this package's Effect) and the
// store of Service and Reconciler. Its reads are the Store's. Safe for
// concurrent use.
type Ledger struct{ Store }

// NewLedger returns the ledger over st.
func NewLedger(st Store) *Ledger { return &Ledger{Store: st} }

var _ queue.Store[Effect] = (*Ledger)(nil)

// --- the queue (queue.Store) -------------------------------------------------

// Enqueue implements queue.Store (see queue.EnqueueIn).
func (l *Ledger) Enqueue(ctx context.Context, op queue.Operation, limits queue.Limits) (queue.Operation, error) {
	var stored queue.Operation
	err := l.Update(ctx, op.Tenant, func(tx Tx) error {
		var err error
		stored, err = queue.EnqueueIn(tx, op, limits)
		return err
	})
	if err != nil {
		return queue.Operation{}, fmt.Errorf("enqueue %s: %w", op.ID, err)
	}
	return stored, nil
}

// Head implements queue.Store: the head with the lowest Seq.
func (l *Ledger) Head(ctx context.Context, tenant string) (queue.Operation, error) {
	heads, err := l.Heads(ctx, tenant)
	if err != nil {
		return queue.Operation{}, err
	}
	if len(heads) == 0 {
		return queue.Operation{}, queue.ErrEmpty
	}
	first := heads[0]
	for _, h := range heads[1:] {
		if h.Seq < first.Seq {
			first = h
		}
	}
	return first, nil
}

// Complete implements queue.Store.
func (l *Ledger) Complete(ctx context.Context, op queue.Operation, effects []Effect) error {
	err := l.Update(ctx, op.Tenant, func(tx Tx) error {
		if err := queue.SettleIn(tx, op); err != nil {
			return err
		}
		return applyEffects(tx, effects)
	})
	if err != nil {
		return fmt.Errorf("complete %s: %w", op.ID, err)
	}
	return nil
}

// Progress implements queue.Store.
func (l *Ledger) Progress(ctx context.Context, op queue.Operation, effects []Effect) error {
	err := l.Update(ctx, op.Tenant, func(tx Tx) error {
		if _, err := tx.Operation(op.ID); err != nil {
			return err
		}
		if err := tx.PutOperation(op); err != nil {
			return err
		}
		return applyEffects(tx, effects)
	})
	if err != nil {
		return fmt.Errorf("progress of %s: %w", op.ID, err)
	}
	return nil
}

// Finish implements queue.Store.
func (l *Ledger) Finish(ctx context.Context, id string, fn func(*queue.Operation) ([]Effect, error)) (queue.Operation, error) {
	found, err := l.Operation(ctx, id)
	if err != nil {
		return queue.Operation{}, err
	}
	var op queue.Operation
	err = l.Update(ctx, found.Tenant, func(tx Tx) error {
		var err error
		if op, err = tx.Operation(id); err != nil {
			return err
		}
		effects, err := fn(&op)
		if err != nil {
			return err
		}
		if err := queue.SettleIn(tx, op); err != nil {
			return err
		}
		return applyEffects(tx, effects)
	})
	return op, err
}

// RequeueRunning implements queue.Store (see queue.RequeueIn).
func (l *Ledger) RequeueRunning(ctx context.Context, tenant string, now time.Time) (int, error) {
	n := 0
	err := l.Update(ctx, tenant, func(tx Tx) error {
		var err error
		n, err = queue.RequeueIn(tx, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("requeue running operations of %s: %w", tenant, err)
	}
	return n, nil
}

// --- queueing group work ----------------------------------------------------------

// CreatePending stores g (in state Creating) and enqueues op, in one
// transaction. It first applies the enqueue checks (queue.CheckEnqueue:
// idempotent replay, queue limits), then returns ErrExists if the project
// already has a group with g's key, ErrQuota if the project already has
// limits.ProjectQuota groups and ErrLimit if the tenant already has
// limits.Groups groups (pending creates included). Nothing is written if a
// check fails.
func (l *Ledger) CreatePending(ctx context.Context, g Group, op queue.Operation, limits Limits) (queue.Operation, error) {
	var stored queue.Operation
	err := l.Update(ctx, g.Name.Tenant, func(tx Tx) error {
		if err := queue.CheckEnqueue(tx, op, limits.Queue); err != nil {
			return err
		}
		if _, err := tx.Group(g.Name); err == nil {
			return ErrExists
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if limits.ProjectQuota > 0 {
			n, err := tx.CountGroups(g.Name.Project)
			if err != nil {
				return err
			}
			if n >= limits.ProjectQuota {
				return fmt.Errorf("%w: the project may have %d groups", ErrQuota, limits.ProjectQuota)
			}
		}
		if limits.Groups > 0 {
			n, err := tx.CountGroups("")
			if err != nil {
				return err
			}
			if n >= limits.Groups {
				return fmt.Errorf("%w: the namespace holds at most %d groups", ErrLimit, limits.Groups)
			}
		}
		if _, err := putGroup(tx, g); err != nil {
			return err
		}
		var err error
		stored, err = queue.QueueIn(tx, op)
		return err
	})
	return stored, err
}

// DeletePending marks the group Deleting and enqueues op, in one
// transaction, after the enqueue checks. It returns ErrNotFound if there is
// no such group and ErrPending if the group is not Active.
func (l *Ledger) DeletePending(ctx context.Context, name Name, op queue.Operation, limits queue.Limits) (queue.Operation, error) {
	_, op, err := l.queueOnGroup(ctx, name, op, limits, func(g *Group) error {
		if g.State != Active {
			return fmt.Errorf("%w: the group is %s (operation %s)", ErrPending, g.State, g.PendingOperation)
		}
		g.State, g.PendingOperation, g.UpdatedAt = Deleting, op.ID, op.CreatedAt
		return nil
	})
	return op, err
}

// UpdatePending sets the group's description and PendingUpdate to op's id
// and enqueues op, in one transaction, after the enqueue checks. With
// ifRevision not 0 it first returns ErrRevision unless the group's Revision
// is ifRevision. It returns ErrNotFound if there is no such group and
// ErrPending if the group is Deleting, and the group as stored.
func (l *Ledger) UpdatePending(ctx context.Context, name Name, description string, ifRevision uint64, op queue.Operation, limits queue.Limits) (Group, queue.Operation, error) {
	stored, op, err := l.queueOnGroup(ctx, name, op, limits, func(g *Group) error {
		if ifRevision != 0 && g.Revision != ifRevision {
			return fmt.Errorf("%w: it is at revision %d, not %d", ErrRevision, g.Revision, ifRevision)
		}
		if g.State == Deleting {
			return fmt.Errorf("%w: the group is %s (operation %s)", ErrPending, g.State, g.PendingOperation)
		}
		g.Description, g.PendingUpdate, g.UpdatedAt = description, op.ID, op.CreatedAt
		return nil
	})
	if err != nil {
		return Group{}, queue.Operation{}, fmt.Errorf("queue update of %s: %w", name, err)
	}
	return stored, op, nil
}

// QueueMembers enqueues op, a member change of the group, and counts it in
// the group's PendingMembers, after the enqueue checks; ErrNotFound if there
// is no such group, ErrPending if it is Deleting. With idle set, it returns
// ErrStale (writing nothing) unless the group is idle at idle.Version (see
// Idle): the change was worked out from that member list. The member list
// itself changes when the operation's effects are committed.
func (l *Ledger) QueueMembers(ctx context.Context, name Name, op queue.Operation, limits queue.Limits, idle *Idle) (queue.Operation, error) {
	_, op, err := l.queueOnGroup(ctx, name, op, limits, func(g *Group) error {
		if g.State == Deleting {
			return fmt.Errorf("%w: the group is %s (operation %s)", ErrPending, g.State, g.PendingOperation)
		}
		if idle != nil && !isIdle(*g, *idle) {
			return ErrStale
		}
		g.PendingMembers++
		return nil
	})
	if err != nil {
		return queue.Operation{}, fmt.Errorf("queue member change of %s: %w", name, err)
	}
	return op, nil
}

// RecordMembers stores op, a member change already in a final state,
// without queueing it (work the mirror showed was done), if the group is
// idle at idle.Version, and returns ErrStale otherwise; ErrNotFound if
// there is no such group. The idempotency check of an enqueue applies (a
// *queue.ReplayError or queue.ErrIdempotencyMismatch); queue limits do
// not.
func (l *Ledger) RecordMembers(ctx context.Context, name Name, op queue.Operation, idle Idle) (queue.Operation, error) {
	if !op.State.Final() {
		return queue.Operation{}, fmt.Errorf("record %s: state %q is not final", op.ID, op.State)
	}
	err := l.Update(ctx, name.Tenant, func(tx Tx) error {
		if err := queue.CheckIdempotency(tx, op); err != nil {
			return err
		}
		g, err := tx.Group(name)
		if err != nil {
			return err
		}
		if !isIdle(g, idle) {
			return ErrStale
		}
		_, err = queue.RecordIn(tx, op)
		return err
	})
	if err != nil {
		return queue.Operation{}, fmt.Errorf("record %s: %w", op.ID, err)
	}
	return op, nil
}

// isIdle reports whether g meets the precondition idle.
func isIdle(g Group, idle Idle) bool {
	return g.PendingMembers == 0 && g.MembersVersion == idle.Version
}

// queueOnGroup enqueues op together with the change it makes to the group
// it acts on, in one transaction: after the enqueue checks, change may
// refuse (and nothing is written) or edit the group, which is stored with
// op. It returns the group as stored and the queued operation.
func (l *Ledger) queueOnGroup(ctx context.Context, name Name, op queue.Operation, limits queue.Limits, change func(*Group) error) (Group, queue.Operation, error) {
	var stored Group
	var queued queue.Operation
	err := l.Update(ctx, name.Tenant, func(tx Tx) error {
		if err := queue.CheckEnqueue(tx, op, limits); err != nil {
			return err
		}
		g, err := tx.Group(name)
		if err != nil {
			return err
		}
		if err := change(&g); err != nil {
			return err
		}
		if stored, err = putGroup(tx, g); err != nil {
			return err
		}
		queued, err = queue.QueueIn(tx, op)
		return err
	})
	return stored, queued, err
}

// putGroup stores g and returns it as stored, with the revision rule: a new
// group, or one whose description, state or upstream id changed, takes the
// next number of the tenant's revision sequence (so a group deleted and made
// again never repeats an ETag of the old one); otherwise it keeps the stored
// one. Every other field is stored as given.
func putGroup(tx Tx, g Group) (Group, error) {
	changed := true
	g.Revision = 0
	old, err := tx.Group(g.Name)
	switch {
	case err == nil:
		g.Revision = old.Revision
		changed = g.Description != old.Description || g.State != old.State || g.UpstreamID != old.UpstreamID
	case !errors.Is(err, ErrNotFound):
		return Group{}, err
	}
	if changed {
		rev, err := tx.NextRevision(g.Revision)
		if err != nil {
			return Group{}, fmt.Errorf("revision of %s: %w", g.Name, err)
		}
		g.Revision = rev
	}
	if err := tx.PutGroup(g); err != nil {
		return Group{}, fmt.Errorf("put group %s: %w", g.Name, err)
	}
	return g, nil
}

// --- the reconciler's writes ------------------------------------------------------

// SyncGroups applies the changes a reconcile pass found in the tenant's
// group list, each only if its precondition still holds (see GroupChange),
// sets the tenant's GroupsSyncedAt to at and the SyncedAt of every group in
// seen (by Cursor key) to at, in one transaction; a seen group with no
// update pending has its description confirmed. It returns the changes it
// applied, each with its Group as stored after it (for GroupVanished, as it
// was before) and, for GroupChanged and GroupReplaced, the description it
// replaced in Previous.
func (l *Ledger) SyncGroups(ctx context.Context, tenant string, changes []GroupChange, seen []Name, at time.Time) ([]GroupChange, error) {
	var applied []GroupChange
	err := l.Update(ctx, tenant, func(tx Tx) error {
		applied = nil // the function may run again
		for _, c := range changes {
			ok, err := applyChange(tx, tenant, &c, at)
			if err != nil {
				return err
			}
			if ok {
				applied = append(applied, c)
			}
		}
		for _, n := range seen {
			n.Tenant = tenant
			g, err := tx.Group(n)
			if errors.Is(err, ErrNotFound) || (err == nil && g.SyncedAt.Equal(at)) {
				continue
			}
			if err != nil {
				return err
			}
			g.SyncedAt = at
			if g.PendingUpdate == "" {
				// Seen without a difference and with no update pending:
				// TechPass has this description.
				g.ConfirmedDescription, g.DescriptionConfirmed = g.Description, true
			}
			if _, err := putGroup(tx, g); err != nil {
				return err
			}
		}
		return tx.SetGroupsSyncedAt(at)
	})
	if err != nil {
		return nil, fmt.Errorf("sync groups of %s: %w", tenant, err)
	}
	return applied, nil
}

// applyChange applies c if its precondition holds (see ChangeKind),
// updating c to what was applied, and reports whether it did.
func applyChange(tx Tx, tenant string, c *GroupChange, at time.Time) (bool, error) {
	n := c.Group.Name
	n.Tenant = tenant
	cur, err := tx.Group(n)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	switch c.Kind {
	case GroupAppeared:
		if found {
			return false, nil
		}
		created := c.Group.CreatedAt
		if created.IsZero() {
			created = at
		}
		g := Group{
			Name: n, Description: c.Group.Description, State: Active, UpstreamID: c.Group.UpstreamID,
			SyncedAt: at, CreatedAt: created, UpdatedAt: at,
			ConfirmedDescription: c.Group.Description, DescriptionConfirmed: true,
		}
		if c.Group, err = putGroup(tx, g); err != nil {
			return false, err
		}
		return true, nil
	case GroupVanished:
		if !found || cur.State != Active || cur.Revision != c.Group.Revision || cur.PendingMembers > 0 {
			return false, nil
		}
		if err := deleteGroup(tx, n); err != nil {
			return false, err
		}
		c.Group = cur
		return true, nil
	case GroupChanged:
		if !found || cur.Revision != c.Group.Revision || cur.PendingUpdate != "" {
			return false, nil
		}
		previous := cur.Description
		cur.Description, cur.SyncedAt, cur.UpdatedAt = c.Group.Description, at, at
		cur.ConfirmedDescription, cur.DescriptionConfirmed = c.Group.Description, true
		if c.Group, err = putGroup(tx, cur); err != nil {
			return false, err
		}
		c.Previous = previous
		return true, nil
	case GroupReplaced:
		if !found || cur.State != Active || cur.Revision != c.Group.Revision || cur.PendingMembers > 0 || cur.PendingUpdate != "" {
			return false, nil
		}
		if err := tx.DropMembers(n); err != nil {
			return false, err
		}
		previous := cur.Description
		cur.UpstreamID, cur.Description, cur.SyncedAt, cur.UpdatedAt = c.Group.UpstreamID, c.Group.Description, at, at
		cur.ConfirmedDescription, cur.DescriptionConfirmed = c.Group.Description, true
		cur.MembersSyncedAt, cur.MemberCount, cur.PendingUpdate = time.Time{}, 0, ""
		cur.MembersVersion++
		if c.Group, err = putGroup(tx, cur); err != nil {
			return false, err
		}
		c.Previous = previous
		return true, nil
	default:
		return false, fmt.Errorf("change of %s: unknown kind %q", n, c.Kind)
	}
}

// SyncMembers replaces the group's member list with users if it is still
// the group with upstreamID (not one made again since), its MembersVersion
// is still version and no member change is pending (PendingMembers is 0),
// and sets MembersSyncedAt to at, in one transaction. It returns who was
// added and removed (by MemberCursor), and ok false (changing nothing)
// otherwise. A member whose e-mail or display name changed upstream is
// updated in place (a list change, so MembersVersion moves) but reported
// neither added nor removed.
func (l *Ledger) SyncMembers(ctx context.Context, name Name, upstreamID string, version uint64, users []User, at time.Time) (added, removed []User, ok bool, err error) {
	err = l.Update(ctx, name.Tenant, func(tx Tx) error {
		added, removed, ok = nil, nil, false // the function may run again
		g, err := tx.Group(name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if g.UpstreamID != upstreamID || g.MembersVersion != version || g.PendingMembers > 0 {
			return nil
		}
		have, err := membersByID(tx, name)
		if err != nil {
			return err
		}
		want := make(map[string]User, len(users))
		for _, u := range users {
			if _, dup := want[u.ID]; !dup && u.ID != "" {
				want[u.ID] = u
			}
		}
		changed := false
		for id, m := range have {
			if u, keep := want[id]; keep && u == m {
				continue
			}
			if err := tx.RemoveMember(name, m); err != nil {
				return err
			}
			if _, keep := want[id]; !keep {
				removed = append(removed, m)
			}
			changed = true
		}
		for id, u := range want {
			m, had := have[id]
			if had && u == m {
				continue
			}
			if err := tx.PutMember(name, u); err != nil {
				return err
			}
			if !had {
				added = append(added, u)
			}
			changed = true
		}
		sortUsers(added)
		sortUsers(removed)
		if changed {
			g.MembersVersion++
		}
		g.MemberCount, g.MembersSyncedAt = len(want), at
		if _, err := putGroup(tx, g); err != nil {
			return err
		}
		ok = true
		return rememberUsers(tx, users)
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("sync members of %s: %w", name, err)
	}
	return added, removed, ok, nil
}

// SyncOwners records owners as the owners of the group with upstreamID, as
// a reconcile pass read them through Get Group, if name is still that group,
// and reports whether it did. Owners are mirrored read-only (ordered by
// MemberCursor, one per id) and do not move the group's Revision.
func (l *Ledger) SyncOwners(ctx context.Context, name Name, upstreamID string, owners []User) (bool, error) {
	ok := false
	err := l.Update(ctx, name.Tenant, func(tx Tx) error {
		ok = false // the function may run again
		g, err := tx.Group(name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil || g.UpstreamID != upstreamID || upstreamID == "" {
			return err
		}
		list := slices.Clone(owners)
		sortUsers(list)
		rec := Owners{UpstreamID: upstreamID, Users: []User{}}
		seen := map[string]bool{}
		for _, u := range list {
			if u.ID != "" && !seen[u.ID] {
				seen[u.ID] = true
				rec.Users = append(rec.Users, u)
			}
		}
		ok = true
		return tx.PutOwners(name, rec)
	})
	if err != nil {
		return false, fmt.Errorf("sync owners of %s: %w", name, err)
	}
	return ok, nil
}

// Owners returns the owners last recorded for the group as it is now (nil
// if never read, or read of a group of this name since made again), ordered
// by MemberCursor; ErrNotFound if there is no such group.
func (l *Ledger) Owners(ctx context.Context, name Name) ([]User, error) {
	var out []User
	err := l.View(ctx, name.Tenant, func(tx Tx) error {
		out = nil
		g, err := tx.Group(name)
		if err != nil {
			return err
		}
		rec, ok, err := tx.Owners(name)
		if err != nil || !ok || rec.UpstreamID != g.UpstreamID {
			return err
		}
		out = append(make([]User, 0, len(rec.Users)), rec.Users...)
		return nil
	})
	return out, err
}

// sortUsers orders users as a member list is (by MemberCursor), so results
// do not depend on map order.
func sortUsers(us []User) {
	slices.SortFunc(us, func(a, b User) int { return strings.Compare(MemberCursor(a), MemberCursor(b)) })
}
