// Package groupstest is the conformance suite for groups.Store
// implementations, run through the rules that use them (groups.Ledger).
//
// A group's mirror state changes in three places: when an operation is
// queued (CreatePending, DeletePending, UpdatePending), when its outcome is
// committed with the operation's effects (Complete), and when a reconcile
// pass writes what it found in TechPass (SyncGroups, SyncMembers). Each is
// one groups.Store.Update, so the cases check the domain's rules and the
// store's transaction contract together: a refused call writes nothing, a
// commit whose effect fails writes nothing, concurrent writers keep every
// limit. A backend runs it with a ten-line test:
//
//	func TestGroupsStore(t *testing.T) {
//		groupstest.RunStoreTests(t, func(t *testing.T) groups.Store { return MustOpenStore(t) })
//	}
//
// newStore must return a new, empty store for each call and arrange its own
// clean-up (and any integrity check) with t.Cleanup.
//
// The cases follow the order of checks groups.Ledger documents: the enqueue
// checks (idempotent replay, then queue limits) come before ErrExists,
// ErrLimit, ErrNotFound and ErrPending, and a refused call writes nothing.
package groupstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/queue/queuetest"
)

// Store is what the cases call: the ledger over the backend under test.
type Store = *groups.Ledger

// ledger wraps newStore's stores in a Ledger.
func ledger(newStore func(*testing.T) groups.Store) func(*testing.T) Store {
	return func(t *testing.T) Store { return groups.NewLedger(newStore(t)) }
}

// t0 is the fixed time the cases stamp groups and operations with.
var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

// noLimit is a group limit no case reaches.
const noLimit = 1000

// noQueueLimit is no queue limit.
var noQueueLimit = queue.Limits{}

// groupLimit returns limits with only a group limit.
func groupLimit(n int) groups.Limits { return groups.Limits{Groups: n} }

// RunStoreTests runs the sequential conformance cases, each in its own
// subtest on a fresh store from newStore.
func RunStoreTests(t *testing.T, newStore func(*testing.T) groups.Store) {
	t.Helper()
	testkit.RunCases(t, ledger(newStore), []testkit.Case[Store]{
		{Name: "UpdateIsAtomic", Run: testUpdateIsAtomic},
		{Name: "UpdateIsTenantScoped", Run: testUpdateIsTenantScoped},
		{Name: "TxUserRecordsAndGroupListing", Run: testTxUserRecords},
		{Name: "CreatePendingStoresGroupAndEnqueues", Run: testCreatePending},
		{Name: "GroupLookupIsCaseInsensitive", Run: testGroupCaseInsensitive},
		{Name: "GroupNotFound", Run: testGroupNotFound},
		{Name: "CreatePendingExistsIsCaseInsensitive", Run: testCreateExists},
		{Name: "CreatePendingSameNameOtherProjectOrTenant", Run: testCreateOtherProject},
		{Name: "CreatePendingLimitCountsTenant", Run: testCreateLimit},
		{Name: "CreatePendingLimitFreedByRemoval", Run: testLimitFreed},
		{Name: "DeletePendingActive", Run: testDeletePending},
		{Name: "DeletePendingNotFound", Run: testDeleteNotFound},
		{Name: "DeletePendingWhilePending", Run: testDeletePendingConflict},
		{Name: "GroupsListsOneProjectByKey", Run: testGroupsList},
		{Name: "EffectCreated", Run: testEffectCreated},
		{Name: "EffectCreateFailed", Run: testEffectCreateFailed},
		{Name: "EffectDeleted", Run: testEffectDeleted},
		{Name: "EffectDeleteFailed", Run: testEffectDeleteFailed},
		{Name: "CompleteWithFailingEffectWritesNothing", Run: testFailingEffect},
		{Name: "EffectsOnMissingGroupChangeNothing", Run: testEffectsOnMissingGroup},
		{Name: "QueueLimitsApply", Run: testQueueLimits},
		{Name: "IdempotentReplayComesFirst", Run: testReplay},
		{Name: "GroupsVersionChangesWithGroups", Run: testGroupsVersion},
		{Name: "RevisionMovesWithSettingsOnly", Run: testRevisionRules},
		{Name: "UpdatePendingStoresAndEnqueues", Run: testUpdatePending},
		{Name: "UpdatePendingRefused", Run: testUpdatePendingRefused},
		{Name: "EffectUpdated", Run: testEffectUpdated},
		{Name: "EffectUpdateFailed", Run: testEffectUpdateFailed},
		{Name: "QueueMembersEnqueues", Run: testQueueMembers},
		{Name: "QueueMembersRefused", Run: testQueueMembersRefused},
		{Name: "RecordStoresFinalOperation", Run: testRecord},
		{Name: "EffectsMembersAddedRemoved", Run: testEffectsMembers},
		{Name: "EffectMemberChanged", Run: testEffectMemberChanged},
		{Name: "MemberEffectsOnMissingGroupChangeNothing", Run: testMemberEffectsOnMissingGroup},
		{Name: "MembersDroppedWithGroup", Run: testMembersDroppedWithGroup},
		{Name: "KnownUsersByEmailAndID", Run: testKnownUsers},
		{Name: "ListGroupsPages", Run: testListGroups},
		{Name: "ListMembersPages", Run: testListMembers},
		{Name: "GroupsSyncedAt", Run: testGroupsSyncedAt},
		{Name: "SyncGroupsApplies", Run: testSyncGroups},
		{Name: "SyncGroupsPreconditions", Run: testSyncGroupsPreconditions},
		{Name: "SyncMembersReplaces", Run: testSyncMembers},
		{Name: "SyncMembersPreconditions", Run: testSyncMembersPreconditions},
		{Name: "PendingMembersAcrossGroupsOfOneName", Run: testPendingMembersAcrossIncarnations},
		{Name: "SyncGroupsConfirmsSeenDescriptions", Run: testSyncGroupsConfirms},
		{Name: "OwnersByUpstreamID", Run: testOwners},
	})
}

