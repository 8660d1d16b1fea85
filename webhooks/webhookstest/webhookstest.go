// Package webhookstest is the conformance suite for webhooks.Store
// implementations.
//
// A delivery's effect lands in the group mirror, so the suite needs a store
// that is also the mirror (groups.Store), whose operations and effects the
// cases commit through a groups.Ledger; see Store. The first case states the
// transaction contract itself (a delivery's record and its effects commit
// together, or neither does); the others run the rules (webhooks.Apply,
// webhooks.Recorded, groups.RemoveDeletedUser, groups.FollowUpdatedUser)
// over the store. A backend runs it with a short test:
//
//	func TestWebhooksStore(t *testing.T) {
//		webhookstest.RunStoreTests(t, func(t *testing.T) webhookstest.Store { return bolttest.MustOpen(t) })
//	}
//
// newStore must return a new, empty store for each call and arrange its own
// clean-up with t.Cleanup.
package webhookstest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/webhooks"
)

// Store is what the suite needs.
type Store interface {
	webhooks.Store
	groups.Store
}

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

var (
	ann = groups.User{ID: "00000000-0000-4000-8000-000000000001", Email: "Ann@example.gov.sg", DisplayName: "Ann"}
	bob = groups.User{ID: "00000000-0000-4000-8000-000000000002", Email: "bob@example.gov.sg", DisplayName: "Bob"}
)

// RunStoreTests runs the conformance cases, each on a fresh store.
func RunStoreTests(t *testing.T, newStore func(*testing.T) Store) {
	t.Helper()
	testkit.RunCases(t, newStore, []testkit.Case[Store]{
		{Name: "DeliveryCommitsWithItsEffects", Run: testAtomic},
		{Name: "GoneUserLeavesGroupsAndKnownUsers", Run: testGone},
		{Name: "GoneByEmailOnly", Run: testGoneByEmail},
		{Name: "GoneUnknownUserIsMarked", Run: testGoneUnknown},
		{Name: "GoneByIDSparesTheEmailsNewOwner", Run: testGoneEmailReused},
		{Name: "RepeatChangesNothing", Run: testRepeat},
		{Name: "AppliedButNotRecordedIsResumed", Run: testResumed},
		{Name: "RepeatAfterExpiryIsNew", Run: testExpired},
		{Name: "DeliveriesArePerTenant", Run: testPerTenant},
		{Name: "ChangedUserFollowsEmail", Run: testChanged},
		{Name: "ChangedUnknownUserStaysUnknown", Run: testChangedUnknown},
		{Name: "ChangedDeletedUserStaysDeleted", Run: testChangedDeleted},
		{Name: "PruneForgetsOldDeletedMarks", Run: testPruneMarks},
		{Name: "UserSeenAgainIsNoLongerDeleted", Run: testSeenAgain},
		{Name: "PruneForgetsExpired", Run: testPrune},
	})
}

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func delivery(tenant, id string) webhooks.Delivery {
	return webhooks.Delivery{Tenant: tenant, Digest: digest(id), At: t0, Expires: t0.Add(webhooks.Retention)}
}

// mustGroup creates an active group with members.
func mustGroup(t *testing.T, s Store, n groups.Name, members ...groups.User) {
	t.Helper()
	op := queue.Operation{
		ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate,
		Target: n.String(), Payload: []byte(`{}`), Actor: "key:ci", State: queue.Queued, CreatedAt: t0, UpdatedAt: t0,
	}
	g := groups.Group{Name: n, State: groups.Creating, PendingOperation: op.ID, CreatedAt: t0, UpdatedAt: t0}
	if _, err := groups.NewLedger(s).CreatePending(t.Context(), g, op, groups.Limits{Groups: 1000}); err != nil {
		t.Fatalf("CreatePending(%s): %v", n, err)
	}
	effects := []groups.Effect{groups.Created{Name: n, UpstreamID: "up-" + n.Group, At: t0, MembersKnown: true}}
	if len(members) > 0 {
		effects = append(effects, groups.MembersAdded{Name: n, Users: members, At: t0})
	}
	complete(t, s, op.ID, effects...)
}

