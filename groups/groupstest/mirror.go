package groupstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/queue/queuetest"
)

// The cases of this file cover the mirror beyond create and delete:
// description updates, member lists, known users, paged lists and the
// reconciler's writes.

// updateOp returns what groups.Service passes to UpdatePending.
func updateOp(n groups.Name) queue.Operation {
	return queue.Operation{
		ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindUpdate,
		Target: n.String(), Payload: []byte(`{}`), Actor: "key:ci", State: queue.Queued,
		CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour),
	}
}

// membersOp returns what groups.Service passes to QueueMembers.
func membersOp(n groups.Name) queue.Operation {
	op := updateOp(n)
	op.Kind = groups.KindMembers
	return op
}

// mustUpdate queues an update of n's description and returns the group as
// stored and the operation.
func mustUpdate(t *testing.T, s Store, n groups.Name, description string) (groups.Group, queue.Operation) {
	t.Helper()
	g, op, err := s.UpdatePending(t.Context(), n, description, 0, updateOp(n), noQueueLimit)
	if err != nil {
		t.Fatalf("UpdatePending(%s): %v", n, err)
	}
	return g, op
}

// commit commits effects with the outcome of a fresh operation of tenant
// and project, as a dispatcher does for any operation.
func commit(t *testing.T, s Store, tenant, project string, effects ...groups.Effect) {
	t.Helper()
	op, err := s.Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: tenant, Project: project, Kind: groups.KindMembers, CreatedAt: t0}, noQueueLimit)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	complete(t, s, op.ID, queue.Succeeded, effects...)
}

// user returns a test user: id u-<local part>, e-mail as given.
func user(email string) groups.User {
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	return groups.User{ID: "u-" + local, Email: email, DisplayName: "User " + local}
}

func userIDs(us []groups.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// sortedIDs returns the users' ids in order, for comparing sets.
func sortedIDs(us []groups.User) []string {
	ids := userIDs(us)
	slices.Sort(ids)
	return ids
}

func mustMembers(t *testing.T, s Store, n groups.Name) []groups.User {
	t.Helper()
	us, more, err := s.ListMembers(t.Context(), n, groups.PageQuery{})
	if err != nil {
		t.Fatalf("ListMembers(%s): %v", n, err)
	}
	if more {
		t.Fatalf("ListMembers(%s) without a limit says more follow", n)
	}
	return us
}

// wantMembers checks the member list (ids in list order) and that the
// group's MemberCount agrees with it.
func wantMembers(t *testing.T, s Store, n groups.Name, ids ...string) groups.Group {
	t.Helper()
	if got := userIDs(mustMembers(t, s, n)); !slices.Equal(got, ids) {
		t.Fatalf("members of %s = %q, want %q", n, got, ids)
	}
	g := mustGroup(t, s, n)
	if g.MemberCount != len(ids) {
		t.Fatalf("MemberCount of %s = %d, want %d", n, g.MemberCount, len(ids))
	}
	return g
}

func wantRevision(t *testing.T, s Store, n groups.Name, want uint64, after string) groups.Group {
	t.Helper()
	g := mustGroup(t, s, n)
	if g.Revision != want {
		t.Fatalf("Revision of %s after %s = %d, want %d", n, after, g.Revision, want)
	}
	return g
}

// --- revisions and updates ----------------------------------------------------

func testRevisionRules(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	g, op := createArgs(n, "about billing")
	g.Revision = 99 // the store sets it, not the caller
	if _, err := s.CreatePending(t.Context(), g, op, groupLimit(noLimit)); err != nil {
		t.Fatal(err)
	}
	wantRevision(t, s, n, 1, "CreatePending")
	complete(t, s, op.ID, queue.Succeeded, groups.Created{Name: n, UpstreamID: "g-1", At: t0})
	wantRevision(t, s, n, 2, "Created (state and upstream id)")

	stored, upd := mustUpdate(t, s, n, "new text")
	if stored.Revision != 3 {
		t.Fatalf("UpdatePending returned Revision %d, want 3", stored.Revision)
	}
	wantRevision(t, s, n, 3, "UpdatePending")
	complete(t, s, upd.ID, queue.Succeeded, groups.Updated{Name: n, Operation: upd.ID, At: t0.Add(2 * time.Hour)})
	wantRevision(t, s, n, 3, "Updated (PendingUpdate and SyncedAt only)")

	// An update to the same description changes no setting.
	if stored, _ = mustUpdate(t, s, n, "new text"); stored.Revision != 3 {
		t.Fatalf("UpdatePending to the same description: Revision %d, want 3", stored.Revision)
	}

	// Members, sync times and queued member changes leave it alone.
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{user("ann@example.com")}, At: t0})
	wantRevision(t, s, n, 3, "MembersAdded")
	commit(t, s, "SHIP", "MOH", groups.MembersRemoved{Name: n, UserIDs: []string{"u-ann"}, At: t0})
	wantRevision(t, s, n, 3, "MembersRemoved")
	g = mustGroup(t, s, n)
	if _, _, ok, err := s.SyncMembers(t.Context(), n, "g-1", g.MembersVersion, nil, t0.Add(3*time.Hour)); err != nil || !ok {
		t.Fatalf("SyncMembers = %v, %v", ok, err)
	}
	wantRevision(t, s, n, 3, "SyncMembers")
	if _, err := s.QueueMembers(t.Context(), n, membersOp(n), noQueueLimit, nil); err != nil {
		t.Fatal(err)
	}
	wantRevision(t, s, n, 3, "QueueMembers")
	// With a member change pending, the member list is not read as settled.
	g = mustGroup(t, s, n)
	if _, _, ok, err := s.SyncMembers(t.Context(), n, "g-1", g.MembersVersion, nil, t0.Add(3*time.Hour)); err != nil || ok {
		t.Fatalf("SyncMembers with a member change pending = %v, %v; want not applied", ok, err)
	}
	commit(t, s, "SHIP", "MOH", groups.MembersSettled{Name: n, QueuedAt: t0.Add(time.Hour)})
	if g := mustGroup(t, s, n); g.PendingMembers != 0 || g.Revision != 3 {
		t.Fatalf("after MembersSettled: PendingMembers %d, Revision %d; want 0 and 3", g.PendingMembers, g.Revision)
	}
	commit(t, s, "SHIP", "MOH", groups.MembersSettled{Name: n, QueuedAt: t0.Add(time.Hour)}) // never below zero
	if g := mustGroup(t, s, n); g.PendingMembers != 0 {
		t.Fatalf("a second MembersSettled: PendingMembers %d, want 0", g.PendingMembers)
	}
	if _, err := s.SyncGroups(t.Context(), "SHIP", nil, []groups.Name{n}, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantRevision(t, s, n, 3, "SyncGroups marking it seen")

	del, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	wantRevision(t, s, n, 4, "DeletePending")
	complete(t, s, del.ID, queue.Failed, groups.DeleteFailed{Name: n, At: t0})
	wantRevision(t, s, n, 5, "DeleteFailed")
}

func testUpdatePending(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "Billing")
	mustActive(t, s, n, "g-1")
	before := mustGroup(t, s, n)
	v := version(t, s, "SHIP", "MOH")
	op := updateOp(n)
	stored, got, err := s.UpdatePending(t.Context(), name("SHIP", "MOH", "billing"), "new text", before.Revision, op, noQueueLimit)
	if err != nil {
		t.Fatalf("UpdatePending: %v", err)
	}
	if got.ID != op.ID || got.State != queue.Queued || got.Seq == 0 {
		t.Fatalf("UpdatePending returned operation %+v", got)
	}
	if stored.Name != n || stored.Description != "new text" || stored.PendingUpdate != op.ID || stored.Revision != before.Revision+1 ||
		stored.State != groups.Active || stored.PendingOperation != "" || stored.UpstreamID != "g-1" {
		t.Fatalf("UpdatePending returned group %+v", stored)
	}
	if g := mustGroup(t, s, n); g != stored {
		t.Fatalf("stored group %+v\nreturned       %+v", g, stored)
	}
	if head, err := s.Head(t.Context(), "SHIP"); err != nil || head.ID != op.ID {
		t.Fatalf("Head = %s, %v; want the update", head.ID, err)
	}
	if version(t, s, "SHIP", "MOH") == v {
		t.Fatal("GroupsVersion unchanged by UpdatePending")
	}

	// A second update while the first is queued replaces PendingUpdate.
	second, op2 := mustUpdate(t, s, n, "newer")
	if second.PendingUpdate != op2.ID || second.Revision != stored.Revision+1 {
		t.Fatalf("second update: %+v", second)
	}
	queuetest.WantDepth(t, s, "SHIP", 2)

	// A creating group may be updated: its queue runs the create first.
	c := name("SHIP", "MOH", "creating")
	mustCreate(t, s, c, noLimit)
	if g, _ := mustUpdate(t, s, c, "set early"); g.State != groups.Creating || g.Description != "set early" {
		t.Fatalf("update of a creating group: %+v", g)
	}
}

