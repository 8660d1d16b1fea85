package server_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestRouteOverrideEndToEnd: an operator corrects Get Group's path and its
// paging parameter names in the configuration; the simulator serves the
// same corrected table. A reconcile pass reads members and owners through
// the corrected route, page by page: the requests reach the overridden path
// (the simulator counts them there, and none fall on unknown routes), and
// the owners show on the group's GET.
func TestRouteOverrideEndToEnd(t *testing.T) {
	override := map[techpass.RouteName]techpass.RouteOverride{
		techpass.RouteGetGroup: {Path: "/iam/v2/namespace/{namespace}/group/{identifier}",
			Params: map[string]string{techpass.ParamPage: "pageNumber", techpass.ParamPageSize: "size"}},
	}
	routes, err := techpass.ResolveRoutes(override)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}},
		sim:      func(c *techpasssim.Config) { c.Routes = routes },
		mutate: func(c *config.Config) {
			tp := &c.Tenants[0].TechPass
			tp.MemberPageSize = 2
			tp.Routes = map[string]config.RouteConfig{"getGroup": {
				Path: "/iam/v2/namespace/{namespace}/group/{identifier}", Params: map[string]string{"page": "pageNumber", "pageSize": "size"},
			}}
		},
	})
	if !strings.Contains(g.logs.String(), "GET /iam/v2/namespace/{namespace}/group/{groupId}?pageNumber&size") {
		t.Error("the override is not logged at start")
	}
	users := techpasssim.DemoUsers(5)
	g.createActive("SHIP/MOH", "billing")
	for _, u := range users {
		if err := g.up.sim.AddMemberDirect("SHIP", "SHIP:MOH:billing", u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.up.sim.SetOwners("SHIP", "SHIP:MOH:billing", users[4].ID, users[0].ID); err != nil {
		t.Fatal(err)
	}
	g.reconcile("SHIP", 20*time.Second)

	st := g.up.sim.Stats()
	// 5 members 2 a page: 2, 2, 1.
	if n := st.Namespaces["SHIP"].ByRoute[techpass.RouteGetGroup]; n != 3 {
		t.Errorf("getGroup requests at the overridden path = %d, want 3", n)
	}
	if st.Totals.UnknownRoutes != 0 || st.Namespaces["SHIP"].ByRoute[techpass.RouteListMembers] != 0 {
		t.Errorf("requests outside the corrected table: %d unknown, %d listMembers", st.Totals.UnknownRoutes, st.Namespaces["SHIP"].ByRoute[techpass.RouteListMembers])
	}
	var members api.MemberList
	g.do("GET", membersPath("SHIP", "MOH", "billing"), "SHIP/MOH", nil).decode(t, &members)
	if len(members.Members) != 5 {
		t.Errorf("members after the pass: %+v", members.Members)
	}
	var grp api.Group
	r := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil)
	r.decode(t, &grp)
	if grp.Owners == nil || len(*grp.Owners) != 2 || (*grp.Owners)[0].Email != users[0].Email || (*grp.Owners)[1].Email != users[4].Email {
		t.Errorf("owners on the group's GET: %s", r.body)
	}
	// Logged once, at start: not again when the tenant's runtime is rebuilt
	// (an admin change rebuilds it; the rebuilt client still uses the
	// corrected path).
	if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"groupLimit": 60}); r.status != 200 {
		t.Fatalf("admin change: %d %s", r.status, r.body)
	}
	g.reconcile("SHIP", 20*time.Second)
	if n := g.up.sim.Stats().Namespaces["SHIP"].ByRoute[techpass.RouteGetGroup]; n != 6 {
		t.Errorf("getGroup requests at the overridden path after the rebuild = %d, want 6", n)
	}
	if n := strings.Count(g.logs.String(), "TechPass route corrected by configuration"); n != 1 {
		t.Errorf("the override is logged %d times, want once", n)
	}
}

