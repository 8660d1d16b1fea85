package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
)

// TestTwentyCreatesAtShortInterval: one project creates 20 groups at a
// 100 ms interval; all succeed, the upstream sees no violation, one request
// in flight at most and gaps of at least the interval, and the list shows all
// 20 with their full names.
func TestTwentyCreatesAtShortInterval(t *testing.T) {
	const interval = 100 * time.Millisecond
	g := startGateway(t, gatewayOptions{interval: interval})
	var ops []api.Operation
	for i := range 20 {
		ops = append(ops, g.create("SHIP/MOH", fmt.Sprintf("team-%02d", i)))
	}
	for _, op := range ops {
		if got := g.await("SHIP/MOH", op.Id, 30*time.Second); got.State != api.Succeeded {
			t.Fatalf("operation %s: %s %+v", op.Id, got.State, got.Error)
		}
	}
	st := g.up.stats("SHIP")
	if st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("upstream saw %d violations, max in flight %d; want 0 and 1", st.Violations, st.MaxInFlight)
	}
	if gap, ok := st.MinGap(); !ok || gap < interval {
		t.Errorf("minimum gap %v, want >= %v", gap, interval)
	}
	if st.Requests != 20 {
		t.Errorf("upstream requests %d, want exactly 20 (one per create)", st.Requests)
	}
	var names []string
	for _, gr := range g.list("SHIP/MOH") {
		if gr.State != api.GroupStateActive || gr.UpstreamId == nil {
			t.Errorf("group %s: state %s upstream id %v", gr.FullName, gr.State, gr.UpstreamId)
		}
		names = append(names, gr.FullName)
	}
	for i := range 20 {
		if want := fmt.Sprintf("SHIP:MOH:team-%02d", i); !slices.Contains(names, want) {
			t.Errorf("list lacks %s: %v", want, names)
		}
	}
	if len(names) != 20 {
		t.Errorf("list has %d groups, want 20", len(names))
	}
	upstreamNames := map[string]bool{}
	for _, ug := range g.up.sim.Groups("SHIP") {
		upstreamNames[ug.Name] = true
	}
	for _, n := range names {
		if !upstreamNames[n] {
			t.Errorf("simulator lacks %s", n)
		}
	}
}

// TestRealIntervalPacing uses the real 1-second pacing: 5 creates need at
// least 4 s between the first and last upstream start, with no violation.
func TestRealIntervalPacing(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the real 1 s interval")
	}
	g := startGateway(t, gatewayOptions{interval: time.Second})
	start := time.Now()
	var ops []api.Operation
	for i := range 5 {
		ops = append(ops, g.create("SHIP/MOH", fmt.Sprintf("paced-%d", i)))
	}
	var last api.Operation
	for _, op := range ops {
		last = g.await("SHIP/MOH", op.Id, 20*time.Second)
		if last.State != api.Succeeded {
			t.Fatalf("operation %s: %s", op.Id, last.State)
		}
	}
	if took := time.Since(start); took < 4*time.Second {
		t.Errorf("5 creates took %v, want >= 4s", took)
	}
	st := g.up.stats("SHIP")
	if st.Requests != 5 {
		t.Errorf("upstream requests %d, want 5", st.Requests)
	}
	if st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("violations %d, max in flight %d", st.Violations, st.MaxInFlight)
	}
	if gap, _ := st.MinGap(); gap < time.Second {
		t.Errorf("minimum gap %v, want >= 1s", gap)
	}
}

// TestDeleteGroup creates and deletes a group end to end.
func TestDeleteGroup(t *testing.T) {
	// At a 500 ms interval the delete is still pending when it is sent again.
	g := startGateway(t, gatewayOptions{interval: 500 * time.Millisecond})
	op := g.await("SHIP/MOH", g.create("SHIP/MOH", "Billing").Id, 10*time.Second)
	if op.State != api.Succeeded || op.Result == nil || op.Result.Group == nil || op.Result.Group.FullName != "SHIP:MOH:Billing" {
		t.Fatalf("create: %+v", op)
	}
	r := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil)
	if r.status != http.StatusOK {
		t.Fatalf("get (case-insensitive): %d %s", r.status, r.body)
	}
	r = g.do("DELETE", groupsPath("SHIP", "MOH")+"/BILLING", "SHIP/MOH", nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	var del api.Operation
	r.decode(t, &del)
	if r2 := g.do("DELETE", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil); r2.status != http.StatusConflict {
		t.Errorf("second delete while pending: %d, want 409", r2.status)
	}
	if got := g.await("SHIP/MOH", del.Id, 10*time.Second); got.State != api.Succeeded || got.Kind != api.GroupDelete {
		t.Fatalf("delete operation: %+v", got)
	}
	if gs := g.list("SHIP/MOH"); len(gs) != 0 {
		t.Errorf("list after delete: %+v", gs)
	}
	if ug := g.up.sim.Groups("SHIP"); len(ug) != 0 {
		t.Errorf("simulator still has %+v", ug)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Errorf("get after delete: %d", r.status)
	} else if p := r.problem(t); p.Status != 404 {
		t.Errorf("problem status %d", p.Status)
	}
}

// TestDuplicateAndLimit: names are unique case-insensitively within a
// project (pending creates count), other projects may reuse them, and the
// namespace limit is enforced before anything is queued.
func TestDuplicateAndLimit(t *testing.T) {
	g := startGateway(t, gatewayOptions{groupLimit: 3})
	g.create("SHIP/MOH", "billing")
	r := g.do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "BILLING"})
	if r.status != http.StatusConflict {
		t.Fatalf("duplicate: %d %s", r.status, r.body)
	}
	g.create("SHIP/MOE", "billing") // same short name, other project
	g.create("SHIP/MOE", "payroll")
	r = g.do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "fourth"})
	if r.status != http.StatusConflict {
		t.Fatalf("over the limit: %d %s", r.status, r.body)
	}
	if p := r.problem(t); *p.Type != "urn:groupgate:problem:group-limit" {
		t.Errorf("problem type %v", *p.Type)
	}
	if gs := g.list("SHIP/MOH"); len(gs) != 1 {
		t.Errorf("MOH has %d groups, want 1", len(gs))
	}
	// Another tenant has its own limit.
	g.create("OTHER/MOH", "billing")
}