// RunConcurrencyTests runs the cases that race writers against each other.
// Run them under the race detector.
func RunConcurrencyTests(t *testing.T, newStore func(*testing.T) groups.Store) {
	t.Helper()
	testkit.RunCases(t, ledger(newStore), []testkit.Case[Store]{
		{Name: "ConcurrentUpdateSerializes", Run: testConcurrentUpdateSerializes},
		{Name: "ConcurrentCreateSameName", Run: testConcurrentSameName},
		{Name: "ConcurrentCreateRespectsLimit", Run: testConcurrentLimit},
		{Name: "ConcurrentDeleteSameGroup", Run: testConcurrentDelete},
		{Name: "ConcurrentMembersAdded", Run: testConcurrentMembersAdded},
		{Name: "ConcurrentUpdateIfMatch", Run: testConcurrentUpdateIfMatch},
	})
}

// name returns a group name; tenant and project are upper case as NewName
// makes them.
func name(tenant, project, group string) groups.Name {
	return groups.Name{Tenant: tenant, Project: project, Group: group}
}

// createArgs returns what groups.Service passes to CreatePending.
func createArgs(n groups.Name, description string) (groups.Group, queue.Operation) {
	op := queue.Operation{
		ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate,
		Target: n.String(), Payload: []byte(`{}`), Actor: "key:ci", State: queue.Queued,
		CreatedAt: t0, UpdatedAt: t0,
	}
	g := groups.Group{Name: n, Description: description, State: groups.Creating, PendingOperation: op.ID, CreatedAt: t0, UpdatedAt: t0}
	return g, op
}

// deleteOp returns what groups.Service passes to DeletePending.
func deleteOp(n groups.Name) queue.Operation {
	return queue.Operation{
		ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindDelete,
		Target: n.String(), Actor: "key:ci", State: queue.Queued, CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour),
	}
}

func mustCreate(t *testing.T, s Store, n groups.Name, limit int) queue.Operation {
	t.Helper()
	g, op := createArgs(n, "about "+n.Group)
	got, err := s.CreatePending(t.Context(), g, op, groupLimit(limit))
	if err != nil {
		t.Fatalf("CreatePending(%s): %v", n, err)
	}
	return got
}

// complete commits op's outcome with effects as a dispatcher does.
func complete(t *testing.T, s Store, opID string, state queue.State, effects ...groups.Effect) queue.Operation {
	t.Helper()
	op, err := s.Operation(t.Context(), opID)
	if err != nil {
		t.Fatalf("Operation(%s): %v", opID, err)
	}
	op.State, op.FinishedAt, op.UpdatedAt = state, t0.Add(2*time.Hour), t0.Add(2*time.Hour)
	if state == queue.Failed {
		op.Failure = &queue.Failure{Status: 502, Title: "TechPass error"}
	}
	if err := s.Complete(t.Context(), op, effects); err != nil {
		t.Fatalf("Complete(%s): %v", op.Target, err)
	}
	return op
}

// mustActive creates n and commits its creation, leaving it Active.
func mustActive(t *testing.T, s Store, n groups.Name, upstreamID string) {
	t.Helper()
	op := mustCreate(t, s, n, noLimit)
	desc := mustGroup(t, s, n).Description
	complete(t, s, op.ID, queue.Succeeded, groups.Created{Name: n, UpstreamID: upstreamID, At: t0.Add(time.Minute), Description: desc})
}

func mustGroup(t *testing.T, s Store, n groups.Name) groups.Group {
	t.Helper()
	g, err := s.Group(t.Context(), n)
	if err != nil {
		t.Fatalf("Group(%s): %v", n, err)
	}
	return g
}

func wantGone(t *testing.T, s Store, n groups.Name) {
	t.Helper()
	if g, err := s.Group(t.Context(), n); !errors.Is(err, groups.ErrNotFound) {
		t.Fatalf("Group(%s) = %+v, %v; want ErrNotFound", n, g, err)
	}
}