func testUpdatePendingRefused(t *testing.T, s Store) {
	active := name("SHIP", "MOH", "active")
	mustActive(t, s, active, "g-1")
	deleting := name("SHIP", "MOH", "deleting")
	mustActive(t, s, deleting, "g-2")
	if _, err := s.DeletePending(t.Context(), deleting, deleteOp(deleting), noQueueLimit); err != nil {
		t.Fatal(err)
	}
	rev := mustGroup(t, s, active).Revision
	delRev := mustGroup(t, s, deleting).Revision
	full := queue.Limits{Project: 1}
	expires := t0.Add(24 * time.Hour)
	first := updateOp(active)
	first.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "upd-1", Fingerprint: "update active", Expires: expires}

	for _, tc := range []struct {
		what   string
		n      groups.Name
		ifRev  uint64
		limits queue.Limits
		want   error
	}{
		{"a missing group", name("SHIP", "MOH", "missing"), 0, noQueueLimit, groups.ErrNotFound},
		{"a missing group with If-Match", name("SHIP", "MOH", "missing"), 1, noQueueLimit, groups.ErrNotFound},
		{"another project", name("SHIP", "HR", "active"), 0, noQueueLimit, groups.ErrNotFound},
		{"a stale revision", active, rev + 1, noQueueLimit, groups.ErrRevision},
		{"an older revision", active, rev - 1, noQueueLimit, groups.ErrRevision},
		{"a deleting group", deleting, 0, noQueueLimit, groups.ErrPending},
		{"a deleting group at its revision", deleting, delRev, noQueueLimit, groups.ErrPending},
		{"a deleting group at a stale revision", deleting, delRev - 1, noQueueLimit, groups.ErrRevision},
	} {
		op := updateOp(tc.n)
		if _, _, err := s.UpdatePending(t.Context(), tc.n, "changed", tc.ifRev, op, tc.limits); !errors.Is(err, tc.want) {
			t.Fatalf("UpdatePending of %s: error = %v, want %v", tc.what, err, tc.want)
		}
		queuetest.WantNoOp(t, s, op.ID)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)

	// The queue is checked before the group and its revision.
	if _, err := s.QueueMembers(t.Context(), active, membersOp(active), noQueueLimit, nil); err != nil {
		t.Fatal(err)
	}
	var qf *queue.QueueFullError
	for _, n := range []groups.Name{active, name("SHIP", "MOH", "missing")} {
		op := updateOp(n)
		if _, _, err := s.UpdatePending(t.Context(), n, "changed", rev+7, op, full); !errors.As(err, &qf) {
			t.Fatalf("UpdatePending(%s) into a full queue at a stale revision: error = %v, want a *QueueFullError", n, err)
		}
		queuetest.WantNoOp(t, s, op.ID)
	}
	g := wantRevision(t, s, active, rev, "refused updates")
	if g.Description != "about active" || g.PendingUpdate != "" {
		t.Fatalf("refused updates changed the group: %+v", g)
	}

	// Idempotent replay comes first too.
	if _, _, err := s.UpdatePending(t.Context(), active, "changed", rev, first, noQueueLimit); err != nil {
		t.Fatal(err)
	}
	again := updateOp(active)
	again.Idempotency = first.Idempotency
	var replay *queue.ReplayError
	if _, _, err := s.UpdatePending(t.Context(), active, "changed", rev, again, full); !errors.As(err, &replay) || replay.OperationID != first.ID {
		t.Fatalf("UpdatePending replay at the old revision into a full queue: error = %v, want a *ReplayError naming %s", err, first.ID)
	}
	queuetest.WantNoOp(t, s, again.ID)
}

func testEffectUpdated(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	_, first := mustUpdate(t, s, n, "one")
	_, second := mustUpdate(t, s, n, "two")
	at := t0.Add(5 * time.Hour)

	// The first update's outcome: the second is still pending.
	complete(t, s, first.ID, queue.Succeeded, groups.Updated{Name: n, Operation: first.ID, Description: "one", At: at})
	g := mustGroup(t, s, n)
	if g.PendingUpdate != second.ID || g.Description != "two" || !g.SyncedAt.Equal(at) {
		t.Fatalf("after the first update's Updated: %+v", g)
	}
	at = at.Add(time.Minute)
	complete(t, s, second.ID, queue.Succeeded, groups.Updated{Name: n, Operation: second.ID, Description: "two", At: at})
	g = mustGroup(t, s, n)
	if g.PendingUpdate != "" || g.Description != "two" || !g.SyncedAt.Equal(at) {
		t.Fatalf("after the second update's Updated: %+v", g)
	}
}

func testEffectUpdateFailed(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	rev := mustGroup(t, s, n).Revision
	_, op := mustUpdate(t, s, n, "new text")
	at := t0.Add(5 * time.Hour)
	complete(t, s, op.ID, queue.Failed, groups.UpdateFailed{Name: n, Operation: op.ID, Previous: "about billing", At: at})
	g := mustGroup(t, s, n)
	if g.Description != "about billing" || g.PendingUpdate != "" || g.Revision != rev+2 || !g.UpdatedAt.Equal(at) {
		t.Fatalf("after UpdateFailed: %+v; want the old description, no pending update, revision %d", g, rev+2)
	}

	// A later update queued meanwhile owns the description: the failure of
	// the earlier one changes nothing.
	_, older := mustUpdate(t, s, n, "older")
	newer, newerOp := mustUpdate(t, s, n, "newer")
	complete(t, s, older.ID, queue.Failed, groups.UpdateFailed{Name: n, Operation: older.ID, Previous: "about billing", At: at})
	if g := mustGroup(t, s, n); g != newer {
		t.Fatalf("UpdateFailed of a superseded update changed the group:\n%+v\nwant %+v", g, newer)
	}
	// Both failed: "older" never reached TechPass, so the description goes
	// back to the one TechPass confirmed, not to the newer update's
	// Previous.
	complete(t, s, newerOp.ID, queue.Failed, groups.UpdateFailed{Name: n, Operation: newerOp.ID, Previous: "older", At: at})
	if g := mustGroup(t, s, n); g.Description != "about billing" || g.PendingUpdate != "" {
		t.Fatalf("after the newer update failed: %+v; want the confirmed description back", g)
	}
}

// --- member changes -------------------------------------------------------------

func testQueueMembers(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	before := mustGroup(t, s, n)
	op := membersOp(n)
	got, err := s.QueueMembers(t.Context(), name("SHIP", "MOH", "BILLING"), op, noQueueLimit, nil)
	if err != nil {
		t.Fatalf("QueueMembers: %v", err)
	}
	if got.ID != op.ID || got.State != queue.Queued || got.Seq == 0 {
		t.Fatalf("QueueMembers returned %+v", got)
	}
	if head, err := s.Head(t.Context(), "SHIP"); err != nil || head.ID != op.ID {
		t.Fatalf("Head = %s, %v; want the member change", head.ID, err)
	}
	// Only the count of pending member changes moves.
	before.PendingMembers++
	if g := mustGroup(t, s, n); g != before {
		t.Fatalf("QueueMembers changed the group beyond PendingMembers:\n%+v\nwant %+v", g, before)
	}
	// A creating group takes member changes: the create runs first.
	c := name("SHIP", "MOH", "creating")
	mustCreate(t, s, c, noLimit)
	if _, err := s.QueueMembers(t.Context(), c, membersOp(c), noQueueLimit, nil); err != nil {
		t.Fatalf("QueueMembers of a creating group: %v", err)
	}
	queuetest.WantDepth(t, s, "SHIP", 3)
}

func testQueueMembersRefused(t *testing.T, s Store) {
	deleting := name("SHIP", "MOH", "deleting")
	mustActive(t, s, deleting, "g-1")
	if _, err := s.DeletePending(t.Context(), deleting, deleteOp(deleting), noQueueLimit); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    groups.Name
		want error
	}{
		{name("SHIP", "MOH", "missing"), groups.ErrNotFound},
		{name("SHIP", "HR", "deleting"), groups.ErrNotFound},
		{deleting, groups.ErrPending},
	} {
		op := membersOp(tc.n)
		if _, err := s.QueueMembers(t.Context(), tc.n, op, noQueueLimit, nil); !errors.Is(err, tc.want) {
			t.Fatalf("QueueMembers(%s): error = %v, want %v", tc.n, err, tc.want)
		}
		queuetest.WantNoOp(t, s, op.ID)
	}
	var qf *queue.QueueFullError
	op := membersOp(deleting)
	if _, err := s.QueueMembers(t.Context(), deleting, op, queue.Limits{Tenant: 1}, nil); !errors.As(err, &qf) {
		t.Fatalf("QueueMembers into a full queue: error = %v, want a *QueueFullError first", err)
	}
	queuetest.WantNoOp(t, s, op.ID)
	queuetest.WantDepth(t, s, "SHIP", 1)
}

