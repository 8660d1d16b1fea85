package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// reconcile asks for a pass of tenant and waits until one more has finished.
func (g *gateway) reconcile(tenant string, within time.Duration) api.MirrorStatus {
	g.t.Helper()
	var st api.MirrorStatus
	g.do("GET", "/v1/tenants/"+tenant+"/mirror", "operator", nil).decode(g.t, &st)
	passes := st.Passes
	if r := g.do("POST", "/v1/tenants/"+tenant+"/mirror", "operator", nil); r.status != http.StatusAccepted {
		g.t.Fatalf("request a pass: %d %s", r.status, r.body)
	}
	if !testkit.Poll(within, 10*time.Millisecond, func() bool {
		g.do("GET", "/v1/tenants/"+tenant+"/mirror", "operator", nil).decode(g.t, &st)
		return st.Passes > passes && !st.Running
	}) {
		g.t.Fatalf("no reconcile pass finished within %v: %+v", within, st)
	}
	return st
}

// auditActions returns the audit entries of tenant with action.
func (g *gateway) auditActions(tenant, action string) []api.AuditEntry {
	g.t.Helper()
	r := g.do("GET", "/v1/audit?tenant="+tenant+"&action="+action, "operator", nil)
	if r.status != http.StatusOK {
		g.t.Fatalf("audit: %d %s", r.status, r.body)
	}
	var page api.AuditPage
	r.decode(g.t, &page)
	return page.Entries
}

// TestMirrorDrift changes groups and members directly at TechPass (as the
// portal would); one reconcile pass brings the mirror in step and records
// each change in the audit log.
func TestMirrorDrift(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	users := techpasssim.DemoUsers(10)
	g.createActive("SHIP/MOH", "billing")
	g.createActive("SHIP/MOH", "doomed")
	r := g.do("POST", membersPath("SHIP", "MOH", "billing"), "SHIP/MOH", map[string]any{"users": []string{users[0].Email, users[1].Email}})
	var op api.Operation
	r.decode(t, &op)
	if done := g.await("SHIP/MOH", op.Id, 10*time.Second); done.State != api.Succeeded {
		t.Fatalf("add: %s %+v", done.State, done.Error)
	}

	// Outside the gateway: a member added and one removed, a group deleted,
	// a group of the project created with a member, and groups that are
	// not the gateway's (no project, unknown project) created.
	sim := g.up.sim
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sim.AddMemberDirect("SHIP", "SHIP:MOH:billing", users[2].ID))
	must(sim.RemoveMemberDirect("SHIP", "SHIP:MOH:billing", users[0].ID))
	must(sim.DeleteGroupDirect("SHIP", "SHIP:MOH:doomed"))
	_, err := sim.CreateGroupDirect("SHIP", "SHIP:MOH:portal", "made in the portal", false)
	must(err)
	must(sim.AddMemberDirect("SHIP", "SHIP:MOH:portal", users[3].ID))
	// Deleted and made again in the portal: same name, new id.
	g.createActive("SHIP/MOH", "reborn")
	must(sim.DeleteGroupDirect("SHIP", "SHIP:MOH:reborn"))
	_, err = sim.CreateGroupDirect("SHIP", "SHIP:MOH:reborn", "again", false)
	must(err)
	_, err = sim.CreateGroupDirect("SHIP", "SHIP:legacy", "", false)
	must(err)
	_, err = sim.CreateGroupDirect("SHIP", "SHIP:NOPROJECT:x", "", false)
	must(err)

	st := g.reconcile("SHIP", 20*time.Second)
	if st.Last == nil || st.Last.Drift != 6 {
		t.Fatalf("pass %+v, want 6 differences (member in, member out, group gone, group new, its member, group replaced)", st.Last)
	}
	got, _ := g.members("SHIP/MOH", "billing", 0, "")
	if want := simEmails(sim.Members("SHIP", "SHIP:MOH:billing")); !slices.Equal(emails(got), want) || len(want) != 2 {
		t.Fatalf("mirror members %v, TechPass %v", emails(got), want)
	}
	var names []string
	for _, grp := range g.list("SHIP/MOH") {
		names = append(names, grp.Name)
	}
	if !slices.Equal(names, []string{"billing", "portal", "reborn"}) {
		t.Fatalf("mirror groups %v, want billing, portal and reborn", names)
	}
	// The replaced group takes its new id: member changes reach it.
	r = g.do("POST", membersPath("SHIP", "MOH", "reborn"), "SHIP/MOH", map[string]any{"users": []string{users[4].Email}})
	r.decode(t, &op)
	if done := g.await("SHIP/MOH", op.Id, 10*time.Second); done.State != api.Succeeded {
		t.Fatalf("add to the replaced group: %s %+v", done.State, done.Error)
	}
	if ms := sim.Members("SHIP", "SHIP:MOH:reborn"); len(ms) != 1 {
		t.Fatalf("replaced group's members in TechPass: %v", ms)
	}
	portal, _ := g.members("SHIP/MOH", "portal", 0, "")
	if len(portal) != 1 || !strings.EqualFold(portal[0].Email, users[3].Email) {
		t.Fatalf("portal members %v", portal)
	}
	for action, want := range map[string]int{
		"drift.member.appeared": 2, "drift.member.vanished": 1, "drift.group.appeared": 1, "drift.group.vanished": 1,
		"drift.group.replaced": 1,
	} {
		entries := g.auditActions("SHIP", action)
		if len(entries) != want {
			t.Errorf("audit %s: %d entries, want %d", action, len(entries), want)
		}
		for _, e := range entries {
			if e.Actor != "system" || e.Target == nil || !strings.HasPrefix(*e.Target, "SHIP:MOH:") {
				t.Errorf("audit %s entry %+v", action, e)
			}
		}
	}
	fams := g.scrape()
	if v, _ := value(fams, "groupgate_mirror_drift_total", map[string]string{"tenant": "SHIP", "kind": "member.appeared"}); v != 2 {
		t.Errorf("groupgate_mirror_drift_total{kind=member.appeared} = %v, want 2", v)
	}
	if v, _ := value(fams, "groupgate_reconcile_passes_total", map[string]string{"tenant": "SHIP"}); v != 1 {
		t.Errorf("groupgate_reconcile_passes_total = %v, want 1", v)
	}
	if v, ok := value(fams, "groupgate_reconcile_last_pass_timestamp_seconds", map[string]string{"tenant": "SHIP"}); !ok || v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("groupgate_reconcile_last_pass_timestamp_seconds = %v, %v; want a recent time", v, ok)
	}
	// A second pass finds nothing new.
	if st := g.reconcile("SHIP", 20*time.Second); st.Last.Drift != 0 {
		t.Fatalf("second pass found %d differences, want 0", st.Last.Drift)
	}
}