func wantState(t *testing.T, s Store, n groups.Name, state groups.State, pendingOp string) groups.Group {
	t.Helper()
	g := mustGroup(t, s, n)
	if g.State != state || g.PendingOperation != pendingOp {
		t.Fatalf("Group(%s): State %q, PendingOperation %q; want %q, %q", n, g.State, g.PendingOperation, state, pendingOp)
	}
	return g
}

func keys(gs []groups.Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name.String()
	}
	return out
}

func wantList(t *testing.T, s Store, tenant, project string, want ...string) {
	t.Helper()
	gs, err := s.Groups(t.Context(), tenant, project)
	if err != nil {
		t.Fatalf("Groups(%s, %s): %v", tenant, project, err)
	}
	if got := keys(gs); !slices.Equal(got, want) {
		t.Fatalf("Groups(%s, %s) = %q, want %q", tenant, project, got, want)
	}
}

// --- cases ------------------------------------------------------------------

func testCreatePending(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "Billing")
	g, op := createArgs(n, "Billing team")
	got, err := s.CreatePending(t.Context(), g, op, groupLimit(noLimit))
	if err != nil {
		t.Fatalf("CreatePending: %v", err)
	}
	if got.ID != op.ID || got.State != queue.Queued || got.Kind != groups.KindCreate || got.Target != n.String() {
		t.Fatalf("CreatePending returned %+v", got)
	}
	stored, err := s.Operation(t.Context(), op.ID)
	if err != nil {
		t.Fatalf("Operation: %v", err)
	}
	if stored.Seq != got.Seq || stored.State != queue.Queued {
		t.Fatalf("stored operation: Seq %d State %q; returned Seq %d", stored.Seq, stored.State, got.Seq)
	}
	head, err := s.Head(t.Context(), "SHIP")
	if err != nil || head.ID != op.ID {
		t.Fatalf("Head = %s, %v; want the create operation", head.ID, err)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)

	mg := wantState(t, s, n, groups.Creating, op.ID)
	if mg.Name != n || mg.Description != "Billing team" || mg.UpstreamID != "" || !mg.CreatedAt.Equal(t0) || !mg.UpdatedAt.Equal(t0) {
		t.Fatalf("Group = %+v", mg)
	}
}

func testGroupCaseInsensitive(t *testing.T, s Store) {
	mustCreate(t, s, name("SHIP", "MOH", "Billing"), noLimit)
	for _, asked := range []string{"Billing", "billing", "BILLING"} {
		g := mustGroup(t, s, name("SHIP", "MOH", asked))
		if g.Name.Group != "Billing" {
			t.Errorf("Group(%s).Name.Group = %q, want the case it was created with", asked, g.Name.Group)
		}
	}
}

func testGroupNotFound(t *testing.T, s Store) {
	wantGone(t, s, name("SHIP", "MOH", "billing"))
	mustCreate(t, s, name("SHIP", "MOH", "billing"), noLimit)
	wantGone(t, s, name("SHIP", "MOH", "billing2"))
	wantGone(t, s, name("SHIP", "MOHX", "billing"))
	wantGone(t, s, name("DOCK", "MOH", "billing"))
}

func testCreateExists(t *testing.T, s Store) {
	first := mustCreate(t, s, name("SHIP", "MOH", "Billing"), noLimit)
	for _, again := range []string{"Billing", "billing", "BILLING"} {
		g, op := createArgs(name("SHIP", "MOH", again), "second")
		if _, err := s.CreatePending(t.Context(), g, op, groupLimit(noLimit)); !errors.Is(err, groups.ErrExists) {
			t.Fatalf("CreatePending(%s) error = %v, want ErrExists", again, err)
		}
		queuetest.WantNoOp(t, s, op.ID)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)
	g := wantState(t, s, name("SHIP", "MOH", "billing"), groups.Creating, first.ID)
	if g.Description != "about Billing" || g.Name.Group != "Billing" {
		t.Fatalf("the existing group was overwritten: %+v", g)
	}

	// Active and Deleting groups block a create too.
	n := name("SHIP", "MOH", "ops")
	mustActive(t, s, n, "g-ops")
	gc, op := createArgs(name("SHIP", "MOH", "OPS"), "")
	if _, err := s.CreatePending(t.Context(), gc, op, groupLimit(noLimit)); !errors.Is(err, groups.ErrExists) {
		t.Fatalf("CreatePending over an active group: error = %v, want ErrExists", err)
	}
	if _, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePending(t.Context(), gc, op, groupLimit(noLimit)); !errors.Is(err, groups.ErrExists) {
		t.Fatalf("CreatePending over a deleting group: error = %v, want ErrExists", err)
	}
	queuetest.WantNoOp(t, s, op.ID)
}