func testRecord(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	idle := groups.Idle{Version: mustGroup(t, s, n).MembersVersion}
	expires := t0.Add(24 * time.Hour)
	op := membersOp(n)
	op.State, op.FinishedAt, op.Result = queue.Succeeded, op.CreatedAt, []byte(`{"unchanged":["a@example.com"]}`)
	op.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "members-1", Fingerprint: "add a", Expires: expires}
	got, err := s.RecordMembers(t.Context(), n, op, idle)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if got.ID != op.ID || got.State != queue.Succeeded {
		t.Fatalf("Record returned %+v", got)
	}
	stored, err := s.Operation(t.Context(), op.ID)
	if err != nil {
		t.Fatalf("Operation: %v", err)
	}
	if stored.State != queue.Succeeded || string(stored.Result) != string(op.Result) || !stored.FinishedAt.Equal(op.FinishedAt) || stored.Kind != groups.KindMembers {
		t.Fatalf("recorded operation = %+v", stored)
	}
	queuetest.WantDepth(t, s, "SHIP", 0) // not queued

	// Once a member change is queued, or the list moved, the group is not
	// idle: nothing is recorded.
	moved := membersOp(n)
	moved.State, moved.FinishedAt = queue.Succeeded, moved.CreatedAt
	if _, err := s.RecordMembers(t.Context(), n, moved, groups.Idle{Version: idle.Version + 1}); !errors.Is(err, groups.ErrStale) {
		t.Fatalf("RecordMembers at another version: error = %v, want ErrStale", err)
	}
	if _, err := s.QueueMembers(t.Context(), n, membersOp(n), noQueueLimit, nil); err != nil {
		t.Fatal(err)
	}
	if g := mustGroup(t, s, n); g.PendingMembers != 1 {
		t.Fatalf("PendingMembers after QueueMembers = %d, want 1", g.PendingMembers)
	}
	stale := membersOp(n)
	stale.State, stale.FinishedAt = queue.Succeeded, stale.CreatedAt
	if _, err := s.RecordMembers(t.Context(), n, stale, idle); !errors.Is(err, groups.ErrStale) {
		t.Fatalf("RecordMembers with a change pending: error = %v, want ErrStale", err)
	}
	if _, err := s.QueueMembers(t.Context(), n, membersOp(n), noQueueLimit, &idle); !errors.Is(err, groups.ErrStale) {
		t.Fatalf("QueueMembers if idle, with a change pending: error = %v, want ErrStale", err)
	}
	queuetest.WantNoOp(t, s, stale.ID)

	// The key is remembered: a replay, whether recorded or queued.
	again := op
	again.ID = queue.NewID()
	var replay *queue.ReplayError
	if _, err := s.RecordMembers(t.Context(), n, again, idle); !errors.As(err, &replay) || replay.OperationID != op.ID {
		t.Fatalf("Record replay: error = %v, want a *ReplayError naming %s", err, op.ID)
	}
	queuetest.WantNoOp(t, s, again.ID)
	queued := membersOp(n)
	queued.Idempotency = op.Idempotency
	if _, err := s.QueueMembers(t.Context(), n, queued, noQueueLimit, nil); !errors.As(err, &replay) || replay.OperationID != op.ID {
		t.Fatalf("QueueMembers after Record with its key: error = %v, want a *ReplayError naming %s", err, op.ID)
	}
	queuetest.WantNoOp(t, s, queued.ID)
	if id, fp, ok, err := s.Idempotent(t.Context(), "key:ci", "members-1", t0); err != nil || !ok || id != op.ID || fp != "add a" {
		t.Fatalf("Idempotent = %s, %s, %v, %v", id, fp, ok, err)
	}

	// The key reused for another request.
	other := again
	other.ID = queue.NewID()
	other.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "members-1", Fingerprint: "add b", Expires: expires}
	if _, err := s.RecordMembers(t.Context(), n, other, idle); !errors.Is(err, queue.ErrIdempotencyMismatch) {
		t.Fatalf("Record with a reused key: error = %v, want ErrIdempotencyMismatch", err)
	}
	queuetest.WantNoOp(t, s, other.ID)

	// A key that a queued operation took first.
	first := membersOp(n)
	first.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "members-2", Fingerprint: "add c", Expires: expires}
	if _, err := s.QueueMembers(t.Context(), n, first, noQueueLimit, nil); err != nil {
		t.Fatal(err)
	}
	rec := again
	rec.ID, rec.Idempotency = queue.NewID(), first.Idempotency
	if _, err := s.RecordMembers(t.Context(), n, rec, idle); !errors.As(err, &replay) || replay.OperationID != first.ID {
		t.Fatalf("Record after QueueMembers with its key: error = %v, want a *ReplayError naming %s", err, first.ID)
	}
	queuetest.WantNoOp(t, s, rec.ID)

	queuetest.WantDepth(t, s, "SHIP", 2)
}

func testEffectsMembers(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	g := wantMembers(t, s, n)
	if g.MembersVersion != 0 {
		t.Fatalf("MembersVersion of a new group = %d", g.MembersVersion)
	}
	at := t0.Add(4 * time.Hour)
	ann, bob, cid := user("Ann@Example.com"), user("bob@example.com"), user("cid@example.com")
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{bob, ann}, At: at})
	g = wantMembers(t, s, n, "u-ann", "u-bob")
	if g.MembersVersion != 1 {
		t.Fatalf("MembersVersion after MembersAdded = %d, want 1", g.MembersVersion)
	}
	if us := mustMembers(t, s, n); us[0] != ann || us[1] != bob {
		t.Fatalf("members = %+v, want them as added", us)
	}

	// A user already there (by id, whatever the e-mail now) is left as is.
	renamed := ann
	renamed.Email, renamed.DisplayName = "ann.new@example.com", "Ann New"
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{renamed, cid, cid}, At: at})
	g = wantMembers(t, s, n, "u-ann", "u-bob", "u-cid")
	if us := mustMembers(t, s, n); us[0] != ann {
		t.Fatalf("member ann = %+v, want kept as %+v", us[0], ann)
	}
	if g.MembersVersion != 2 {
		t.Fatalf("MembersVersion after a second MembersAdded = %d, want 2", g.MembersVersion)
	}
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{bob}, At: at})
	if g = mustGroup(t, s, n); g.MembersVersion != 2 {
		t.Fatalf("MembersVersion after adding members only = %d, want 2 (no change)", g.MembersVersion)
	}

	commit(t, s, "SHIP", "MOH", groups.MembersRemoved{Name: n, UserIDs: []string{"u-bob", "u-nobody"}, At: at})
	g = wantMembers(t, s, n, "u-ann", "u-cid")
	if g.MembersVersion != 3 {
		t.Fatalf("MembersVersion after MembersRemoved = %d, want 3", g.MembersVersion)
	}
	commit(t, s, "SHIP", "MOH", groups.MembersRemoved{Name: n, UserIDs: []string{"u-bob"}, At: at})
	if g = mustGroup(t, s, n); g.MembersVersion != 3 {
		t.Fatalf("MembersVersion after removing non-members = %d, want 3 (no change)", g.MembersVersion)
	}

	// A member change moves the project's version (MemberCount is listed).
	v := version(t, s, "SHIP", "MOH")
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{bob}, At: at})
	if version(t, s, "SHIP", "MOH") == v {
		t.Fatal("GroupsVersion unchanged by a member change")
	}

	// Members are per group.
	other := name("SHIP", "MOH", "billing2")
	mustActive(t, s, other, "g-2")
	wantMembers(t, s, other)
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: other, Users: []groups.User{ann}, At: at})
	wantMembers(t, s, other, "u-ann")
	wantMembers(t, s, n, "u-ann", "u-bob", "u-cid")
}

