package groupstest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/queue/queuetest"
)

// The cases of this file call groups.Store.Update directly: they state the
// transaction contract every rule of the Ledger relies on.

// writeAll writes one record of every kind through tx, for tenant SHIP.
func writeAll(tx groups.Tx, n groups.Name, op queue.Operation) error {
	rev, err := tx.NextRevision(0)
	if err != nil {
		return err
	}
	if err := tx.PutGroup(groups.Group{Name: n, State: groups.Active, UpstreamID: "g-1", Revision: rev, CreatedAt: t0}); err != nil {
		return err
	}
	ann := user("ann@example.com")
	if err := tx.PutMember(n, ann); err != nil {
		return err
	}
	if err := tx.PutKnownUsers([]groups.User{ann}); err != nil {
		return err
	}
	if err := tx.PutOwners(n, groups.Owners{UpstreamID: "g-1", Users: []groups.User{ann}}); err != nil {
		return err
	}
	if err := tx.SetGroupsSyncedAt(t0); err != nil {
		return err
	}
	if err := tx.PutDeletedUser("u-gone", groups.DeletedUser{ID: "u-gone", DeletedAt: t0, Expires: t0.Add(time.Hour)}); err != nil {
		return err
	}
	if _, err := tx.Append(op); err != nil {
		return err
	}
	return tx.PutIdempotency(*op.Idempotency, op.ID)
}