func testCreateOtherProject(t *testing.T, s Store) {
	mustCreate(t, s, name("SHIP", "MOH", "billing"), noLimit)
	mustCreate(t, s, name("SHIP", "MOHX", "billing"), noLimit)
	mustCreate(t, s, name("SHIP", "MO", "billing"), noLimit)
	mustCreate(t, s, name("DOCK", "MOH", "billing"), noLimit)
	queuetest.WantDepth(t, s, "SHIP", 3)
	queuetest.WantDepth(t, s, "DOCK", 1)
	for _, n := range []groups.Name{name("SHIP", "MOH", "billing"), name("SHIP", "MOHX", "billing"), name("SHIP", "MO", "billing"), name("DOCK", "MOH", "billing")} {
		if g := mustGroup(t, s, n); g.Name != n {
			t.Errorf("Group(%s).Name = %s", n, g.Name)
		}
	}
}

func testCreateLimit(t *testing.T, s Store) {
	const limit = 4
	// Active, creating and deleting groups in two projects all count.
	mustActive(t, s, name("SHIP", "MOH", "a"), "g-a")
	mustActive(t, s, name("SHIP", "HR", "b"), "g-b")
	if _, err := s.DeletePending(t.Context(), name("SHIP", "HR", "b"), deleteOp(name("SHIP", "HR", "b")), noQueueLimit); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, name("SHIP", "HR", "c"), limit)
	mustCreate(t, s, name("SHIP", "MOH", "d"), limit)
	queuetest.WantDepth(t, s, "SHIP", 3) // delete b, create c, create d

	for _, n := range []groups.Name{name("SHIP", "MOH", "e"), name("SHIP", "NEW", "e")} {
		g, op := createArgs(n, "")
		if _, err := s.CreatePending(t.Context(), g, op, groupLimit(limit)); !errors.Is(err, groups.ErrLimit) {
			t.Fatalf("CreatePending(%s) over the limit: error = %v, want ErrLimit", n, err)
		}
		wantGone(t, s, n)
		queuetest.WantNoOp(t, s, op.ID)
	}
	queuetest.WantDepth(t, s, "SHIP", 3)
	wantList(t, s, "SHIP", "NEW")

	// The limit is per tenant.
	mustCreate(t, s, name("DOCK", "MOH", "e"), limit)
	// An existing name is reported as such even at the limit.
	g, op := createArgs(name("SHIP", "MOH", "A"), "")
	if _, err := s.CreatePending(t.Context(), g, op, groupLimit(limit)); !errors.Is(err, groups.ErrExists) && !errors.Is(err, groups.ErrLimit) {
		t.Fatalf("CreatePending(existing name at the limit): error = %v, want ErrExists or ErrLimit", err)
	}
	queuetest.WantNoOp(t, s, op.ID)
}

func testLimitFreed(t *testing.T, s Store) {
	const limit = 2
	a := name("SHIP", "MOH", "a")
	b := name("SHIP", "MOH", "b")
	c := name("SHIP", "MOH", "c")
	mustActive(t, s, a, "g-a")
	opB := mustCreate(t, s, b, limit)
	g, op := createArgs(c, "")
	if _, err := s.CreatePending(t.Context(), g, op, groupLimit(limit)); !errors.Is(err, groups.ErrLimit) {
		t.Fatalf("CreatePending at the limit: error = %v, want ErrLimit", err)
	}
	// A failed create frees its reservation.
	complete(t, s, opB.ID, queue.Failed, groups.CreateFailed{Name: b})
	mustCreate(t, s, c, limit)
	// So does a delete.
	del, err := s.DeletePending(t.Context(), a, deleteOp(a), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	complete(t, s, del.ID, queue.Succeeded, groups.Deleted{Name: a})
	mustCreate(t, s, b, limit)
}

func testDeletePending(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "Billing")
	mustActive(t, s, n, "g-billing")
	op := deleteOp(n)
	got, err := s.DeletePending(t.Context(), n, op, noQueueLimit)
	if err != nil {
		t.Fatalf("DeletePending: %v", err)
	}
	if got.ID != op.ID || got.State != queue.Queued || got.Kind != groups.KindDelete {
		t.Fatalf("DeletePending returned %+v", got)
	}
	if stored, err := s.Operation(t.Context(), op.ID); err != nil || stored.Seq != got.Seq {
		t.Fatalf("Operation = Seq %d, %v; want Seq %d", stored.Seq, err, got.Seq)
	}
	if head, err := s.Head(t.Context(), "SHIP"); err != nil || head.ID != op.ID {
		t.Fatalf("Head = %s, %v; want the delete operation", head.ID, err)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)
	g := wantState(t, s, n, groups.Deleting, op.ID)
	if g.UpstreamID != "g-billing" {
		t.Fatalf("UpstreamID = %q after DeletePending, want it kept", g.UpstreamID)
	}
}

