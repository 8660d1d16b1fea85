package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
)

// TestTenantChangeRebuildsRuntime: a tenant's interval and group limit
// changed through the admin API apply at once, through the tenant's rebuilt
// runtime: its queue reports the new interval, a create over the new limit
// is refused, and a create within it runs on the new runtime. The other
// tenant is untouched.
func TestTenantChangeRebuildsRuntime(t *testing.T) {
	g := startGateway(t, gatewayOptions{groupLimit: 10})
	for _, who := range []string{"SHIP/MOH", "SHIP/MOE"} {
		if op := g.await(who, g.create(who, "before").Id, 10*time.Second); op.State != api.Succeeded {
			t.Fatalf("create in %s: %+v", who, op)
		}
	}
	interval := func(who, path string) float64 {
		t.Helper()
		var q api.QueueStatus
		r := g.do("GET", path, who, nil)
		if r.status != http.StatusOK {
			t.Fatalf("queue status: %d %s", r.status, r.body)
		}
		r.decode(t, &q)
		return q.IntervalSeconds
	}
	if got := interval("SHIP/MOH", "/v1/tenants/SHIP/projects/MOH/queue"); got != 0.02 {
		t.Fatalf("interval %v before the change, want 0.02", got)
	}
	if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"groupLimit": 3, "intervalSeconds": 0.05}); r.status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if got := interval("SHIP/MOH", "/v1/tenants/SHIP/projects/MOH/queue"); got != 0.05 {
		t.Errorf("interval %v after the change, want 0.05", got)
	}
	if got := interval("OTHER/MOH", "/v1/tenants/OTHER/projects/MOH/queue"); got != 0.02 {
		t.Errorf("OTHER's interval %v, want 0.02 (unchanged)", got)
	}
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "third").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("create within the new limit: %+v", op)
	}
	r := g.do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "fourth"})
	if p := r.problem(t); r.status != http.StatusConflict || p.Type == nil || *p.Type != "urn:groupgate:problem:group-limit" {
		t.Errorf("create over the new limit: %d %s, want 409 group-limit", r.status, r.body)
	}
}