func testEffectMemberChanged(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	ann, bob := user("ann@example.com"), user("bob@example.com")
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{ann, bob}, At: t0})
	before := wantMembers(t, s, n, "u-ann", "u-bob")

	// The new e-mail sorts after bob's: the list is in e-mail order.
	renamed := ann
	renamed.Email, renamed.DisplayName = "zed@example.com", "Ann Zed"
	at := t0.Add(3 * time.Hour)
	commit(t, s, "SHIP", "MOH", groups.MemberChanged{Name: n, User: renamed, At: at})
	g := wantMembers(t, s, n, "u-bob", "u-ann")
	if us := mustMembers(t, s, n); us[1] != renamed {
		t.Fatalf("member = %+v after MemberChanged, want %+v", us[1], renamed)
	}
	if g.MembersVersion != before.MembersVersion+1 || g.Revision != before.Revision || !g.UpdatedAt.Equal(at) {
		t.Fatalf("after MemberChanged: MembersVersion %d, Revision %d, UpdatedAt %v; want %d, %d (settings unchanged), %v",
			g.MembersVersion, g.Revision, g.UpdatedAt, before.MembersVersion+1, before.Revision, at)
	}

	// Unchanged, or not a member: nothing moves.
	commit(t, s, "SHIP", "MOH", groups.MemberChanged{Name: n, User: renamed, At: at.Add(time.Hour)},
		groups.MemberChanged{Name: n, User: user("cid@example.com"), At: at.Add(time.Hour)})
	if again := wantMembers(t, s, n, "u-bob", "u-ann"); again.MembersVersion != g.MembersVersion || !again.UpdatedAt.Equal(at) {
		t.Fatalf("MemberChanged that changes nothing moved the group: %+v", again)
	}
}

func testMemberEffectsOnMissingGroup(t *testing.T, s Store) {
	kept := name("SHIP", "MOH", "kept")
	mustActive(t, s, kept, "g-1")
	gone := name("SHIP", "MOH", "gone")
	v := version(t, s, "SHIP", "MOH")
	commit(t, s, "SHIP", "MOH",
		groups.MembersAdded{Name: gone, Users: []groups.User{user("ann@example.com")}, At: t0},
		groups.MembersRemoved{Name: gone, UserIDs: []string{"u-ann"}, At: t0},
		groups.Updated{Name: gone, Operation: "x", At: t0},
		groups.UpdateFailed{Name: gone, Operation: "x", Previous: "p", At: t0},
		groups.MembersAdded{Name: name("NOBODY", "MOH", "gone"), Users: []groups.User{user("bob@example.com")}, At: t0},
	)
	wantGone(t, s, gone)
	if _, _, err := s.ListMembers(t.Context(), gone, groups.PageQuery{}); !errors.Is(err, groups.ErrNotFound) {
		t.Fatalf("ListMembers of a missing group: error = %v, want ErrNotFound", err)
	}
	wantList(t, s, "SHIP", "MOH", "SHIP:MOH:kept")
	if got := version(t, s, "SHIP", "MOH"); got != v {
		t.Fatalf("GroupsVersion moved (%d to %d) by effects on a missing group", v, got)
	}
	// A group created later under the name starts empty.
	mustActive(t, s, gone, "g-2")
	wantMembers(t, s, gone)
}

func testMembersDroppedWithGroup(t *testing.T, s Store) {
	ann, bob := user("ann@example.com"), user("bob@example.com")
	fill := func(n groups.Name) {
		t.Helper()
		commit(t, s, n.Tenant, n.Project, groups.MembersAdded{Name: n, Users: []groups.User{ann, bob}, At: t0})
		wantMembers(t, s, n, "u-ann", "u-bob")
	}
	kept := name("SHIP", "MOH", "kept")
	mustActive(t, s, kept, "g-kept")
	fill(kept)

	// Deleted.
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	fill(n)
	del, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	wantMembers(t, s, n, "u-ann", "u-bob") // still there while deleting
	complete(t, s, del.ID, queue.Succeeded, groups.Deleted{Name: n})
	wantGone(t, s, n)
	mustActive(t, s, name("SHIP", "MOH", "BILLING"), "g-2")
	if g := wantMembers(t, s, n); g.MembersVersion != 0 {
		t.Fatalf("recreated group: MembersVersion %d, want 0", g.MembersVersion)
	}

	// CreateFailed (members added while it was being created).
	c := name("SHIP", "MOH", "creating")
	op := mustCreate(t, s, c, noLimit)
	fill(c)
	complete(t, s, op.ID, queue.Failed, groups.CreateFailed{Name: c})
	mustCreate(t, s, c, noLimit)
	wantMembers(t, s, c)

	// GroupVanished.
	v := name("SHIP", "MOH", "vanishing")
	mustActive(t, s, v, "g-3")
	fill(v)
	g := mustGroup(t, s, v)
	applied, err := s.SyncGroups(t.Context(), "SHIP", []groups.GroupChange{{Kind: groups.GroupVanished, Group: g}}, nil, t0)
	if err != nil || len(applied) != 1 {
		t.Fatalf("SyncGroups(vanished) = %d changes, %v", len(applied), err)
	}
	wantGone(t, s, v)
	mustActive(t, s, v, "g-4")
	wantMembers(t, s, v)

	wantMembers(t, s, kept, "u-ann", "u-bob")
}

// --- known users ----------------------------------------------------------------

func testKnownUsers(t *testing.T, s Store) {
	ctx := t.Context()
	if got, err := s.KnownUsers(ctx, "SHIP", []string{"ann@example.com"}); err != nil || len(got) != 0 {
		t.Fatalf("KnownUsers of an empty store = %v, %v", got, err)
	}
	ann := groups.User{ID: "0f3c5e0a-1111-4a4a-8b8b-000000000001", Email: "Ann.Lee@Example.com", DisplayName: "Ann Lee"}
	bob := groups.User{ID: "0f3c5e0a-1111-4a4a-8b8b-000000000002", Email: "bob@example.com", DisplayName: "Bob"}
	cid := groups.User{ID: "0f3c5e0a-1111-4a4a-8b8b-000000000003", Email: "cid@example.com", DisplayName: "Cid"}
	dan := groups.User{ID: "0f3c5e0a-1111-4a4a-8b8b-000000000004", Email: "dan@example.com", DisplayName: "Dan"}

	// Resolved users.
	commit(t, s, "SHIP", "MOH", groups.UsersResolved{Tenant: "SHIP", Users: []groups.User{ann}})
	// Members of a group.
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{bob}, At: t0})
	if got, err := s.KnownUsers(ctx, "SHIP", []string{"bob@example.com", bob.ID}); err != nil || !mapsEqual(got, map[string]groups.User{"bob@example.com": bob, bob.ID: bob}) {
		t.Fatalf("KnownUsers of a member added = %+v, %v", got, err)
	}
	// Members read by a reconcile pass.
	g := mustGroup(t, s, n)
	if _, _, ok, err := s.SyncMembers(ctx, n, "g-1", g.MembersVersion, []groups.User{cid}, t0); err != nil || !ok {
		t.Fatalf("SyncMembers = %v, %v", ok, err)
	}
	// Another tenant's users are its own.
	commit(t, s, "DOCK", "MOH", groups.UsersResolved{Tenant: "DOCK", Users: []groups.User{dan}})

	asked := []string{"ann.lee@example.com", ann.ID, "bob@example.com", bob.ID, cid.ID, "cid@example.com", "dan@example.com", dan.ID, "nobody@example.com"}
	got, err := s.KnownUsers(ctx, "SHIP", asked)
	if err != nil {
		t.Fatalf("KnownUsers: %v", err)
	}
	want := map[string]groups.User{
		"ann.lee@example.com": ann, ann.ID: ann, "bob@example.com": bob, bob.ID: bob, cid.ID: cid, "cid@example.com": cid,
	}
	if !mapsEqual(got, want) {
		t.Fatalf("KnownUsers(SHIP) = %+v\nwant %+v", got, want)
	}
	if got, err := s.KnownUsers(ctx, "DOCK", asked); err != nil || !mapsEqual(got, map[string]groups.User{"dan@example.com": dan, dan.ID: dan}) {
		t.Fatalf("KnownUsers(DOCK) = %+v, %v", got, err)
	}

	// Users stay known after they leave the group (bob left with the
	// reconcile pass), and a new e-mail replaces the old one.
	wantMembers(t, s, n, cid.ID)
	moved := ann
	moved.Email = "ann.kim@example.com"
	commit(t, s, "SHIP", "MOH", groups.UsersResolved{Tenant: "SHIP", Users: []groups.User{moved}})
	got, err = s.KnownUsers(ctx, "SHIP", []string{bob.ID, ann.ID, "ann.kim@example.com", "ann.lee@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]groups.User{bob.ID: bob, ann.ID: moved, "ann.kim@example.com": moved}; !mapsEqual(got, want) {
		t.Fatalf("KnownUsers after changes = %+v\nwant %+v", got, want)
	}
}

func mapsEqual(a, b map[string]groups.User) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// --- lists ------------------------------------------------------------------------