func testDeleteNotFound(t *testing.T, s Store) {
	for _, n := range []groups.Name{
		name("SHIP", "MOH", "billing"), // empty store
		name("SHIP", "MOH", "other"),   // tenant and project known
		name("SHIP", "HR", "billing"),  // name known in another project
	} {
		op := deleteOp(n)
		if _, err := s.DeletePending(t.Context(), n, op, noQueueLimit); !errors.Is(err, groups.ErrNotFound) {
			t.Fatalf("DeletePending(%s) error = %v, want ErrNotFound", n, err)
		}
		queuetest.WantNoOp(t, s, op.ID)
		if n.Group == "billing" && n.Project == "MOH" {
			mustActive(t, s, n, "g-billing")
		}
	}
	queuetest.WantDepth(t, s, "SHIP", 0)
}

func testDeletePendingConflict(t *testing.T, s Store) {
	creating := name("SHIP", "MOH", "creating")
	createOp := mustCreate(t, s, creating, noLimit)
	deleting := name("SHIP", "MOH", "deleting")
	mustActive(t, s, deleting, "g-deleting")
	firstDelete, err := s.DeletePending(t.Context(), deleting, deleteOp(deleting), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n       groups.Name
		state   groups.State
		pending string
	}{{creating, groups.Creating, createOp.ID}, {deleting, groups.Deleting, firstDelete.ID}} {
		op := deleteOp(tc.n)
		if _, err := s.DeletePending(t.Context(), tc.n, op, noQueueLimit); !errors.Is(err, groups.ErrPending) {
			t.Fatalf("DeletePending(%s) while %s: error = %v, want ErrPending", tc.n, tc.state, err)
		}
		queuetest.WantNoOp(t, s, op.ID)
		wantState(t, s, tc.n, tc.state, tc.pending)
	}
	queuetest.WantDepth(t, s, "SHIP", 2)
}

func testGroupsList(t *testing.T, s Store) {
	wantList(t, s, "SHIP", "MOH")
	for _, n := range []groups.Name{
		name("SHIP", "MOH", "charlie"),
		name("SHIP", "MOH", "Alpha"),
		name("SHIP", "MOH", "bravo"),
		name("SHIP", "MOH", "Bravo2"),
		name("SHIP", "MOHX", "delta"), // a project whose name starts with MOH
		name("SHIP", "MO", "echo"),    // a project whose name MOH starts with
		name("DOCK", "MOH", "zulu"),
	} {
		mustCreate(t, s, n, noLimit)
	}
	mustActive(t, s, name("SHIP", "MOH", "able"), "g-able")
	wantList(t, s, "SHIP", "MOH", "SHIP:MOH:able", "SHIP:MOH:Alpha", "SHIP:MOH:bravo", "SHIP:MOH:Bravo2", "SHIP:MOH:charlie")
	wantList(t, s, "SHIP", "MOHX", "SHIP:MOHX:delta")
	wantList(t, s, "SHIP", "MO", "SHIP:MO:echo")
	wantList(t, s, "DOCK", "MOH", "DOCK:MOH:zulu")
	wantList(t, s, "DOCK", "HR")
	wantList(t, s, "NOBODY", "MOH")

	gs, err := s.Groups(t.Context(), "SHIP", "MOH")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		want := groups.Creating
		if g.Name.Group == "able" {
			want = groups.Active
		}
		if g.State != want || g.Description != "about "+g.Name.Group {
			t.Errorf("listed %s: State %q, Description %q", g.Name, g.State, g.Description)
		}
	}
}

func testEffectCreated(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "Billing")
	op := mustCreate(t, s, n, noLimit)
	at := t0.Add(time.Minute)
	complete(t, s, op.ID, queue.Succeeded, groups.Created{Name: name("SHIP", "MOH", "billing"), UpstreamID: "g-123", At: at, MembersKnown: true})
	g := wantState(t, s, n, groups.Active, "")
	if g.UpstreamID != "g-123" || !g.UpdatedAt.Equal(at) || !g.CreatedAt.Equal(t0) || g.Name.Group != "Billing" || g.Description != "about Billing" {
		t.Fatalf("created group = %+v", g)
	}
	// TechPass confirmed the group, and a new group has no members.
	if !g.SyncedAt.Equal(at) || !g.MembersSyncedAt.Equal(at) || g.MemberCount != 0 || g.PendingUpdate != "" {
		t.Fatalf("created group: SyncedAt %v, MembersSyncedAt %v, MemberCount %d, PendingUpdate %q; want both times %v, no members",
			g.SyncedAt, g.MembersSyncedAt, g.MemberCount, g.PendingUpdate, at)
	}
	// A group adopted from TechPass has members the mirror does not know.
	adopted := name("SHIP", "MOH", "adopted")
	op = mustCreate(t, s, adopted, noLimit)
	complete(t, s, op.ID, queue.Succeeded, groups.Created{Name: adopted, UpstreamID: "g-124", At: at})
	if g := wantState(t, s, adopted, groups.Active, ""); !g.SyncedAt.Equal(at) || !g.MembersSyncedAt.IsZero() {
		t.Fatalf("adopted group: SyncedAt %v, MembersSyncedAt %v; want %v and never", g.SyncedAt, g.MembersSyncedAt, at)
	}
	if got, err := s.Operation(t.Context(), op.ID); err != nil || got.State != queue.Succeeded {
		t.Fatalf("operation after Created: %s, %v", got.State, err)
	}
	queuetest.WantDepth(t, s, "SHIP", 0)
}

