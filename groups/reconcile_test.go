package groups_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/internal/memstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestReconcilerPassAppliesDrift runs one reconcile pass against the real
// in-process simulator, over the in-memory store: a group made outside the
// gateway appears with its member, a mirrored group gone from TechPass
// vanishes, a description changed in TechPass is taken, every request is
// paced, and each difference is reported once.
func TestReconcilerPassAppliesDrift(t *testing.T) {
	const interval = 20 * time.Millisecond
	users := techpasssim.DemoUsers(3)
	sim, client := newSimClient(t, techpasssim.Config{Interval: interval, Seed: 1, Users: users})

	ctx := t.Context()
	store := memstore.New()
	ledger := groups.NewLedger(store)
	name := func(g string) groups.Name { return groups.Name{Tenant: "SHIP", Project: "MOH", Group: g} }
	// kept: mirrored, its description since changed in TechPass.
	kept, err := sim.CreateGroupDirect("SHIP", "SHIP:MOH:kept", "changed in TechPass", false)
	if err != nil {
		t.Fatal(err)
	}
	mirror(t, ledger, name("kept"), kept.ID, "as the gateway set it")
	// vanished: mirrored, gone from TechPass.
	mirror(t, ledger, name("vanished"), "00000000-0000-4000-8000-00000000dead", "")
	// appeared: made in TechPass only, with a member.
	appeared, err := sim.CreateGroupDirect("SHIP", "SHIP:MOH:appeared", "made outside", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.AddMemberDirect("SHIP", "SHIP:MOH:appeared", users[0].ID); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var drift []string
	rec := groups.NewReconciler(groups.ReconcilerConfig{
		Tenant: "SHIP", Upstream: client, Store: store,
		OnDrift: func(_ context.Context, d groups.Drift) {
			mu.Lock()
			defer mu.Unlock()
			drift = append(drift, d.Kind+" "+d.Group.Group)
		},
	})
	rec.Request()
	for i := 0; rec.Status().Passes == 0; i++ {
		if i == 50 {
			t.Fatalf("no pass finished in 50 steps: %+v", rec.Status())
		}
		if due, _ := rec.Due(time.Now()); !due {
			time.Sleep(interval)
			continue
		}
		rec.Step(ctx)
	}

	g, err := store.Group(ctx, name("appeared"))
	if err != nil || g.State != groups.Active || g.UpstreamID != appeared.ID || g.MemberCount != 1 || g.MembersSyncedAt.IsZero() {
		t.Fatalf("appeared group = %+v, %v; want active with its id and its one member read", g, err)
	}
	members, _, err := store.ListMembers(ctx, name("appeared"), groups.PageQuery{})
	if err != nil || len(members) != 1 || members[0].ID != users[0].ID {
		t.Fatalf("members of the appeared group = %+v, %v; want %s", members, err, users[0].ID)
	}
	if _, err := store.Group(ctx, name("vanished")); err == nil {
		t.Fatal("the group gone from TechPass is still mirrored")
	}
	if g, err := store.Group(ctx, name("kept")); err != nil || g.Description != "changed in TechPass" || !g.DescriptionConfirmed {
		t.Fatalf("kept group = %+v, %v; want TechPass's description, confirmed", g, err)
	}
	if at, _ := store.GroupsSyncedAt(ctx, "SHIP"); at.IsZero() {
		t.Error("GroupsSyncedAt not set by the pass")
	}
	mu.Lock()
	slices.Sort(drift)
	got := drift
	mu.Unlock()
	want := []string{"group.appeared appeared", "group.changed kept", "group.vanished vanished", "member.appeared appeared"}
	if !slices.Equal(got, want) {
		t.Errorf("drift reported = %q, want %q", got, want)
	}
	st := sim.Stats()
	if st.Totals.Violations != 0 || st.Namespaces["SHIP"].MaxInFlight > 1 || st.Namespaces["SHIP"].Requests == 0 {
		t.Errorf("the simulator saw %d requests, %d pacing violations, %d at most in flight; want some, 0, 1",
			st.Namespaces["SHIP"].Requests, st.Totals.Violations, st.Namespaces["SHIP"].MaxInFlight)
	}
}

// mirror records an active group as the gateway would after creating it.
func mirror(t *testing.T, l *groups.Ledger, n groups.Name, upstreamID, description string) {
	t.Helper()
	op := queue.Operation{ID: queue.NewID(), Tenant: n.Tenant, Project: n.Project, Kind: groups.KindCreate, Target: n.String(), CreatedAt: t0, UpdatedAt: t0}
	g := groups.Group{Name: n, Description: description, State: groups.Creating, PendingOperation: op.ID, CreatedAt: t0, UpdatedAt: t0}
	op, err := l.CreatePending(t.Context(), g, op, groups.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	op.State = queue.Succeeded
	if err := l.Complete(t.Context(), op, []groups.Effect{groups.Created{Name: n, UpstreamID: upstreamID, At: t0, MembersKnown: true, Description: description}}); err != nil {
		t.Fatal(err)
	}
}