func complete(t *testing.T, s Store, id string, effects ...groups.Effect) {
	t.Helper()
	op, err := s.Operation(t.Context(), id)
	if err != nil {
		t.Fatalf("Operation(%s): %v", id, err)
	}
	op.State, op.FinishedAt, op.UpdatedAt = queue.Succeeded, t0, t0
	if err := groups.NewLedger(s).Complete(t.Context(), op, effects); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

// commit commits effects with a fresh operation of tenant.
func commit(t *testing.T, s Store, tenant string, effects ...groups.Effect) {
	t.Helper()
	op, err := groups.NewLedger(s).Enqueue(t.Context(), queue.Operation{ID: queue.NewID(), Tenant: tenant, Project: "MOH", Kind: groups.KindMembers, CreatedAt: t0}, queue.Limits{})
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	complete(t, s, op.ID, effects...)
}

func members(t *testing.T, s Store, n groups.Name) []groups.User {
	t.Helper()
	us, _, err := s.ListMembers(t.Context(), n, groups.PageQuery{})
	if err != nil {
		t.Fatalf("ListMembers(%s): %v", n, err)
	}
	return us
}

func group(t *testing.T, s Store, n groups.Name) groups.Group {
	t.Helper()
	g, err := s.Group(t.Context(), n)
	if err != nil {
		t.Fatalf("Group(%s): %v", n, err)
	}
	return g
}

// apply applies d and marks it recorded, as the receiver does.
func apply(t *testing.T, s Store, d webhooks.Delivery) webhooks.Applied {
	t.Helper()
	a, err := webhooks.Apply(t.Context(), s, d)
	if err != nil {
		t.Fatalf("ApplyDelivery: %v", err)
	}
	if a.Resumed {
		t.Fatalf("ApplyDelivery of a new delivery: Resumed")
	}
	if err := webhooks.Recorded(t.Context(), s, d.Tenant, d.Digest); err != nil {
		t.Fatalf("DeliveryRecorded: %v", err)
	}
	return a
}

// testResumed: a delivery applied but not marked recorded (the process
// stopped in between) is not applied again; its repeat returns what it did,
// Resumed, until it is marked.
func testResumed(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	d := delivery("SHIP", "gone ann")
	d.Gone = &groups.User{ID: ann.ID}
	first, err := webhooks.Apply(t.Context(), s, d)
	if err != nil || first.Resumed || !first.Known {
		t.Fatalf("first ApplyDelivery = %+v, %v", first, err)
	}
	v := group(t, s, billing).MembersVersion
	again, err := webhooks.Apply(t.Context(), s, d)
	if err != nil || !again.Resumed || !slices.Equal(again.Left, first.Left) || again.User != first.User || !again.Known {
		t.Fatalf("repeat before recording = %+v, %v; want Resumed with %+v", again, err, first)
	}
	if group(t, s, billing).MembersVersion != v {
		t.Errorf("the resumed delivery changed the mirror again")
	}
	if err := webhooks.Recorded(t.Context(), s, "SHIP", d.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := webhooks.Apply(t.Context(), s, d); !errors.Is(err, webhooks.ErrDuplicate) {
		t.Fatalf("repeat after recording: %v, want ErrDuplicate", err)
	}
	if n, err := s.PruneDeliveries(t.Context(), d.Expires); err != nil || n != 1 {
		t.Errorf("PruneDeliveries = %d, %v; want the recorded delivery pruned", n, err)
	}
}

func known(t *testing.T, s Store, tenant string, ids ...string) map[string]groups.User {
	t.Helper()
	k, err := s.KnownUsers(t.Context(), tenant, ids)
	if err != nil {
		t.Fatalf("KnownUsers: %v", err)
	}
	return k
}

func deleted(t *testing.T, s Store, tenant string, ids ...string) map[string]groups.DeletedUser {
	t.Helper()
	d, err := s.DeletedUsers(t.Context(), tenant, ids)
	if err != nil {
		t.Fatalf("DeletedUsers: %v", err)
	}
	return d
}

var (
	billing = groups.Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	payroll = groups.Name{Tenant: "SHIP", Project: "MOE", Group: "payroll"}
	other   = groups.Name{Tenant: "OTHER", Project: "MOH", Group: "billing"}
)

func testGone(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	mustGroup(t, s, payroll, ann)
	mustGroup(t, s, other, ann)
	before := group(t, s, billing)
	d := delivery("SHIP", "gone ann")
	d.Gone = &groups.User{ID: ann.ID}
	a := apply(t, s, d)
	if want := []groups.Name{payroll, billing}; !slices.Equal(a.Left, want) {
		t.Errorf("Left = %v, want %v (key order: project, then group)", a.Left, want)
	}
	if !a.Known || a.User != ann {
		t.Errorf("Applied user = %+v known %v, want %+v", a.User, a.Known, ann)
	}
	if got := members(t, s, billing); !slices.Equal(got, []groups.User{bob}) {
		t.Errorf("billing members = %v, want only bob", got)
	}
	if got := members(t, s, payroll); len(got) != 0 {
		t.Errorf("payroll members = %v, want none", got)
	}
	if got := members(t, s, other); !slices.Equal(got, []groups.User{ann}) {
		t.Errorf("another tenant's group lost its member: %v", got)
	}
	g := group(t, s, billing)
	if g.MembersVersion <= before.MembersVersion || g.MemberCount != 1 {
		t.Errorf("billing MembersVersion %d -> %d, MemberCount %d; want a new version and 1", before.MembersVersion, g.MembersVersion, g.MemberCount)
	}
	if k := known(t, s, "SHIP", ann.ID, "ann@example.gov.sg", bob.ID); len(k) != 1 || k[bob.ID] != bob {
		t.Errorf("known users after deletion = %v, want only bob", k)
	}
	dl := deleted(t, s, "SHIP", ann.ID, "ann@example.gov.sg", bob.ID)
	if len(dl) != 2 || dl[ann.ID].ID != ann.ID || !dl["ann@example.gov.sg"].DeletedAt.Equal(t0) {
		t.Errorf("DeletedUsers = %+v, want ann by id and e-mail, deleted at %v", dl, t0)
	}
	if dl := deleted(t, s, "OTHER", ann.ID); len(dl) != 0 {
		t.Errorf("another tenant marks ann deleted: %v", dl)
	}
}

func testGoneByEmail(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	d := delivery("SHIP", "gone ann by mail")
	d.Gone = &groups.User{Email: "ANN@example.gov.sg"}
	a := apply(t, s, d)
	if !slices.Equal(a.Left, []groups.Name{billing}) || a.User.ID != ann.ID {
		t.Errorf("Applied = %+v, want ann to leave billing", a)
	}
	if got := members(t, s, billing); !slices.Equal(got, []groups.User{bob}) {
		t.Errorf("members = %v, want only bob", got)
	}
	if dl := deleted(t, s, "SHIP", ann.ID); len(dl) != 1 {
		t.Errorf("ann's id not marked deleted: %v", dl)
	}
}

func testGoneUnknown(t *testing.T, s Store) {
	mustGroup(t, s, billing, bob)
	d := delivery("SHIP", "gone stranger")
	stranger := groups.User{ID: "00000000-0000-4000-8000-000000000009", Email: "x@example.gov.sg"}
	d.Gone = &stranger
	a := apply(t, s, d)
	if a.Known || len(a.Left) != 0 {
		t.Errorf("Applied = %+v, want an unknown user who left nothing", a)
	}
	if dl := deleted(t, s, "SHIP", stranger.ID, stranger.Email); len(dl) != 2 {
		t.Errorf("DeletedUsers = %v, want the stranger by id and e-mail", dl)
	}
}

func testRepeat(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	d := delivery("SHIP", "gone ann")
	d.Gone = &groups.User{ID: ann.ID}
	apply(t, s, d)
	// ann is added again through the gateway; a retry of the old delivery
	// must not remove her a second time.
	commit(t, s, "SHIP", groups.MembersAdded{Name: billing, Users: []groups.User{ann}, At: t0.Add(time.Hour)})
	v := group(t, s, billing).MembersVersion
	d.At = t0.Add(13 * 24 * time.Hour)
	if _, err := webhooks.Apply(t.Context(), s, d); !errors.Is(err, webhooks.ErrDuplicate) {
		t.Fatalf("repeat: err %v, want ErrDuplicate", err)
	}
	if got := members(t, s, billing); len(got) != 2 || group(t, s, billing).MembersVersion != v {
		t.Errorf("repeat changed the mirror: members %v", got)
	}
	if k := known(t, s, "SHIP", ann.ID); len(k) != 1 {
		t.Errorf("repeat forgot ann again: %v", k)
	}
}

func testExpired(t *testing.T, s Store) {
	d := delivery("SHIP", "x")
	apply(t, s, d)
	d.At = d.Expires
	d.Expires = d.At.Add(webhooks.Retention)
	apply(t, s, d) // no longer remembered: processed again
	d.At = d.At.Add(time.Minute)
	if _, err := webhooks.Apply(t.Context(), s, d); !errors.Is(err, webhooks.ErrDuplicate) {
		t.Fatalf("err %v, want ErrDuplicate", err)
	}
}

func testPerTenant(t *testing.T, s Store) {
	apply(t, s, delivery("SHIP", "same"))
	apply(t, s, delivery("OTHER", "same"))
	if _, err := webhooks.Apply(t.Context(), s, delivery("OTHER", "same")); !errors.Is(err, webhooks.ErrDuplicate) {
		t.Fatalf("err %v, want ErrDuplicate", err)
	}
}

func testChanged(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	mustGroup(t, s, payroll, ann)
	v := group(t, s, billing).MembersVersion
	moved := groups.User{ID: ann.ID, Email: "ann.tan@agency.gov.sg"}
	d := delivery("SHIP", "ann moved")
	d.Changed = &moved
	a := apply(t, s, d)
	if !a.Known || a.User != ann {
		t.Errorf("Applied = %+v, want the old record of ann", a)
	}
	want := groups.User{ID: ann.ID, Email: "ann.tan@agency.gov.sg", DisplayName: "Ann"} // display name kept
	k := known(t, s, "SHIP", "ann.tan@agency.gov.sg", "ann@example.gov.sg", ann.ID)
	if k["ann.tan@agency.gov.sg"] != want || k[ann.ID] != want {
		t.Errorf("known by new e-mail and id = %v, want %+v", k, want)
	}
	if _, ok := k["ann@example.gov.sg"]; ok {
		t.Errorf("the old e-mail still finds ann")
	}
	for _, n := range []groups.Name{billing, payroll} {
		if !slices.Contains(members(t, s, n), want) {
			t.Errorf("%s members = %v, want ann's new record", n, members(t, s, n))
		}
	}
	if g := group(t, s, billing); g.MembersVersion <= v || g.MemberCount != 2 {
		t.Errorf("billing MembersVersion %d -> %d, count %d", v, g.MembersVersion, g.MemberCount)
	}
}

func testChangedUnknown(t *testing.T, s Store) {
	u := groups.User{ID: "00000000-0000-4000-8000-000000000007", Email: "new@example.gov.sg", DisplayName: "New"}
	d := delivery("SHIP", "new")
	d.Changed = &u
	if a := apply(t, s, d); a.Known {
		t.Errorf("Applied = %+v, want unknown", a)
	}
	// Only users the mirror knows follow an update: a stranger stays
	// unknown (a later lookup resolves it).
	if k := known(t, s, "SHIP", "new@example.gov.sg", u.ID); len(k) != 0 {
		t.Errorf("known = %v, want the stranger unknown", k)
	}
}

func testChangedDeleted(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	d := delivery("SHIP", "gone ann")
	d.Gone = &groups.User{ID: ann.ID}
	apply(t, s, d)
	// A user-updated sent before the deletion arrives after it.
	late := delivery("SHIP", "ann moved")
	late.Changed = &groups.User{ID: ann.ID, Email: "ann.tan@agency.gov.sg"}
	if a := apply(t, s, late); a.Known {
		t.Errorf("Applied = %+v, want nothing known", a)
	}
	if k := known(t, s, "SHIP", ann.ID, "ann.tan@agency.gov.sg"); len(k) != 0 {
		t.Errorf("the late update brought ann back: %v", k)
	}
	if dl := deleted(t, s, "SHIP", ann.ID, "ann@example.gov.sg"); len(dl) != 2 {
		t.Errorf("the late update cleared ann's deleted marks: %v", dl)
	}
	if got := members(t, s, billing); !slices.Equal(got, []groups.User{bob}) {
		t.Errorf("members = %v, want only bob", got)
	}
}

func testPruneMarks(t *testing.T, s Store) {
	d := delivery("SHIP", "gone ann")
	d.Gone = &ann
	apply(t, s, d)
	later := delivery("SHIP", "gone bob")
	later.Gone = &bob
	later.At = t0.Add(20 * 24 * time.Hour)
	later.Expires = later.At.Add(webhooks.Retention)
	apply(t, s, later)
	if _, err := s.PruneDeliveries(t.Context(), t0.Add(webhooks.MarkRetention+time.Hour)); err != nil {
		t.Fatal(err)
	}
	dl := deleted(t, s, "SHIP", ann.ID, "ann@example.gov.sg", bob.ID, "bob@example.gov.sg")
	if _, ok := dl[ann.ID]; ok || len(dl) != 2 {
		t.Errorf("DeletedUsers after pruning = %v, want only bob's (ann's are %s old)", dl, webhooks.MarkRetention+time.Hour)
	}
}

func testSeenAgain(t *testing.T, s Store) {
	d := delivery("SHIP", "gone ann")
	d.Gone = &ann
	apply(t, s, d)
	// A new user takes ann's e-mail, and a lookup resolves it.
	fresh := groups.User{ID: "00000000-0000-4000-8000-000000000003", Email: ann.Email}
	commit(t, s, "SHIP", groups.UsersResolved{Tenant: "SHIP", Users: []groups.User{fresh}})
	dl := deleted(t, s, "SHIP", "ann@example.gov.sg", ann.ID)
	if _, ok := dl["ann@example.gov.sg"]; ok {
		t.Errorf("the e-mail of a user resolved again is still marked deleted")
	}
	if _, ok := dl[ann.ID]; !ok {
		t.Errorf("the deleted user's id lost its mark")
	}
}

func testPrune(t *testing.T, s Store) {
	apply(t, s, delivery("SHIP", "a"))
	late := delivery("SHIP", "b")
	late.Expires = t0.Add(30 * 24 * time.Hour)
	apply(t, s, late)
	apply(t, s, delivery("OTHER", "a"))
	n, err := s.PruneDeliveries(t.Context(), t0.Add(webhooks.Retention))
	if err != nil || n != 2 {
		t.Fatalf("PruneDeliveries = %d, %v; want 2", n, err)
	}
	// The pruned ones are new again; the kept one is still a duplicate.
	at := t0.Add(webhooks.Retention + time.Hour)
	d := delivery("SHIP", "a")
	d.At = at
	apply(t, s, d)
	late.At = at
	if _, err := webhooks.Apply(t.Context(), s, late); !errors.Is(err, webhooks.ErrDuplicate) {
		t.Fatalf("kept delivery: err %v, want ErrDuplicate", err)
	}
}

func testGoneEmailReused(t *testing.T, s Store) {
	// bob now holds the e-mail the deleted user had.
	holder := groups.User{ID: bob.ID, Email: "old@example.gov.sg", DisplayName: "Bob"}
	mustGroup(t, s, billing, holder)
	d := delivery("SHIP", "gone old owner")
	d.Gone = &groups.User{ID: ann.ID, Email: "old@example.gov.sg"}
	if a := apply(t, s, d); a.Known || len(a.Left) != 0 {
		t.Errorf("Applied = %+v, want nothing of bob's touched", a)
	}
	if got := members(t, s, billing); !slices.Equal(got, []groups.User{holder}) {
		t.Errorf("members = %v, want bob still there", got)
	}
	if k := known(t, s, "SHIP", bob.ID, "old@example.gov.sg"); k[bob.ID] != holder || k["old@example.gov.sg"] != holder {
		t.Errorf("bob forgotten by id or e-mail: %v", k)
	}
	// The deleted user's id is marked; bob's e-mail is not (his adds by
	// e-mail must go on).
	dl := deleted(t, s, "SHIP", ann.ID, "old@example.gov.sg")
	if _, ok := dl[ann.ID]; !ok {
		t.Errorf("the deleted user's id is not marked: %v", dl)
	}
	if _, ok := dl["old@example.gov.sg"]; ok {
		t.Errorf("bob's e-mail is marked deleted")
	}
}

// testAtomic: UpdateDeliveries commits a delivery record and the mirror
// changes made with it together, or, when fn fails, neither; the same
// transaction reads its own writes, and another tenant's records are not
// in it.
func testAtomic(t *testing.T, s Store) {
	mustGroup(t, s, billing, ann, bob)
	before := group(t, s, billing)
	d := digest("atomic")
	mark := groups.DeletedUser{ID: ann.ID, DeletedAt: t0, Expires: t0.Add(time.Hour)}
	write := func(tx webhooks.Tx) error {
		if err := (groups.MembersRemoved{Name: billing, UserIDs: []string{ann.ID}, At: t0}).Apply(tx); err != nil {
			return err
		}
		if err := tx.ForgetKnownUser(ann.ID); err != nil {
			return err
		}
		if err := tx.PutDeletedUser(ann.ID, mark); err != nil {
			return err
		}
		if err := tx.PutDelivery(d, webhooks.Record{Expires: t0.Add(time.Hour), Pending: &webhooks.Applied{Left: []groups.Name{billing}}}); err != nil {
			return err
		}
		r, ok, err := tx.Delivery(d)
		if err != nil || !ok || r.Pending == nil || !slices.Equal(r.Pending.Left, []groups.Name{billing}) || !r.Expires.Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("Delivery inside the transaction = %+v, %v, %v; want its own write", r, ok, err)
		}
		if dl, err := tx.DeletedUsers([]string{strings.ToUpper(ann.ID)}); err != nil || len(dl) != 1 {
			return fmt.Errorf("DeletedUsers inside the transaction = %v, %v; want its own write, found case-insensitively", dl, err)
		}
		return nil
	}
	boom := errors.New("refused at the end")
	err := s.UpdateDeliveries(t.Context(), "SHIP", func(tx webhooks.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateDeliveries = %v, want fn's error", err)
	}
	if g := group(t, s, billing); g.MembersVersion != before.MembersVersion || len(members(t, s, billing)) != 2 {
		t.Errorf("a failed transaction removed a member: %+v", g)
	}
	if k := known(t, s, "SHIP", ann.ID); len(k) != 1 {
		t.Errorf("a failed transaction forgot a known user: %v", k)
	}
	if dl := deleted(t, s, "SHIP", ann.ID); len(dl) != 0 {
		t.Errorf("a failed transaction left a mark: %v", dl)
	}
	seen := false
	if err := s.UpdateDeliveries(t.Context(), "SHIP", func(tx webhooks.Tx) error {
		_, seen, err = tx.Delivery(d)
		return err
	}); err != nil || seen {
		t.Fatalf("a failed transaction left its delivery record: %v, %v", seen, err)
	}

	if err := s.UpdateDeliveries(t.Context(), "SHIP", write); err != nil {
		t.Fatalf("UpdateDeliveries: %v", err)
	}
	if got := members(t, s, billing); !slices.Equal(got, []groups.User{bob}) {
		t.Errorf("members = %v, want only bob", got)
	}
	if dl := deleted(t, s, "SHIP", ann.ID); dl[ann.ID] != mark {
		t.Errorf("DeletedUsers = %+v, want %+v", dl, mark)
	}
	var r webhooks.Record
	var other bool
	if err := s.UpdateDeliveries(t.Context(), "SHIP", func(tx webhooks.Tx) error {
		r, seen, err = tx.Delivery(d)
		return err
	}); err != nil || !seen || r.Pending == nil {
		t.Fatalf("the committed delivery record = %+v, %v, %v", r, seen, err)
	}
	if err := s.UpdateDeliveries(t.Context(), "OTHER", func(tx webhooks.Tx) error {
		_, other, err = tx.Delivery(d)
		return err
	}); err != nil || other {
		t.Errorf("another tenant sees the delivery record: %v, %v", other, err)
	}
	// Pruning forgets what expired: the record and the mark.
	if n, err := s.PruneDeliveries(t.Context(), t0.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("PruneDeliveries = %d, %v; want the record and the mark", n, err)
	}
	if dl := deleted(t, s, "SHIP", ann.ID); len(dl) != 0 {
		t.Errorf("an expired mark survived pruning: %v", dl)
	}
}