func testEffectCreateFailed(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	op := mustCreate(t, s, n, noLimit)
	mustCreate(t, s, name("SHIP", "MOH", "other"), noLimit)
	complete(t, s, op.ID, queue.Failed, groups.CreateFailed{Name: n})
	wantGone(t, s, n)
	wantList(t, s, "SHIP", "MOH", "SHIP:MOH:other")
	if got, err := s.Operation(t.Context(), op.ID); err != nil || got.State != queue.Failed || got.Failure == nil {
		t.Fatalf("operation after CreateFailed: %s %v, %v", got.State, got.Failure, err)
	}
	// The name is free again.
	mustCreate(t, s, n, noLimit)
}

func testEffectDeleted(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	del, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	complete(t, s, del.ID, queue.Succeeded, groups.Deleted{Name: n})
	wantGone(t, s, n)
	wantList(t, s, "SHIP", "MOH")
	queuetest.WantDepth(t, s, "SHIP", 0)
	mustCreate(t, s, name("SHIP", "MOH", "Billing"), noLimit)
}

func testEffectDeleteFailed(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	mustActive(t, s, n, "g-1")
	del, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(3 * time.Hour)
	complete(t, s, del.ID, queue.Failed, groups.DeleteFailed{Name: n, At: at})
	g := wantState(t, s, n, groups.Active, "")
	if g.UpstreamID != "g-1" || !g.UpdatedAt.Equal(at) {
		t.Fatalf("group after DeleteFailed = %+v", g)
	}
	// It can be deleted again.
	if _, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit); err != nil {
		t.Fatalf("DeletePending after DeleteFailed: %v", err)
	}
}

// FailingEffect is an effect whose application writes a group and then
// fails, for suites that must commit one (queuetest.RunStoreTests).
var FailingEffect groups.Effect = failingEffect{groups.Name{Tenant: "SHIP", Project: "MOH", Group: "half"}}

// errRefused is failingEffect's error.
var errRefused = errors.New("effect refused")

// failingEffect writes a group and then fails: nothing of the commit it is
// part of may remain.
type failingEffect struct{ Name groups.Name }

func (e failingEffect) Apply(tx groups.Tx) error {
	if err := tx.PutGroup(groups.Group{Name: e.Name, State: groups.Active, UpstreamID: "g-half", CreatedAt: t0}); err != nil {
		return err
	}
	return errRefused
}

func testFailingEffect(t *testing.T, s Store) {
	n := name("SHIP", "MOH", "billing")
	op := mustCreate(t, s, n, noLimit)
	stored, err := s.Operation(t.Context(), op.ID)
	if err != nil {
		t.Fatal(err)
	}
	done := stored
	done.State, done.FinishedAt = queue.Succeeded, t0.Add(time.Hour)
	// A known effect first: it must be rolled back with the rest.
	half := name("SHIP", "MOH", "half")
	effects := []groups.Effect{groups.Created{Name: n, UpstreamID: "g-1", At: t0}, failingEffect{half}}
	if err := s.Complete(t.Context(), done, effects); !errors.Is(err, errRefused) {
		t.Fatalf("Complete with a failing effect = %v, want its error", err)
	}
	wantState(t, s, n, groups.Creating, op.ID)
	wantGone(t, s, half)
	if got, err := s.Operation(t.Context(), op.ID); err != nil || got.State != queue.Queued {
		t.Fatalf("operation after rejected Complete: %s, %v; want queued", got.State, err)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)
}

func testEffectsOnMissingGroup(t *testing.T, s Store) {
	op, err := s.Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: "SHIP", Project: "MOH", Kind: groups.KindCreate, CreatedAt: t0}, noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	mustActive(t, s, name("SHIP", "MOH", "kept"), "g-kept")
	gone := name("SHIP", "MOH", "gone")
	nowhere := name("NOBODY", "MOH", "gone")
	op.State = queue.Succeeded
	effects := []groups.Effect{
		groups.Created{Name: gone, UpstreamID: "g-1", At: t0}, groups.DeleteFailed{Name: gone, At: t0},
		groups.CreateFailed{Name: gone}, groups.Deleted{Name: gone},
		groups.Created{Name: nowhere, UpstreamID: "g-2", At: t0}, groups.Deleted{Name: nowhere},
	}
	if err := s.Complete(t.Context(), op, effects); err != nil {
		t.Fatalf("Complete with effects on groups the mirror does not hold: %v", err)
	}
	wantGone(t, s, gone)
	wantGone(t, s, nowhere)
	wantList(t, s, "SHIP", "MOH", "SHIP:MOH:kept")
	if got, err := s.Operation(t.Context(), op.ID); err != nil || got.State != queue.Succeeded {
		t.Fatalf("operation: %s, %v; want succeeded", got.State, err)
	}
}