// pageGroups reads every page of a group list with limit and returns the
// names in order and the number of pages.
func pageGroups(t *testing.T, s Store, tenant string, q groups.PageQuery) ([]string, int) {
	t.Helper()
	var all []string
	for pages := 1; ; pages++ {
		gs, more, err := s.ListGroups(t.Context(), tenant, q)
		if err != nil {
			t.Fatalf("ListGroups(%s, %+v): %v", tenant, q, err)
		}
		if q.Limit > 0 && len(gs) > q.Limit {
			t.Fatalf("ListGroups(%+v) returned %d groups", q, len(gs))
		}
		all = append(all, keys(gs)...)
		if !more {
			return all, pages
		}
		if len(gs) == 0 {
			t.Fatalf("ListGroups(%+v): an empty page with more to follow", q)
		}
		if pages > 100 {
			t.Fatal("ListGroups does not end")
		}
		q.After = groups.Cursor(gs[len(gs)-1].Name)
	}
}

func testListGroups(t *testing.T, s Store) {
	if gs, more, err := s.ListGroups(t.Context(), "SHIP", groups.PageQuery{}); err != nil || len(gs) != 0 || more {
		t.Fatalf("ListGroups of an empty store = %v, %v, %v; want an empty list", gs, more, err)
	}
	for _, n := range []groups.Name{
		name("SHIP", "MOH", "charlie"),
		name("SHIP", "MOH", "Alpha"),
		name("SHIP", "MOH", "alpha2"),
		name("SHIP", "MOH", "bravo"),
		name("SHIP", "MOHX", "alpha"), // a project whose name starts with MOH
		name("SHIP", "MO", "Alpha"),   // a project whose name MOH starts with
		name("SHIP", "HR", "zulu"),
		name("DOCK", "MOH", "alpha"),
	} {
		mustCreate(t, s, n, noLimit)
	}
	mustActive(t, s, name("SHIP", "MOH", "able"), "g-able")
	moh := []string{"SHIP:MOH:able", "SHIP:MOH:Alpha", "SHIP:MOH:alpha2", "SHIP:MOH:bravo", "SHIP:MOH:charlie"}
	all := []string{"SHIP:HR:zulu", "SHIP:MO:Alpha", "SHIP:MOH:able", "SHIP:MOH:Alpha", "SHIP:MOH:alpha2", "SHIP:MOH:bravo", "SHIP:MOH:charlie", "SHIP:MOHX:alpha"}

	for _, tc := range []struct {
		q     groups.PageQuery
		want  []string
		pages int
	}{
		{groups.PageQuery{Project: "MOH"}, moh, 1},
		{groups.PageQuery{Project: "MOH", Limit: 2}, moh, 3},
		{groups.PageQuery{Project: "MOH", Limit: 5}, moh, 1}, // exactly full: no more
		{groups.PageQuery{Project: "MOH", Limit: 4}, moh, 2},
		{groups.PageQuery{Project: "MOH", Prefix: "al"}, []string{"SHIP:MOH:Alpha", "SHIP:MOH:alpha2"}, 1},
		{groups.PageQuery{Project: "MOH", Prefix: "al", Limit: 1}, []string{"SHIP:MOH:Alpha", "SHIP:MOH:alpha2"}, 2},
		{groups.PageQuery{Project: "MOH", Prefix: "alpha2"}, []string{"SHIP:MOH:alpha2"}, 1},
		{groups.PageQuery{Project: "MOH", Prefix: "x"}, nil, 1},
		{groups.PageQuery{Project: "MOHX"}, []string{"SHIP:MOHX:alpha"}, 1},
		{groups.PageQuery{Project: "MO"}, []string{"SHIP:MO:Alpha"}, 1},
		{groups.PageQuery{Project: "NONE"}, nil, 1},
		{groups.PageQuery{}, all, 1},
		{groups.PageQuery{Limit: 3}, all, 3},
		{groups.PageQuery{Prefix: "al"}, []string{"SHIP:MO:Alpha", "SHIP:MOH:Alpha", "SHIP:MOH:alpha2", "SHIP:MOHX:alpha"}, 1},
		{groups.PageQuery{Prefix: "al", Limit: 1}, []string{"SHIP:MO:Alpha", "SHIP:MOH:Alpha", "SHIP:MOH:alpha2", "SHIP:MOHX:alpha"}, 4},
		{groups.PageQuery{Prefix: "al", Limit: 3}, []string{"SHIP:MO:Alpha", "SHIP:MOH:Alpha", "SHIP:MOH:alpha2", "SHIP:MOHX:alpha"}, 2},
		{groups.PageQuery{Prefix: "moh"}, nil, 1}, // the prefix is on the group, not the project
	} {
		got, pages := pageGroups(t, s, "SHIP", tc.q)
		if !slices.Equal(got, tc.want) || pages != tc.pages {
			t.Errorf("ListGroups(%+v) in pages = %q in %d pages; want %q in %d", tc.q, got, pages, tc.want, tc.pages)
		}
	}

	// After is exclusive and need not name an existing group.
	for _, tc := range []struct {
		q    groups.PageQuery
		want []string
	}{
		{groups.PageQuery{Project: "MOH", After: groups.Cursor(name("SHIP", "MOH", "ALPHA"))}, []string{"SHIP:MOH:alpha2", "SHIP:MOH:bravo", "SHIP:MOH:charlie"}},
		{groups.PageQuery{Project: "MOH", After: groups.Cursor(name("SHIP", "MOH", "b"))}, []string{"SHIP:MOH:bravo", "SHIP:MOH:charlie"}},
		{groups.PageQuery{Project: "MOH", After: groups.Cursor(name("SHIP", "MOH", "charlie"))}, nil},
		{groups.PageQuery{Project: "MOH", After: groups.Cursor(name("SHIP", "HR", "zulu"))}, moh},
		{groups.PageQuery{Project: "MOH", After: groups.Cursor(name("SHIP", "MOHX", "a"))}, nil},
		{groups.PageQuery{Project: "MOH", Prefix: "b", After: groups.Cursor(name("SHIP", "MOH", "alpha"))}, []string{"SHIP:MOH:bravo"}},
		{groups.PageQuery{After: groups.Cursor(name("SHIP", "MOH", "charlie"))}, []string{"SHIP:MOHX:alpha"}},
		{groups.PageQuery{Prefix: "alpha", After: groups.Cursor(name("SHIP", "MOH", "alpha"))}, []string{"SHIP:MOH:alpha2", "SHIP:MOHX:alpha"}},
	} {
		gs, more, err := s.ListGroups(t.Context(), "SHIP", tc.q)
		if got := keys(gs); err != nil || more || !slices.Equal(got, tc.want) {
			t.Errorf("ListGroups(%+v) = %q, more %v, %v; want %q", tc.q, got, more, err, tc.want)
		}
	}

	// The page's groups are whole.
	gs, more, err := s.ListGroups(t.Context(), "SHIP", groups.PageQuery{Project: "MOH", Limit: 1})
	if err != nil || !more || len(gs) != 1 {
		t.Fatalf("ListGroups(limit 1) = %v, %v, %v", gs, more, err)
	}
	if g := mustGroup(t, s, name("SHIP", "MOH", "able")); gs[0] != g {
		t.Fatalf("listed %+v\nstored %+v", gs[0], g)
	}
	if got, _ := pageGroups(t, s, "DOCK", groups.PageQuery{}); !slices.Equal(got, []string{"DOCK:MOH:alpha"}) {
		t.Fatalf("ListGroups(DOCK) = %q", got)
	}
}

// pageMembers reads every page of a member list and returns the ids in
// order and the number of pages.
func pageMembers(t *testing.T, s Store, n groups.Name, q groups.PageQuery) ([]string, int) {
	t.Helper()
	var all []string
	for pages := 1; ; pages++ {
		us, more, err := s.ListMembers(t.Context(), n, q)
		if err != nil {
			t.Fatalf("ListMembers(%s, %+v): %v", n, q, err)
		}
		if q.Limit > 0 && len(us) > q.Limit {
			t.Fatalf("ListMembers(%+v) returned %d users", q, len(us))
		}
		all = append(all, userIDs(us)...)
		if !more {
			return all, pages
		}
		if len(us) == 0 || pages > 100 {
			t.Fatalf("ListMembers(%+v) does not end", q)
		}
		q.After = groups.MemberCursor(us[len(us)-1])
	}
}