// TestReconcileYieldsToClients: with the reconciler busy over 40 groups, a
// client create issued meanwhile starts upstream within two intervals.
func TestReconcileYieldsToClients(t *testing.T) {
	const interval = 100 * time.Millisecond
	g := startGateway(t, gatewayOptions{interval: interval, groupLimit: 100})
	users := techpasssim.DemoUsers(3)
	for i := range 40 {
		name := fmt.Sprintf("SHIP:MOH:g%02d", i)
		if _, err := g.up.sim.CreateGroupDirect("SHIP", name, "", false); err != nil {
			t.Fatal(err)
		}
		if err := g.up.sim.AddMemberDirect("SHIP", name, users[i%3].ID); err != nil {
			t.Fatal(err)
		}
	}
	if r := g.do("POST", "/v1/tenants/SHIP/mirror", "operator", nil); r.status != http.StatusAccepted {
		t.Fatalf("request a pass: %d %s", r.status, r.body)
	}
	// Let the pass get well under way.
	var st api.MirrorStatus
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		g.do("GET", "/v1/tenants/SHIP/mirror", "operator", nil).decode(t, &st)
		if st.Running && st.Current != nil && st.Current.Requests >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pass did not get under way: %+v", st)
		}
	}
	// The effective interval includes the pace guard the harness sets.
	slot := interval + 20*time.Millisecond
	for i := range 3 {
		name := fmt.Sprintf("client%d", i)
		sent := time.Now()
		g.create("SHIP/MOE", name)
		var arrived time.Time
		for deadline := sent.Add(5 * time.Second); arrived.IsZero(); time.Sleep(time.Millisecond) {
			for _, grp := range g.up.sim.Groups("SHIP") {
				if grp.Name == "SHIP:MOE:"+name {
					arrived = time.Now()
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("create %s never reached TechPass", name)
			}
		}
		wait := arrived.Sub(sent)
		t.Logf("create %d reached TechPass %v after it was sent (limit %v)", i, wait, 2*slot)
		if wait > 2*slot {
			t.Errorf("create %d reached TechPass %v after it was sent, want within two intervals (%v)", i, wait, 2*slot)
		}
		time.Sleep(3 * slot) // the reconciler takes the upstream again meanwhile
	}
	g.do("GET", "/v1/tenants/SHIP/mirror", "operator", nil).decode(t, &st)
	if !st.Running {
		t.Fatal("the pass ended before the creates were measured: the test proved nothing")
	}
	for deadline := time.Now().Add(30 * time.Second); st.Running; time.Sleep(20 * time.Millisecond) {
		g.do("GET", "/v1/tenants/SHIP/mirror", "operator", nil).decode(t, &st)
		if time.Now().After(deadline) {
			t.Fatal("the pass did not finish")
		}
	}
	if st.Last == nil || st.Last.Groups < 40 {
		t.Fatalf("pass %+v, want 40 groups read", st.Last)
	}
	if s := g.up.stats("SHIP"); s.Violations != 0 || s.MaxInFlight > 1 {
		t.Fatalf("upstream saw %d violations, %d in flight", s.Violations, s.MaxInFlight)
	}
}

// Members of a dynamic group are set by a rule in TechPass: a change fails
// and says so.
func TestMembersOfDynamicGroup(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	if _, err := g.up.sim.CreateGroupDirect("SHIP", "SHIP:MOH:everyone", "all staff, by rule", true); err != nil {
		t.Fatal(err)
	}
	g.reconcile("SHIP", 10*time.Second)
	users := techpasssim.DemoUsers(1)
	r := g.do("POST", membersPath("SHIP", "MOH", "everyone"), "SHIP/MOH", map[string]any{"users": []string{users[0].Email}})
	op := g.accepted("add to a dynamic group", r)
	done := g.await("SHIP/MOH", op.Id, 10*time.Second)
	if done.State != api.Failed || done.Error == nil || done.Error.Status != 409 || !strings.Contains(*done.Error.Detail, "dynamic") {
		t.Fatalf("add to a dynamic group: %s %+v, want failed 409 saying the group is dynamic", done.State, done.Error)
	}
	if ms := g.up.sim.Members("SHIP", "SHIP:MOH:everyone"); len(ms) != 0 {
		t.Fatalf("members %v, want none", ms)
	}
}