func testQueueLimits(t *testing.T, s Store) {
	active := name("SHIP", "MOH", "active")
	mustActive(t, s, active, "g-1")
	mustCreate(t, s, name("SHIP", "MOH", "pending"), noLimit)
	full := groups.Limits{Groups: noLimit, Queue: queue.Limits{Project: 1}}

	n := name("SHIP", "MOH", "more")
	g, op := createArgs(n, "")
	_, err := s.CreatePending(t.Context(), g, op, full)
	var qf *queue.QueueFullError
	if !errors.As(err, &qf) || qf.Depth.Total != 1 {
		t.Fatalf("CreatePending into a full queue: error = %v, want a *QueueFullError with depth 1", err)
	}
	wantGone(t, s, n)
	queuetest.WantNoOp(t, s, op.ID)

	del := deleteOp(active)
	if _, err := s.DeletePending(t.Context(), active, del, full.Queue); !errors.As(err, &qf) {
		t.Fatalf("DeletePending into a full queue: error = %v, want a *QueueFullError", err)
	}
	queuetest.WantNoOp(t, s, del.ID)
	wantState(t, s, active, groups.Active, "")
	queuetest.WantDepth(t, s, "SHIP", 1)

	// The queue is checked before the name.
	g, op = createArgs(name("SHIP", "MOH", "ACTIVE"), "")
	if _, err := s.CreatePending(t.Context(), g, op, full); !errors.As(err, &qf) {
		t.Fatalf("CreatePending of an existing name into a full queue: error = %v, want a *QueueFullError", err)
	}

	// Another project has room.
	g, op = createArgs(name("SHIP", "HR", "more"), "")
	if _, err := s.CreatePending(t.Context(), g, op, full); err != nil {
		t.Fatalf("CreatePending into another project: %v", err)
	}
}

func testReplay(t *testing.T, s Store) {
	expires := t0.Add(24 * time.Hour)
	n := name("SHIP", "MOH", "billing")
	g, op := createArgs(n, "")
	op.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "create-1", Fingerprint: "create billing", Expires: expires}
	first, err := s.CreatePending(t.Context(), g, op, groupLimit(noLimit))
	if err != nil {
		t.Fatal(err)
	}
	// The same request again: a replay, though the group now exists and the
	// queue is full.
	g, again := createArgs(n, "")
	again.Idempotency = op.Idempotency
	_, err = s.CreatePending(t.Context(), g, again, groups.Limits{Groups: 1, Queue: queue.Limits{Tenant: 1}})
	var replay *queue.ReplayError
	if !errors.As(err, &replay) || replay.OperationID != first.ID {
		t.Fatalf("CreatePending replay: error = %v, want a *ReplayError naming %s", err, first.ID)
	}
	queuetest.WantNoOp(t, s, again.ID)
	wantState(t, s, n, groups.Creating, first.ID)

	// The key reused for another request.
	other := name("SHIP", "MOH", "other")
	g, mismatch := createArgs(other, "")
	mismatch.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "create-1", Fingerprint: "create other", Expires: expires}
	if _, err := s.CreatePending(t.Context(), g, mismatch, groupLimit(noLimit)); !errors.Is(err, queue.ErrIdempotencyMismatch) {
		t.Fatalf("CreatePending with a reused key: error = %v, want ErrIdempotencyMismatch", err)
	}
	wantGone(t, s, other)
	queuetest.WantNoOp(t, s, mismatch.ID)

	// Deletes replay the same way.
	complete(t, s, first.ID, queue.Succeeded, groups.Created{Name: n, UpstreamID: "g-1", At: t0})
	del := deleteOp(n)
	del.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "delete-1", Fingerprint: "delete billing", Expires: expires}
	firstDel, err := s.DeletePending(t.Context(), n, del, noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	againDel := deleteOp(n)
	againDel.Idempotency = del.Idempotency
	if _, err := s.DeletePending(t.Context(), n, againDel, noQueueLimit); !errors.As(err, &replay) || replay.OperationID != firstDel.ID {
		t.Fatalf("DeletePending replay: error = %v, want a *ReplayError naming %s (not ErrPending)", err, firstDel.ID)
	}
	queuetest.WantNoOp(t, s, againDel.ID)
	queuetest.WantDepth(t, s, "SHIP", 1)
}

func version(t *testing.T, s Store, tenant, project string) uint64 {
	t.Helper()
	v, err := s.GroupsVersion(t.Context(), tenant, project)
	if err != nil {
		t.Fatalf("GroupsVersion(%s, %s): %v", tenant, project, err)
	}
	return v
}