func testListMembers(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	if _, _, err := s.ListMembers(t.Context(), n, groups.PageQuery{}); !errors.Is(err, groups.ErrNotFound) {
		t.Fatalf("ListMembers of a missing group: error = %v, want ErrNotFound", err)
	}
	mustActive(t, s, n, "g-1")
	if us, more, err := s.ListMembers(t.Context(), n, groups.PageQuery{}); err != nil || len(us) != 0 || more {
		t.Fatalf("ListMembers of an empty group = %v, %v, %v; want an empty list", us, more, err)
	}
	users := []groups.User{
		{ID: "id-3", Email: "Carol@example.com"},
		{ID: "id-1", Email: "alice@example.com"},
		{ID: "id-2", Email: "ALICE@example.com"}, // another account, same e-mail
		{ID: "id-4", Email: "bob@example.com"},
		{ID: "id-5", Email: "alicia@example.com"},
	}
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: users, At: t0})
	// Another group's members stay apart.
	other := name("SHIP", "MOH", "billing2")
	mustActive(t, s, other, "g-2")
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: other, Users: []groups.User{{ID: "id-9", Email: "aaron@example.com"}}, At: t0})

	everyone := []string{"id-1", "id-2", "id-5", "id-4", "id-3"}
	for _, tc := range []struct {
		q     groups.PageQuery
		want  []string
		pages int
	}{
		{groups.PageQuery{}, everyone, 1},
		{groups.PageQuery{Project: "HR"}, everyone, 1}, // ignored
		{groups.PageQuery{Limit: 2}, everyone, 3},
		{groups.PageQuery{Limit: 5}, everyone, 1},
		{groups.PageQuery{Limit: 1}, everyone, 5},
		{groups.PageQuery{Prefix: "ali"}, []string{"id-1", "id-2", "id-5"}, 1},
		{groups.PageQuery{Prefix: "alice@", Limit: 1}, []string{"id-1", "id-2"}, 2},
		{groups.PageQuery{Prefix: "carol"}, []string{"id-3"}, 1},
		{groups.PageQuery{Prefix: "zed"}, nil, 1},
	} {
		got, pages := pageMembers(t, s, n, tc.q)
		if !slices.Equal(got, tc.want) || pages != tc.pages {
			t.Errorf("ListMembers(%+v) in pages = %q in %d pages; want %q in %d", tc.q, got, pages, tc.want, tc.pages)
		}
	}
	us, more, err := s.ListMembers(t.Context(), name("SHIP", "MOH", "BILLING"), groups.PageQuery{After: groups.MemberCursor(users[2]), Limit: 2})
	if err != nil || !more || !slices.Equal(userIDs(us), []string{"id-5", "id-4"}) {
		t.Fatalf("ListMembers after alice/id-2 = %q, more %v, %v", userIDs(us), more, err)
	}
	if us[0] != users[4] {
		t.Fatalf("listed %+v, want %+v", us[0], users[4])
	}
}

// --- reconciler -------------------------------------------------------------------

func testGroupsSyncedAt(t *testing.T, s Store) {
	if at, err := s.GroupsSyncedAt(t.Context(), "SHIP"); err != nil || !at.IsZero() {
		t.Fatalf("GroupsSyncedAt before any pass = %v, %v; want zero", at, err)
	}
	at := t0.Add(6 * time.Hour)
	if _, err := s.SyncGroups(t.Context(), "SHIP", nil, nil, at); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GroupsSyncedAt(t.Context(), "SHIP"); err != nil || !got.Equal(at) {
		t.Fatalf("GroupsSyncedAt = %v, %v; want %v", got, err, at)
	}
	if got, err := s.GroupsSyncedAt(t.Context(), "DOCK"); err != nil || !got.IsZero() {
		t.Fatalf("GroupsSyncedAt of another tenant = %v, %v; want zero", got, err)
	}
	later := at.Add(time.Hour)
	if _, err := s.SyncGroups(t.Context(), "SHIP", nil, nil, later); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GroupsSyncedAt(t.Context(), "SHIP"); err != nil || !got.Equal(later) {
		t.Fatalf("GroupsSyncedAt = %v, %v; want %v", got, err, later)
	}
}

func testSyncGroups(t *testing.T, s Store) {
	ctx := t.Context()
	at := t0.Add(6 * time.Hour)
	existing := name("SHIP", "MOH", "Existing")
	mustActive(t, s, existing, "g-existing")
	vanished := name("SHIP", "MOH", "vanished")
	mustActive(t, s, vanished, "g-vanished")
	changed := name("SHIP", "HR", "changed")
	mustActive(t, s, changed, "g-changed")
	seenOnly := name("SHIP", "HR", "seen")
	mustActive(t, s, seenOnly, "g-seen")
	notSeen := name("SHIP", "HR", "unseen")
	mustActive(t, s, notSeen, "g-unseen")
	vGone, vChanged, vUnseen := mustGroup(t, s, vanished), mustGroup(t, s, changed), mustGroup(t, s, notSeen)
	versions := map[string]uint64{"MOH": version(t, s, "SHIP", "MOH"), "HR": version(t, s, "SHIP", "HR"), "NEW": version(t, s, "SHIP", "NEW")}

	appeared := name("SHIP", "NEW", "Found")
	upstream := groups.Group{Name: appeared, Description: "made in TechPass", State: groups.Active, UpstreamID: "g-found", CreatedAt: t0.Add(-time.Hour)}
	newText := vChanged
	newText.Description = "edited in TechPass"
	changes := []groups.GroupChange{
		{Kind: groups.GroupAppeared, Group: upstream},
		{Kind: groups.GroupVanished, Group: vGone},
		{Kind: groups.GroupChanged, Group: newText, Previous: vChanged.Description},
	}
	seen := []groups.Name{existing, name("SHIP", "HR", "CHANGED"), seenOnly, appeared, name("SHIP", "MOH", "nowhere")}
	applied, err := s.SyncGroups(ctx, "SHIP", changes, seen, at)
	if err != nil {
		t.Fatalf("SyncGroups: %v", err)
	}
	if len(applied) != 3 {
		t.Fatalf("SyncGroups applied %d changes, want 3: %+v", len(applied), applied)
	}

	found := mustGroup(t, s, appeared)
	if found.State != groups.Active || found.UpstreamID != "g-found" || found.Description != "made in TechPass" || found.Revision == 0 ||
		!found.SyncedAt.Equal(at) || found.PendingOperation != "" || found.PendingUpdate != "" || found.MemberCount != 0 || !found.MembersSyncedAt.IsZero() {
		t.Fatalf("appeared group = %+v", found)
	}
	if applied[0].Kind != groups.GroupAppeared || applied[0].Group != found {
		t.Fatalf("applied[0] = %+v\nwant the stored group %+v", applied[0], found)
	}
	wantGone(t, s, vanished)
	if applied[1].Kind != groups.GroupVanished || applied[1].Group.Name != vanished {
		t.Fatalf("applied[1] = %+v", applied[1])
	}
	g := mustGroup(t, s, changed)
	if g.Description != "edited in TechPass" || g.Revision <= vChanged.Revision || !g.SyncedAt.Equal(at) {
		t.Fatalf("changed group = %+v", g)
	}
	if applied[2].Kind != groups.GroupChanged || applied[2].Group != g || applied[2].Previous != "about changed" {
		t.Fatalf("applied[2] = %+v\nwant the stored group %+v", applied[2], g)
	}
	for _, n := range []groups.Name{existing, seenOnly} {
		if g := mustGroup(t, s, n); !g.SyncedAt.Equal(at) {
			t.Errorf("SyncedAt of seen %s = %v, want %v", n, g.SyncedAt, at)
		}
	}
	if g := mustGroup(t, s, notSeen); g != vUnseen {
		t.Errorf("a group not seen changed:\n%+v\nwas %+v", g, vUnseen)
	}
	wantGone(t, s, name("SHIP", "MOH", "nowhere"))
	if got, err := s.GroupsSyncedAt(ctx, "SHIP"); err != nil || !got.Equal(at) {
		t.Fatalf("GroupsSyncedAt = %v, %v", got, err)
	}
	for project, v := range versions {
		if version(t, s, "SHIP", project) == v {
			t.Errorf("GroupsVersion of %s unchanged by SyncGroups", project)
		}
	}
}