func testUpdateIsAtomic(t *testing.T, s Store) {
	ctx := t.Context()
	n := name("SHIP", "MOH", "billing")
	_, op := createArgs(n, "")
	op.Idempotency = &queue.Idempotency{Scope: "key:ci", Key: "k", Fingerprint: "f", Expires: t0.Add(time.Hour)}
	boom := errors.New("refused at the end")

	err := s.Update(ctx, "SHIP", func(tx groups.Tx) error {
		if err := writeAll(tx, n, op); err != nil {
			return err
		}
		// A transaction reads its own writes.
		if g, err := tx.Group(n); err != nil || g.UpstreamID != "g-1" {
			return fmt.Errorf("Group inside the transaction = %+v, %v; want its own write", g, err)
		}
		if d, err := tx.Depth(); err != nil || d.Total != 1 || d.Projects["MOH"] != 1 {
			return fmt.Errorf("Depth inside the transaction = %+v, %v; want the appended operation counted", d, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	wantGone(t, s, n)
	queuetest.WantNoOp(t, s, op.ID)
	queuetest.WantDepth(t, s, "SHIP", 0)
	if known, _ := s.KnownUsers(ctx, "SHIP", []string{"u-ann"}); len(known) != 0 {
		t.Fatalf("known users after a failed Update = %v", known)
	}
	if at, _ := s.GroupsSyncedAt(ctx, "SHIP"); !at.IsZero() {
		t.Fatalf("GroupsSyncedAt after a failed Update = %v", at)
	}
	if dl, _ := s.DeletedUsers(ctx, "SHIP", []string{"u-gone"}); len(dl) != 0 {
		t.Fatalf("deleted-user marks after a failed Update = %v", dl)
	}
	if _, _, ok, _ := s.Idempotent(ctx, "key:ci", "k", t0); ok {
		t.Fatal("idempotency key recorded by a failed Update")
	}
	if v, _ := s.GroupsVersion(ctx, "SHIP", "MOH"); v != 0 {
		t.Fatalf("GroupsVersion after a failed Update = %d, want 0", v)
	}

	var rev uint64
	err = s.Update(ctx, "SHIP", func(tx groups.Tx) error {
		if err := writeAll(tx, n, op); err != nil {
			return err
		}
		g, err := tx.Group(n)
		rev = g.Revision
		return err
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if g := mustGroup(t, s, n); g.Revision != rev || g.UpstreamID != "g-1" {
		t.Fatalf("group after Update = %+v; want it as written", g)
	}
	if us := mustMembers(t, s, n); len(us) != 1 || us[0].ID != "u-ann" {
		t.Fatalf("members after Update = %+v, want ann", us)
	}
	queuetest.WantDepth(t, s, "SHIP", 1)
	if got, err := s.Operation(ctx, op.ID); err != nil || got.Seq == 0 {
		t.Fatalf("appended operation = %+v, %v; want stored with a Seq", got, err)
	}
	if owners, err := s.Owners(ctx, n); err != nil || len(owners) != 1 {
		t.Fatalf("owners = %v, %v", owners, err)
	}
	if dl, err := s.DeletedUsers(ctx, "SHIP", []string{"U-GONE"}); err != nil || dl["U-GONE"].ID != "u-gone" {
		t.Fatalf("deleted-user marks after Update = %v, %v; want u-gone's, found case-insensitively", dl, err)
	}
	if v, _ := s.GroupsVersion(ctx, "SHIP", "MOH"); v == 0 {
		t.Fatal("GroupsVersion did not move with PutGroup")
	}
	// Revisions are never handed out twice, not even those of a failed
	// transaction's successor.
	err = s.Update(ctx, "SHIP", func(tx groups.Tx) error {
		next, err := tx.NextRevision(0)
		if err == nil && next <= rev {
			err = fmt.Errorf("NextRevision = %d after %d was handed out", next, rev)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A View sees what is committed, and cannot write.
	err = s.View(ctx, "SHIP", func(tx groups.Tx) error {
		if _, err := tx.Group(n); err != nil {
			return err
		}
		if tx.SetGroupsSyncedAt(t0.Add(time.Hour)) == nil {
			return errors.New("a write through View succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if at, _ := s.GroupsSyncedAt(ctx, "SHIP"); !at.Equal(t0) {
		t.Fatalf("GroupsSyncedAt = %v after a write through View, want %v", at, t0)
	}
}

func testUpdateIsTenantScoped(t *testing.T, s Store) {
	ctx := t.Context()
	dock := name("DOCK", "MOH", "billing")
	mustActive(t, s, dock, "g-dock")
	err := s.Update(ctx, "SHIP", func(tx groups.Tx) error {
		if _, err := tx.Group(dock); !errors.Is(err, groups.ErrNotFound) {
			return fmt.Errorf("another tenant's group read = %v, want ErrNotFound", err)
		}
		if tx.PutGroup(groups.Group{Name: dock, State: groups.Active}) == nil {
			return errors.New("a write of another tenant's group succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testConcurrentUpdateSerializes runs read-then-write transactions of one
// tenant at once: each names its group after the count it read, so two
// that overlapped would write the same name and lose a group.
func testConcurrentUpdateSerializes(t *testing.T, s Store) {
	const writers = 24
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), "SHIP", func(tx groups.Tx) error {
				n, err := tx.CountGroups("MOH")
				if err != nil {
					return err
				}
				g := groups.Group{Name: name("SHIP", "MOH", fmt.Sprintf("g%03d", n)), State: groups.Active, CreatedAt: t0}
				if _, err := tx.Group(g.Name); err == nil {
					return fmt.Errorf("%s exists already: the count was stale", g.Name)
				}
				return tx.PutGroup(g)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if gs, _ := s.Groups(t.Context(), "SHIP", "MOH"); len(gs) != writers {
		t.Fatalf("%d groups after %d serialized writers, want %d", len(gs), writers, writers)
	}
}

// testTxUserRecords: the primitives the rules about users deleted or
// changed in TechPass (groups.RemoveDeletedUser, FollowUpdatedUser) build
// on: the tenant's groups listed in Cursor order, known users found and
// forgotten by id or e-mail case-insensitively, deleted-user marks stored,
// found and removed case-insensitively, all of one tenant only.
func testTxUserRecords(t *testing.T, s Store) {
	ctx := t.Context()
	ann := user("Ann@example.com")
	mark := groups.DeletedUser{ID: "u-gone", Email: "gone@example.com", DeletedAt: t0, Expires: t0.Add(time.Hour)}
	names := []groups.Name{name("SHIP", "MOH", "Payroll"), name("SHIP", "MOE", "zeta"), name("SHIP", "MOH", "billing")}
	err := s.Update(ctx, "SHIP", func(tx groups.Tx) error {
		for i, n := range names {
			if err := tx.PutGroup(groups.Group{Name: n, State: groups.Active, Revision: uint64(i + 1), CreatedAt: t0}); err != nil {
				return err
			}
		}
		if err := tx.PutKnownUsers([]groups.User{ann}); err != nil {
			return err
		}
		return tx.PutDeletedUser("GONE@example.com", mark)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := s.Update(ctx, "OTHER", func(tx groups.Tx) error {
		return tx.PutGroup(groups.Group{Name: name("OTHER", "MOH", "aaa"), State: groups.Active, Revision: 1, CreatedAt: t0})
	}); err != nil {
		t.Fatalf("Update(OTHER): %v", err)
	}
	err = s.Update(ctx, "SHIP", func(tx groups.Tx) error {
		all, err := tx.Groups("")
		if err != nil {
			return err
		}
		var got []string
		for _, g := range all {
			got = append(got, g.Name.String())
		}
		if want := []string{"SHIP:MOE:zeta", "SHIP:MOH:billing", "SHIP:MOH:Payroll"}; fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("Groups(\"\") = %v, want %v (Cursor order, this tenant only)", got, want)
		}
		if moh, err := tx.Groups("MOH"); err != nil || len(moh) != 2 {
			return fmt.Errorf("Groups(MOH) = %v, %v; want its 2 groups", moh, err)
		}
		for _, k := range []string{"U-ANN", "ann@EXAMPLE.com"} {
			if u, ok, err := tx.KnownUser(k); err != nil || !ok || u != ann {
				return fmt.Errorf("KnownUser(%s) = %+v, %v, %v; want ann", k, u, ok, err)
			}
		}
		if _, ok, err := tx.KnownUser("nobody@example.com"); err != nil || ok {
			return fmt.Errorf("KnownUser of a stranger = %v, %v", ok, err)
		}
		if dl, err := tx.DeletedUsers([]string{"gone@EXAMPLE.com", "u-ann"}); err != nil || len(dl) != 1 || dl["gone@EXAMPLE.com"] != mark {
			return fmt.Errorf("DeletedUsers = %+v, %v; want the mark, found case-insensitively", dl, err)
		}
		// Forgetting by e-mail leaves the id's entry; removing a mark
		// that is not there is no error.
		if err := tx.ForgetKnownUser("ANN@example.com"); err != nil {
			return err
		}
		return tx.DeleteDeletedUsers("Gone@Example.com", "u-nobody")
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := s.KnownUsers(ctx, "SHIP", []string{"ann@example.com", "u-ann"}); len(k) != 1 || k["u-ann"] != ann {
		t.Errorf("KnownUsers after forgetting the e-mail = %v, want ann by id only", k)
	}
	if dl, _ := s.DeletedUsers(ctx, "SHIP", []string{"gone@example.com"}); len(dl) != 0 {
		t.Errorf("DeletedUsers after DeleteDeletedUsers = %v", dl)
	}
	if dl, _ := s.DeletedUsers(ctx, "OTHER", []string{"gone@example.com"}); len(dl) != 0 {
		t.Errorf("another tenant sees the mark: %v", dl)
	}
}