func testGroupsVersion(t *testing.T, s Store) {
	if v := version(t, s, "SHIP", "MOH"); v != 0 {
		t.Fatalf("GroupsVersion before any change = %d, want 0", v)
	}
	n := name("SHIP", "MOH", "billing")
	seen := map[uint64]string{}
	last := uint64(0)
	changed := func(what string) {
		t.Helper()
		v := version(t, s, "SHIP", "MOH")
		if v == last {
			t.Fatalf("GroupsVersion unchanged (%d) after %s", v, what)
		}
		if prev, dup := seen[v]; dup {
			t.Fatalf("GroupsVersion after %s = %d, as after %s", what, v, prev)
		}
		seen[v], last = what, v
	}
	op := mustCreate(t, s, n, noLimit)
	changed("CreatePending")
	complete(t, s, op.ID, queue.Succeeded, groups.Created{Name: n, UpstreamID: "g-1", At: t0})
	changed("Created")
	del, err := s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	changed("DeletePending")
	complete(t, s, del.ID, queue.Failed, groups.DeleteFailed{Name: n, At: t0})
	changed("DeleteFailed")
	del, err = s.DeletePending(t.Context(), n, deleteOp(n), noQueueLimit)
	if err != nil {
		t.Fatal(err)
	}
	changed("second DeletePending")
	complete(t, s, del.ID, queue.Succeeded, groups.Deleted{Name: n})
	changed("Deleted")
	op = mustCreate(t, s, n, noLimit)
	changed("CreatePending again")
	complete(t, s, op.ID, queue.Failed, groups.CreateFailed{Name: n})
	changed("CreateFailed")

	// Other projects and tenants have versions of their own.
	if v := version(t, s, "SHIP", "MOHX"); v != 0 {
		t.Fatalf("GroupsVersion of an untouched project = %d, want 0", v)
	}
	mustCreate(t, s, name("SHIP", "HR", "x"), noLimit)
	mustCreate(t, s, name("DOCK", "MOH", "x"), noLimit)
	if v := version(t, s, "SHIP", "MOH"); v != last {
		t.Fatalf("GroupsVersion(SHIP, MOH) = %d after changes elsewhere, want %d", v, last)
	}
}

// --- concurrency --------------------------------------------------------------

func testConcurrentSameName(t *testing.T, s Store) {
	const n = 20
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   []queue.Operation
		losingOps []string
	)
	for i := range n {
		wg.Go(func() {
			// Vary the case: they are all the same group.
			g := "billing"
			if i%2 == 1 {
				g = "Billing"
			}
			grp, op := createArgs(name("SHIP", "MOH", g), fmt.Sprint("try ", i))
			got, err := s.CreatePending(context.Background(), grp, op, groupLimit(noLimit))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, got)
			case errors.Is(err, groups.ErrExists):
				losingOps = append(losingOps, op.ID)
			default:
				t.Errorf("CreatePending #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent creates of one name succeeded, want exactly 1", len(winners), n)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)
	for _, id := range losingOps {
		queuetest.WantNoOp(t, s, id)
	}
	gs, err := s.Groups(t.Context(), "SHIP", "MOH")
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].PendingOperation != winners[0].ID {
		t.Fatalf("Groups = %+v, want the winner's group only", gs)
	}
}

func testConcurrentLimit(t *testing.T, s Store) {
	const n, limit = 20, 5
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		created, denied int
	)
	for i := range n {
		wg.Go(func() {
			project := []string{"MOH", "HR"}[i%2] // the limit spans projects
			grp, op := createArgs(name("SHIP", project, fmt.Sprint("g", i)), "")
			_, err := s.CreatePending(context.Background(), grp, op, groupLimit(limit))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, groups.ErrLimit):
				denied++
			default:
				t.Errorf("CreatePending #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if created != limit || denied != n-limit {
		t.Fatalf("%d created and %d refused with ErrLimit, want %d and %d", created, denied, limit, n-limit)
	}
	queuetest.WantDepth(t, s, "SHIP", limit)
	total := 0
	for _, project := range []string{"MOH", "HR"} {
		gs, err := s.Groups(t.Context(), "SHIP", project)
		if err != nil {
			t.Fatal(err)
		}
		total += len(gs)
	}
	if total != limit {
		t.Fatalf("the tenant holds %d groups, want %d", total, limit)
	}
}

func testConcurrentDelete(t *testing.T, s Store) {
	const n = 10
	g := name("SHIP", "MOH", "billing")
	mustActive(t, s, g, "g-1")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range n {
		wg.Go(func() {
			op := deleteOp(g)
			_, err := s.DeletePending(context.Background(), g, op, noQueueLimit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, op.ID)
			case errors.Is(err, groups.ErrPending):
			default:
				t.Errorf("DeletePending #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent deletes succeeded, want exactly 1", len(winners), n)
	}
	wantState(t, s, g, groups.Deleting, winners[0])
	queuetest.WantDepth(t, s, "SHIP", 1)
}