func testSyncGroupsPreconditions(t *testing.T, s Store) {
	ctx := t.Context()
	at := t0.Add(6 * time.Hour)
	// Appeared, but the mirror has the key by now (any case, any state).
	creating := name("SHIP", "MOH", "creating")
	mustCreate(t, s, creating, noLimit)
	// Vanished, but deleting now, or at another revision.
	deleting := name("SHIP", "MOH", "deleting")
	mustActive(t, s, deleting, "g-del")
	activeDel := mustGroup(t, s, deleting)
	if _, err := s.DeletePending(ctx, deleting, deleteOp(deleting), noQueueLimit); err != nil {
		t.Fatal(err)
	}
	updated := name("SHIP", "MOH", "updated")
	mustActive(t, s, updated, "g-upd")
	staleUpd := mustGroup(t, s, updated)
	mustUpdate(t, s, updated, "queued text")
	// Changed, but with an update pending at the same revision.
	pending := name("SHIP", "MOH", "pending")
	mustActive(t, s, pending, "g-pend")
	pendingNow, _ := mustUpdate(t, s, pending, "queued text")
	// Changed, but already settled to another revision.
	settled := name("SHIP", "MOH", "settled")
	mustActive(t, s, settled, "g-set")
	staleSet := mustGroup(t, s, settled)
	_, op := mustUpdate(t, s, settled, "queued text")
	complete(t, s, op.ID, queue.Succeeded, groups.Updated{Name: settled, Operation: op.ID, At: t0})

	before := map[groups.Name]groups.Group{}
	for _, n := range []groups.Name{creating, deleting, updated, pending, settled} {
		before[n] = mustGroup(t, s, n)
	}
	with := func(g groups.Group, description string) groups.Group {
		g.Description = description
		return g
	}
	changes := []groups.GroupChange{
		{Kind: groups.GroupAppeared, Group: groups.Group{Name: name("SHIP", "MOH", "CREATING"), State: groups.Active, UpstreamID: "g-x", Description: "upstream"}},
		{Kind: groups.GroupVanished, Group: activeDel},
		{Kind: groups.GroupVanished, Group: before[deleting]}, // at its revision, but not Active
		{Kind: groups.GroupVanished, Group: staleUpd},
		{Kind: groups.GroupChanged, Group: with(staleUpd, "upstream")},
		{Kind: groups.GroupChanged, Group: with(pendingNow, "upstream")},
		{Kind: groups.GroupChanged, Group: with(staleSet, "upstream")},
		{Kind: groups.GroupVanished, Group: groups.Group{Name: name("SHIP", "MOH", "missing"), State: groups.Active, Revision: 1}},
		{Kind: groups.GroupChanged, Group: groups.Group{Name: name("SHIP", "MOH", "missing"), State: groups.Active, Revision: 1}},
	}
	applied, err := s.SyncGroups(ctx, "SHIP", changes, nil, at)
	if err != nil {
		t.Fatalf("SyncGroups: %v", err)
	}
	if len(applied) != 0 {
		t.Fatalf("SyncGroups applied %+v; want none (every precondition fails)", applied)
	}
	for n, want := range before {
		if g := mustGroup(t, s, n); g != want {
			t.Errorf("%s changed by a change whose precondition failed:\n%+v\nwas %+v", n, g, want)
		}
	}
	wantGone(t, s, name("SHIP", "MOH", "missing"))
	if got, err := s.GroupsSyncedAt(ctx, "SHIP"); err != nil || !got.Equal(at) {
		t.Fatalf("GroupsSyncedAt = %v, %v; want it set though nothing applied", got, err)
	}
	// The same group settled and unchanged: the change applies.
	current := mustGroup(t, s, settled)
	applied, err = s.SyncGroups(ctx, "SHIP", []groups.GroupChange{{Kind: groups.GroupChanged, Group: with(current, "upstream")}}, nil, at)
	if err != nil || len(applied) != 1 || mustGroup(t, s, settled).Description != "upstream" {
		t.Fatalf("SyncGroups(changed at the current revision) = %+v, %v", applied, err)
	}
}

func testSyncMembers(t *testing.T, s Store) {
	ctx := t.Context()
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	ann, bob, cid, dan := user("ann@example.com"), user("bob@example.com"), user("cid@example.com"), user("dan@example.com")
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{ann, bob}, At: t0})
	g := mustGroup(t, s, n)
	rev := g.Revision
	at := t0.Add(7 * time.Hour)
	v := version(t, s, "SHIP", "MOH")

	renamed := bob
	renamed.DisplayName = "Robert"
	added, removed, ok, err := s.SyncMembers(ctx, n, "g-1", g.MembersVersion, []groups.User{dan, renamed, cid, dan}, at)
	if err != nil || !ok {
		t.Fatalf("SyncMembers = %v, %v; want applied", ok, err)
	}
	if got := sortedIDs(added); !slices.Equal(got, []string{"u-cid", "u-dan"}) {
		t.Errorf("added = %q, want u-cid, u-dan", got)
	}
	if got := sortedIDs(removed); !slices.Equal(got, []string{"u-ann"}) || removed[0] != ann {
		t.Errorf("removed = %+v, want ann", removed)
	}
	after := wantMembers(t, s, n, "u-bob", "u-cid", "u-dan")
	if after.MembersVersion != g.MembersVersion+1 || !after.MembersSyncedAt.Equal(at) || after.Revision != rev {
		t.Fatalf("after SyncMembers: MembersVersion %d (was %d), MembersSyncedAt %v, Revision %d (was %d)",
			after.MembersVersion, g.MembersVersion, after.MembersSyncedAt, after.Revision, rev)
	}
	if us := mustMembers(t, s, n); us[0] != renamed {
		t.Fatalf("member bob = %+v, want TechPass's %+v", us[0], renamed)
	}
	if version(t, s, "SHIP", "MOH") == v {
		t.Fatal("GroupsVersion unchanged by SyncMembers")
	}

	// The same list again: nothing added or removed, the version stays,
	// the sync time moves.
	later := at.Add(time.Hour)
	added, removed, ok, err = s.SyncMembers(ctx, n, "g-1", after.MembersVersion, []groups.User{cid, renamed, dan}, later)
	if err != nil || !ok || len(added) != 0 || len(removed) != 0 {
		t.Fatalf("SyncMembers(same list) = %v, %v, %v, %v", added, removed, ok, err)
	}
	g = wantMembers(t, s, n, "u-bob", "u-cid", "u-dan")
	if g.MembersVersion != after.MembersVersion || !g.MembersSyncedAt.Equal(later) {
		t.Fatalf("after SyncMembers(same list): MembersVersion %d, want %d; MembersSyncedAt %v", g.MembersVersion, after.MembersVersion, g.MembersSyncedAt)
	}

	// An empty list empties the group.
	added, removed, ok, err = s.SyncMembers(ctx, n, "g-1", g.MembersVersion, nil, later)
	if err != nil || !ok || len(added) != 0 || len(removed) != 3 {
		t.Fatalf("SyncMembers(empty) = %v, %v, %v, %v", added, removed, ok, err)
	}
	wantMembers(t, s, n)
}

func testSyncMembersPreconditions(t *testing.T, s Store) {
	ctx := t.Context()
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	ann, bob := user("ann@example.com"), user("bob@example.com")
	stale := mustGroup(t, s, n).MembersVersion
	commit(t, s, "SHIP", "MOH", groups.MembersAdded{Name: n, Users: []groups.User{ann}, At: t0})
	before := mustGroup(t, s, n)
	v := version(t, s, "SHIP", "MOH")

	// The list moved since the pass read it.
	added, removed, ok, err := s.SyncMembers(ctx, n, "g-1", stale, []groups.User{bob}, t0.Add(8*time.Hour))
	if err != nil || ok || added != nil || removed != nil {
		t.Fatalf("SyncMembers at a moved version = %v, %v, %v, %v; want not applied", added, removed, ok, err)
	}
	if g := wantMembers(t, s, n, "u-ann"); g != before {
		t.Fatalf("SyncMembers at a moved version changed the group:\n%+v\nwas %+v", g, before)
	}
	if got, _ := s.KnownUsers(ctx, "SHIP", []string{"u-bob"}); len(got) != 0 {
		t.Fatalf("SyncMembers at a moved version remembered users: %v", got)
	}
	if version(t, s, "SHIP", "MOH") != v {
		t.Fatal("GroupsVersion moved by a SyncMembers that changed nothing")
	}
	// The group is gone.
	gone := name("SHIP", "MOH", "gone")
	if _, _, ok, err := s.SyncMembers(ctx, gone, "g-1", 0, []groups.User{bob}, t0); err != nil || ok {
		t.Fatalf("SyncMembers of a missing group = %v, %v; want not applied", ok, err)
	}
	wantGone(t, s, gone)
}

// --- concurrency ------------------------------------------------------------------