// TestTechBizGroupsEndToEnd: a TechBiz-managed group is never mirrored,
// adopted or counted as drift; creating a group of its name fails clearly;
// and when a mirrored group becomes TechBiz-managed, TechPass's refusal (in
// its {"error":{...}} shape) reaches the failed operation with its trace id
// and nothing else of the body.
func TestTechBizGroupsEndToEnd(t *testing.T) {
	g := startGateway(t, gatewayOptions{projects: map[string][]string{"SHIP": {"MOH"}}})
	if _, err := g.up.sim.CreateGroupDirect("SHIP", "SHIP:MOH:techbiz", "made on TechBiz", false); err != nil {
		t.Fatal(err)
	}
	if err := g.up.sim.SetTechBiz("SHIP", "SHIP:MOH:techbiz", true); err != nil {
		t.Fatal(err)
	}
	g.reconcile("SHIP", 20*time.Second)
	if names := groupNames(g.list("SHIP/MOH")); slices.Contains(names, "techbiz") {
		t.Errorf("a TechBiz group is mirrored: %v", names)
	}
	if d := g.auditActions("SHIP", "drift.group.appeared"); len(d) != 0 {
		t.Errorf("a TechBiz group counted as drift: %+v", d)
	}

	op := g.await("SHIP/MOH", g.create("SHIP/MOH", "techbiz").Id, 10*time.Second)
	if op.State != api.Failed || op.Error == nil || op.Error.Status != http.StatusConflict || !strings.Contains(errorOf(op), "managed by TechBiz") {
		t.Fatalf("create of a TechBiz group's name: %+v (%s)", op, errorOf(op))
	}
	if names := groupNames(g.list("SHIP/MOH")); slices.Contains(names, "techbiz") {
		t.Errorf("a TechBiz group adopted: %v", names)
	}
	if n := len(g.up.sim.Groups("SHIP")); n != 1 {
		t.Errorf("TechPass holds %d groups, want the TechBiz one only", n)
	}

	// A group of ours that TechBiz takes over: TechPass refuses to change it.
	g.createActive("SHIP/MOH", "billing")
	if err := g.up.sim.SetTechBiz("SHIP", "SHIP:MOH:billing", true); err != nil {
		t.Fatal(err)
	}
	r := g.do("PATCH", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", map[string]any{"description": "new"})
	var upd api.Operation
	r.decode(t, &upd)
	done := g.await("SHIP/MOH", upd.Id, 10*time.Second)
	reason := errorOf(done)
	if done.State != api.Failed || !strings.Contains(reason, "managed by TechBiz") || !strings.Contains(reason, "traceId sim-") {
		t.Fatalf("update of a TechBiz group: %s (%s)", done.State, reason)
	}
	if strings.Contains(reason, "{") || strings.Contains(reason, "14030") {
		t.Errorf("the reason passes on the error body: %q", reason)
	}
	traceID := reason[strings.Index(reason, "traceId ")+len("traceId "):]
	traceID = strings.TrimRight(traceID, ")")
	if !strings.Contains(g.logs.String(), traceID) {
		t.Errorf("trace id %q not in the logs", traceID)
	}

	// The next pass no longer finds it in the default list: it is not the
	// gateway's any more, and leaves the mirror without counting as drift.
	before := g.up.stats("SHIP").ByRoute[techpass.RouteGetGroup]
	st := g.reconcile("SHIP", 20*time.Second)
	if names := groupNames(g.list("SHIP/MOH")); slices.Contains(names, "billing") {
		t.Errorf("a group now managed by TechBiz is still mirrored: %v", names)
	}
	if d := g.auditActions("SHIP", "drift.group.vanished"); len(d) != 0 {
		t.Errorf("a group taken over by TechBiz counted as drift: %+v", d)
	}
	if st.Last == nil || st.Last.Drift != 0 {
		t.Errorf("pass: %+v, want no drift", st.Last)
	}
	if after := g.up.stats("SHIP").ByRoute[techpass.RouteGetGroup]; after != before {
		t.Errorf("members of TechBiz groups read: %d Get Group requests", after-before)
	}
	// A group really gone is still drift.
	g.createActive("SHIP/MOH", "doomed")
	if err := g.up.sim.DeleteGroupDirect("SHIP", "SHIP:MOH:doomed"); err != nil {
		t.Fatal(err)
	}
	g.reconcile("SHIP", 20*time.Second)
	if d := g.auditActions("SHIP", "drift.group.vanished"); len(d) != 1 {
		t.Errorf("a vanished group: %d drift entries, want 1", len(d))
	}
}

func groupNames(gs []api.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// TestCertificateClockAndRollover: assertions carry kid, so a token server
// that chooses keys by kid accepts either of two registered certificates
// during a rollover; and a token endpoint whose clock lags past the
// assertion's back-dating answers "not yet valid", which /readyz and the
// logs report as a clock problem.
func TestCertificateClockAndRollover(t *testing.T) {
	for _, lag := range []time.Duration{30 * time.Second, 5 * time.Minute} {
		dir := t.TempDir()
		oldCert, newCert := newPEMCert(t), newPEMCert(t)
		certFile, keyFile := filepath.Join(dir, "ship.crt"), filepath.Join(dir, "ship.key")
		writeAtomically(t, certFile, string(newCert.CertPEM))
		writeAtomically(t, keyFile, string(newCert.KeyPEM))
		g := startGateway(t, gatewayOptions{
			projects: map[string][]string{"SHIP": {"MOH"}},
			sim: func(c *techpasssim.Config) {
				c.KeyByKID = true
				c.Now = func() time.Time { return time.Now().Add(-lag) }
			},
			mutate: func(c *config.Config) {
				tp := &c.Tenants[0].TechPass
				tp.ClientSecretFile, tp.ClientCertificateFile, tp.ClientKeyFile = "", certFile, keyFile
			},
		})
		if err := g.up.sim.SetCertificate("SHIP", oldCert.Cert); err != nil {
			t.Fatal(err)
		}
		if err := g.up.sim.AddCertificate("SHIP", newCert.Cert); err != nil {
			t.Fatal(err)
		}
		if err := g.up.sim.SetClientSecret("SHIP", ""); err != nil {
			t.Fatal(err)
		}
		op := g.await("SHIP/MOH", g.create("SHIP/MOH", "rollover").Id, 10*time.Second)
		if lag < techpass.AssertionSkew {
			// Within the back-dating: the new certificate, chosen by kid.
			if op.State != api.Succeeded {
				t.Fatalf("lag %v: create with the second certificate: %+v (%s)", lag, op, errorOf(op))
			}
			continue
		}
		if op.State == api.Succeeded {
			t.Fatalf("lag %v: a token was issued for an assertion not yet valid", lag)
		}
		rd := readiness(t, g)
		chk := rd.Checks["upstream:SHIP"]
		if rd.Status == api.Ready || chk.Detail == nil || !strings.Contains(*chk.Detail, "clock") || !strings.Contains(*chk.Detail, "AADSTS700024") {
			t.Errorf("lag %v: /readyz does not report a clock problem: %+v %v", lag, rd.Status, chk.Detail)
		}
		if !strings.Contains(g.logs.String(), "this host's clock is off") {
			t.Errorf("lag %v: no clock problem in the logs", lag)
		}
	}
}

// TestMembersSourceEndToEnd: by default a pass reads each group's members
// and owners through Get Group, the full list in one request; configured
// with members_source: listMembers it uses the assumed members route
// instead, and owners stay unknown (absent on the group's GET).
func TestMembersSourceEndToEnd(t *testing.T) {
	for _, source := range []string{"", techpass.MembersFromListRoute} {
		g := startGateway(t, gatewayOptions{
			projects: map[string][]string{"SHIP": {"MOH"}},
			mutate:   func(c *config.Config) { c.Tenants[0].TechPass.MembersSource = source },
		})
		users := techpasssim.DemoUsers(45)
		g.createActive("SHIP/MOH", "billing")
		for _, u := range users {
			if err := g.up.sim.AddMemberDirect("SHIP", "SHIP:MOH:billing", u.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.up.sim.SetOwners("SHIP", "SHIP:MOH:billing", users[7].ID); err != nil {
			t.Fatal(err)
		}
		g.reconcile("SHIP", 20*time.Second)
		st := g.up.stats("SHIP")
		var members api.MemberList
		g.do("GET", membersPath("SHIP", "MOH", "billing")+"?limit=1000", "SHIP/MOH", nil).decode(t, &members)
		if len(members.Members) != 45 {
			t.Errorf("source %q: %d members mirrored, want 45", source, len(members.Members))
		}
		var grp api.Group
		r := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil)
		r.decode(t, &grp)
		switch source {
		case "":
			// The simulator pages its members route 20 at a time; Get Group
			// gives the whole list at once.
			if st.ByRoute[techpass.RouteGetGroup] != 1 || st.ByRoute[techpass.RouteListMembers] != 0 {
				t.Errorf("default: getGroup %d, listMembers %d; want 1, 0", st.ByRoute[techpass.RouteGetGroup], st.ByRoute[techpass.RouteListMembers])
			}
			if grp.Owners == nil || len(*grp.Owners) != 1 || (*grp.Owners)[0].Email != users[7].Email {
				t.Errorf("default: owners %s", r.body)
			}
		default:
			if st.ByRoute[techpass.RouteGetGroup] != 0 || st.ByRoute[techpass.RouteListMembers] != 3 {
				t.Errorf("listMembers: getGroup %d, listMembers %d; want 0, 3", st.ByRoute[techpass.RouteGetGroup], st.ByRoute[techpass.RouteListMembers])
			}
			if grp.Owners != nil {
				t.Errorf("listMembers: owners shown though not read: %s", r.body)
			}
		}
	}
}