func testConcurrentMembersAdded(t *testing.T, s Store) {
	const n = 20
	g := name("SHIP", "MOH", "billing")
	mustActive(t, s, g, "g-1")
	ops := make([]queue.Operation, n)
	for i := range ops {
		op, err := s.QueueMembers(t.Context(), g, membersOp(g), noQueueLimit, nil)
		if err != nil {
			t.Fatal(err)
		}
		ops[i] = op
	}
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() {
			op.State = queue.Succeeded
			// Each adds its own user and one everybody adds.
			users := []groups.User{user(fmt.Sprintf("user%02d@example.com", i)), user("shared@example.com")}
			if err := s.Complete(context.Background(), op, []groups.Effect{groups.MembersAdded{Name: g, Users: users, At: t0}}); err != nil {
				t.Errorf("Complete #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got := mustGroup(t, s, g)
	if got.MemberCount != n+1 || got.MembersVersion != n {
		t.Fatalf("after %d concurrent MembersAdded: MemberCount %d, MembersVersion %d; want %d, %d", n, got.MemberCount, got.MembersVersion, n+1, n)
	}
	if us := mustMembers(t, s, g); len(us) != n+1 {
		t.Fatalf("%d members listed, want %d", len(us), n+1)
	}
	queuetest.WantDepth(t, s, "SHIP", 0)
}

func testConcurrentUpdateIfMatch(t *testing.T, s Store) {
	const n = 10
	g := name("SHIP", "MOH", "billing")
	mustActive(t, s, g, "g-1")
	rev := mustGroup(t, s, g).Revision
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []groups.Group
	)
	for i := range n {
		wg.Go(func() {
			stored, _, err := s.UpdatePending(context.Background(), g, fmt.Sprint("text ", i), rev, updateOp(g), noQueueLimit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, stored)
			case errors.Is(err, groups.ErrRevision):
			default:
				t.Errorf("UpdatePending #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent If-Match updates succeeded, want exactly 1", len(winners), n)
	}
	if got := mustGroup(t, s, g); got != winners[0] || got.Revision != rev+1 {
		t.Fatalf("group = %+v\nwant the winner's %+v at revision %d", got, winners[0], rev+1)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)
}

// A member change queued on a group that is then dropped (a vanished or
// failed create) settles nothing on a group made later with the same name;
// a reconcile pass does not drop a group with a member change pending, nor
// write one group's member list onto another of the same name.
func testPendingMembersAcrossIncarnations(t *testing.T, s Store) {
	ctx := t.Context()
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	old := membersOp(n)
	if _, err := s.QueueMembers(ctx, n, old, noQueueLimit, nil); err != nil {
		t.Fatal(err)
	}
	g := mustGroup(t, s, n)
	applied, err := s.SyncGroups(ctx, "SHIP", []groups.GroupChange{{Kind: groups.GroupVanished, Group: g}}, nil, t0.Add(time.Hour))
	if err != nil || len(applied) != 0 {
		t.Fatalf("GroupVanished with a member change pending: applied %+v, %v; want none", applied, err)
	}
	// Dropped anyway (its create failed, say), then made again.
	commit(t, s, "SHIP", "MOH", groups.CreateFailed{Name: n})
	wantGone(t, s, n)
	g2, op2 := createArgs(n, "again")
	g2.CreatedAt = old.CreatedAt.Add(time.Hour)
	op2.CreatedAt = g2.CreatedAt
	if _, err := s.CreatePending(ctx, g2, op2, groupLimit(noLimit)); err != nil {
		t.Fatal(err)
	}
	complete(t, s, op2.ID, queue.Succeeded, groups.Created{Name: n, UpstreamID: "g-2", At: g2.CreatedAt, MembersKnown: true, Description: "again"})
	fresh := membersOp(n)
	fresh.CreatedAt = g2.CreatedAt.Add(time.Minute)
	if _, err := s.QueueMembers(ctx, n, fresh, noQueueLimit, nil); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "SHIP", "MOH", groups.MembersSettled{Name: n, QueuedAt: old.CreatedAt})
	if g := mustGroup(t, s, n); g.PendingMembers != 1 {
		t.Fatalf("PendingMembers after the old group's change settled = %d, want the new change still counted (1)", g.PendingMembers)
	}
	commit(t, s, "SHIP", "MOH", groups.MembersSettled{Name: n, QueuedAt: fresh.CreatedAt})
	g = mustGroup(t, s, n)
	if g.PendingMembers != 0 {
		t.Fatalf("PendingMembers after the new change settled = %d, want 0", g.PendingMembers)
	}
	// A pass that read the old group's members does not apply them here.
	if _, _, ok, err := s.SyncMembers(ctx, n, "g-1", g.MembersVersion, []groups.User{user("ann@example.com")}, t0.Add(3*time.Hour)); err != nil || ok {
		t.Fatalf("SyncMembers for another group of this name = %v, %v; want not applied", ok, err)
	}
	if g := mustGroup(t, s, n); g.MemberCount != 0 {
		t.Fatalf("MemberCount = %d, want 0", g.MemberCount)
	}
}

// A group a reconcile pass sees unchanged has TechPass's description
// confirmed; a failed update then restores it.
func testSyncGroupsConfirms(t *testing.T, s Store) {
	ctx := t.Context()
	n := name("SHIP", "MOH", "billing")
	op := mustCreate(t, s, n, noLimit)
	complete(t, s, op.ID, queue.Succeeded, groups.Created{Name: n, UpstreamID: "g-1", At: t0}) // no description known
	if g := mustGroup(t, s, n); !g.DescriptionConfirmed || g.ConfirmedDescription != "" {
		t.Fatalf("after Created: confirmed %v %q", g.DescriptionConfirmed, g.ConfirmedDescription)
	}
	if _, err := s.SyncGroups(ctx, "SHIP", nil, []groups.Name{n}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	g := mustGroup(t, s, n)
	if !g.DescriptionConfirmed || g.ConfirmedDescription != g.Description {
		t.Fatalf("after a pass saw it: confirmed %v %q, description %q", g.DescriptionConfirmed, g.ConfirmedDescription, g.Description)
	}
	_, upd := mustUpdate(t, s, n, "never made it")
	complete(t, s, upd.ID, queue.Failed, groups.UpdateFailed{Name: n, Operation: upd.ID, Previous: "bogus", At: t0.Add(2 * time.Hour)})
	if got := mustGroup(t, s, n); got.Description != g.Description {
		t.Fatalf("after a failed update: description %q, want the confirmed %q", got.Description, g.Description)
	}
}

// testOwners: owners are recorded for the group with the upstream id they
// were read of, sorted and without repeats, leave the Revision alone, and
// are not shown once the group is made again under its name.
func testOwners(t *testing.T, s Store) {
	ctx := t.Context()
	n := name("SHIP", "MOH", "billing")
	if _, err := s.Owners(ctx, n); !errors.Is(err, groups.ErrNotFound) {
		t.Fatalf("Owners of a missing group: %v, want ErrNotFound", err)
	}
	if ok, err := s.SyncOwners(ctx, n, "g-1", []groups.User{user("ann@example.com")}); err != nil || ok {
		t.Fatalf("SyncOwners of a missing group = %v, %v; want not applied", ok, err)
	}
	mustActive(t, s, n, "g-1")
	if us, err := s.Owners(ctx, n); err != nil || us != nil {
		t.Fatalf("Owners never read = %v, %v; want nil", us, err)
	}
	before := mustGroup(t, s, n)
	ann, bob := user("ann@example.com"), user("bob@example.com")
	if ok, err := s.SyncOwners(ctx, n, "g-other", []groups.User{ann}); err != nil || ok {
		t.Fatalf("SyncOwners of another group of this name = %v, %v; want not applied", ok, err)
	}
	if ok, err := s.SyncOwners(ctx, n, "g-1", []groups.User{bob, ann, bob}); err != nil || !ok {
		t.Fatalf("SyncOwners = %v, %v", ok, err)
	}
	us, err := s.Owners(ctx, n)
	if err != nil || len(us) != 2 || us[0] != ann || us[1] != bob {
		t.Fatalf("Owners = %v, %v; want ann, bob", us, err)
	}
	if g := mustGroup(t, s, n); g.Revision != before.Revision {
		t.Errorf("owners moved the revision: %d -> %d", before.Revision, g.Revision)
	}
	if ok, err := s.SyncOwners(ctx, n, "g-1", nil); err != nil || !ok {
		t.Fatalf("SyncOwners(none) = %v, %v", ok, err)
	}
	if us, err := s.Owners(ctx, n); err != nil || us == nil || len(us) != 0 {
		t.Fatalf("Owners after none = %v, %v; want an empty, known list", us, err)
	}
	if ok, err := s.SyncOwners(ctx, n, "g-1", []groups.User{ann}); err != nil || !ok {
		t.Fatalf("SyncOwners = %v, %v", ok, err)
	}
	// Made again in the portal: the new group's owners are not known yet.
	replaced := mustGroup(t, s, n)
	replaced.UpstreamID = "g-2"
	if _, err := s.SyncGroups(ctx, "SHIP", []groups.GroupChange{{Kind: groups.GroupReplaced, Group: replaced}}, nil, t0); err != nil {
		t.Fatal(err)
	}
	if g := mustGroup(t, s, n); g.UpstreamID != "g-2" {
		t.Fatalf("not replaced: %+v", g)
	}
	if us, err := s.Owners(ctx, n); err != nil || us != nil {
		t.Errorf("Owners of the group made again = %v, %v; want nil", us, err)
	}
}
