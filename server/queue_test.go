package server_test

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
)

// doWith sends a JSON request with extra headers.
func (g *gateway) doWith(method, path, who string, body any, headers map[string]string) response {
	g.t.Helper()
	var raw []byte
	if body != nil {
		raw = mustJSON(g.t, body)
	}
	req, err := http.NewRequest(method, g.base+path, bytesReader(raw))
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+g.keys[who])
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return g.send(req)
}

// TestFairness: at a 100 ms interval project A floods the queue with 200
// creates, then project B queues 5; all of B's finish within 15 intervals
// of B's submission, because projects take turns.
func TestFairness(t *testing.T) {
	const interval = 100 * time.Millisecond
	g := startGateway(t, gatewayOptions{interval: interval, groupLimit: 300,
		projects: map[string][]string{"SHIP": {"A", "B"}}})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 200; i += 4 {
				g.create("SHIP/A", fmt.Sprintf("bulk-%03d", i))
			}
		})
	}
	wg.Wait()
	submitted := time.Now()
	var bOps []api.Operation
	for i := range 5 {
		bOps = append(bOps, g.create("SHIP/B", fmt.Sprintf("small-%d", i)))
	}
	var last time.Time
	for _, op := range bOps {
		done := g.await("SHIP/B", op.Id, 10*time.Second)
		if done.State != api.Succeeded {
			t.Fatalf("B's operation %s: %s", op.Id, done.State)
		}
		if done.FinishedAt.After(last) {
			last = *done.FinishedAt
		}
	}
	if took := last.Sub(submitted); took > 15*interval {
		t.Errorf("B's 5 operations took %v after submission, want <= %v", took, 15*interval)
	}
	// The flood is still draining: A was not starved either, and the
	// upstream was never overrun.
	st := g.up.stats("SHIP")
	if st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("violations %d, max in flight %d", st.Violations, st.MaxInFlight)
	}
	r := g.do("GET", "/v1/tenants/SHIP/projects/A/queue", "SHIP/A", nil)
	var qs api.QueueStatus
	r.decode(t, &qs)
	if r.status != 200 || qs.Project.Pending == 0 || qs.Tenant.Pending < qs.Project.Pending || qs.IntervalSeconds != interval.Seconds() {
		t.Errorf("queue status while A drains: %d %s", r.status, r.body)
	}
}

// TestIdempotencyKey: a replay with the same key and body returns the
// original operation and queues nothing; the same key with another body is
// 422; another caller's identical key is independent.
func TestIdempotencyKey(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	body := map[string]string{"name": "billing", "description": "d"}
	key := map[string]string{"Idempotency-Key": `"req-1"`}
	first := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", body, key)
	if first.status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	var op1 api.Operation
	first.decode(t, &op1)
	again := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", body, key)
	var op2 api.Operation
	again.decode(t, &op2)
	// The replay answers as the original would now: 202 while it is
	// queued, 201 once the group exists (the dispatcher may finish it
	// between the two requests).
	if op2.Id != op1.Id || (again.status != http.StatusAccepted && again.status != http.StatusCreated) {
		t.Fatalf("replay: %d %s, want the original operation %s", again.status, again.body, op1.Id)
	}
	// After it finished, a replay still returns it (not "already exists").
	g.await("SHIP/MOH", op1.Id, 10*time.Second)
	late := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", body, map[string]string{"Idempotency-Key": "req-1"})
	var op3 api.Operation
	late.decode(t, &op3)
	if op3.Id != op1.Id || op3.State != api.Succeeded {
		t.Fatalf("late replay: %d %s", late.status, late.body)
	}
	mismatch := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "payroll"}, key)
	if mismatch.status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d %s", mismatch.status, mismatch.body)
	}
	if p := mismatch.problem(t); *p.Type != "urn:groupgate:problem:idempotency-key-reused" {
		t.Errorf("problem type %s", *p.Type)
	}
	// Keys are scoped to the caller: MOE may use "req-1" for its own request.
	other := g.doWith("POST", groupsPath("SHIP", "MOE"), "SHIP/MOE", body, key)
	if other.status != http.StatusAccepted {
		t.Fatalf("another caller's key: %d %s", other.status, other.body)
	}
	if bad := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", body, map[string]string{"Idempotency-Key": "tab\there"}); bad.status != http.StatusBadRequest {
		t.Errorf("malformed key: %d", bad.status)
	}
	// Concurrent twins queue one operation.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			r := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "twin"}, map[string]string{"Idempotency-Key": "twin"})
			var op api.Operation
			r.decode(t, &op)
			ids[i] = op.Id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("concurrent replays got different operations: %v", ids)
		}
	}
	if n := len(g.list("SHIP/MOH")); n != 2 {
		t.Errorf("MOH has %d groups, want 2 (billing, twin)", n)
	}
	if c := g.up.stats("SHIP").CreatesByName; c["SHIP:MOH:billing"] > 1 {
		t.Errorf("replays created the group again: %v", c)
	}
	// Delete replays too.
	del := map[string]string{"Idempotency-Key": "del-1", "Prefer": "wait=10"}
	d1 := g.doWith("DELETE", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil, del)
	d2 := g.doWith("DELETE", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil, del)
	var o1, o2 api.Operation
	d1.decode(t, &o1)
	d2.decode(t, &o2)
	if d1.status != http.StatusOK || d2.status != http.StatusOK || o1.Id != o2.Id {
		t.Errorf("delete replay: %d/%d %s %s", d1.status, d2.status, o1.Id, o2.Id)
	}
}

// TestPreferWait: a create with Prefer: wait answers 201 with the result
// when it finishes in time, 202 when it does not; a waited GET is a long
// poll.
func TestPreferWait(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 200 * time.Millisecond})
	r := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "waited"}, map[string]string{"Prefer": "wait=10"})
	if r.status != http.StatusCreated || r.header.Get("Preference-Applied") != "wait=10" {
		t.Fatalf("waited create: %d %v %s", r.status, r.header, r.body)
	}
	var op api.Operation
	r.decode(t, &op)
	if op.State != api.Succeeded || op.Result == nil || op.Result.Group.FullName != "SHIP:MOH:waited" {
		t.Fatalf("waited create body: %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/tenants/SHIP/projects/MOH/groups/waited" {
		t.Errorf("Location %q", loc)
	}
	// Queue 6 creates, then ask to wait 1 s for the last: it cannot be done
	// in time (6 x 200 ms), so 202 after about a second.
	var ops []api.Operation
	for i := range 6 {
		ops = append(ops, g.create("SHIP/MOH", fmt.Sprintf("w%d", i)))
	}
	start := time.Now()
	r = g.doWith("GET", "/v1/operations/"+ops[5].Id, "SHIP/MOH", nil, map[string]string{"Prefer": "wait=1"})
	waited := time.Since(start)
	var pending api.Operation
	r.decode(t, &pending)
	if r.status != http.StatusOK || pending.State == api.Succeeded || waited < 900*time.Millisecond {
		t.Fatalf("long poll that times out: %d after %v: %s", r.status, waited, r.body)
	}
	if pending.State == api.Queued && (pending.Position == nil || pending.EstimatedStartAt == nil) {
		t.Errorf("a queued operation shows its position and estimate: %s", r.body)
	}
	// A long poll long enough returns as soon as it is done.
	r = g.doWith("GET", "/v1/operations/"+ops[5].Id, "SHIP/MOH", nil, map[string]string{"Prefer": "wait=20"})
	r.decode(t, &pending)
	if pending.State != api.Succeeded {
		t.Fatalf("long poll: %s", r.body)
	}
	// Waits are capped by configuration.
	r = g.doWith("GET", "/v1/operations/"+ops[0].Id, "SHIP/MOH", nil, map[string]string{"Prefer": "wait=99999"})
	if got := r.header.Get("Preference-Applied"); got != "wait=30" {
		t.Errorf("Preference-Applied %q, want the cap wait=30", got)
	}
}

// TestCancel: a queued operation can be cancelled, releasing the name; a
// finished one cannot.
func TestCancel(t *testing.T) {
	// A 1 s interval leaves time to cancel what was just queued, even on a
	// loaded machine.
	g := startGateway(t, gatewayOptions{interval: time.Second})
	first := g.create("SHIP/MOH", "first")
	second := g.create("SHIP/MOH", "second")
	r := g.do("DELETE", "/v1/operations/"+second.Id, "SHIP/MOH", nil)
	var c api.Operation
	r.decode(t, &c)
	if r.status != http.StatusOK || c.State != api.Cancelled || c.FinishedAt == nil {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := g.do("DELETE", "/v1/operations/"+second.Id, "SHIP/MOH", nil); r.status != http.StatusOK {
		t.Errorf("cancelling again: %d", r.status)
	}
	if r := g.do("DELETE", "/v1/operations/"+second.Id, "SHIP/MOE", nil); r.status != http.StatusNotFound {
		t.Errorf("another project cancelling: %d", r.status)
	}
	g.await("SHIP/MOH", first.Id, 10*time.Second)
	if r := g.do("DELETE", "/v1/operations/"+first.Id, "SHIP/MOH", nil); r.status != http.StatusConflict {
		t.Errorf("cancelling a finished operation: %d %s", r.status, r.body)
	}
	// The cancelled create released its name: it can be created again, and
	// the simulator never saw the cancelled one.
	again := g.await("SHIP/MOH", g.create("SHIP/MOH", "second").Id, 10*time.Second)
	if again.State != api.Succeeded {
		t.Fatalf("recreate after cancel: %s", again.State)
	}
	if n := g.up.stats("SHIP").CreatesByName["SHIP:MOH:second"]; n != 1 {
		t.Errorf("simulator created SHIP:MOH:second %d times", n)
	}
	// A cancelled delete leaves the group active. A create queued first
	// keeps the delete waiting (same project: submission order) so it can
	// be cancelled before it starts.
	g.create("SHIP/MOH", "blocker")
	del := g.do("DELETE", groupsPath("SHIP", "MOH")+"/first", "SHIP/MOH", nil)
	var delOp api.Operation
	del.decode(t, &delOp)
	if r := g.do("DELETE", "/v1/operations/"+delOp.Id, "SHIP/MOH", nil); r.status != http.StatusOK {
		t.Fatalf("cancel delete: %d %s", r.status, r.body)
	}
	gr := g.do("GET", groupsPath("SHIP", "MOH")+"/first", "SHIP/MOH", nil)
	var grp api.Group
	gr.decode(t, &grp)
	if grp.State != api.GroupStateActive || grp.PendingOperationId != nil {
		t.Errorf("after cancelling its delete the group is %s: %s", grp.State, gr.body)
	}
	if len(g.up.sim.Groups("SHIP")) == 0 {
		t.Error("the cancelled delete reached the simulator")
	}
}

// TestBackpressure: past the project's queue limit writes are refused with
// 429 and a Retry-After from the backlog, and nothing is recorded.
func TestBackpressure(t *testing.T) {
	// At a 3 s interval (and the first request waiting one interval after
	// start) nothing leaves the queue while the test fills it.
	g := startGateway(t, gatewayOptions{interval: 3 * time.Second, mutate: func(c *config.Config) {
		c.MaxProjectQueue = 3
		c.MaxQueue = 5
		c.ShutdownGrace = config.Duration(time.Second)
	}})
	for i := range 3 {
		g.create("SHIP/MOH", fmt.Sprintf("q%d", i))
	}
	r := g.do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "overflow"})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("over the project limit: %d %s", r.status, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if p := r.problem(t); *p.Type != "urn:groupgate:problem:queue-full" {
		t.Errorf("problem %s", *p.Type)
	}
	for _, gr := range g.list("SHIP/MOH") {
		if gr.Name == "overflow" {
			t.Error("a refused create was recorded")
		}
	}
	// Another project still has room until the tenant limit (5).
	g.create("SHIP/MOE", "m0")
	g.create("SHIP/MOE", "m1")
	r = g.do("POST", groupsPath("SHIP", "MOE"), "SHIP/MOE", map[string]string{"name": "m2"})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("at the tenant limit: %d %s", r.status, r.body)
	}
	r = g.do("GET", "/v1/tenants/SHIP/projects/MOH/queue", "SHIP/MOH", nil)
	var qs api.QueueStatus
	r.decode(t, &qs)
	if qs.Project.Max != 3 || qs.Tenant.Max != 5 {
		t.Errorf("queue status limits: %s", r.body)
	}
}

// TestRetryFailedOperation: a failed operation can be retried through the
// API once its cause is fixed; the retry is a new operation, and only
// failed operations can be retried.
func TestRetryFailedOperation(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	secret := g.up.secrets["OTHER client secret"]
	if err := g.up.sim.SetClientSecret("OTHER", "revoked"); err != nil {
		t.Fatal(err)
	}
	failed := g.await("OTHER/MOH", g.create("OTHER/MOH", "second-chance").Id, 20*time.Second)
	if failed.State != api.Failed {
		t.Fatalf("first attempt: %s", failed.State)
	}
	if err := g.up.sim.SetClientSecret("OTHER", secret); err != nil { // the platform team fixes it
		t.Fatal(err)
	}
	if r := g.do("POST", "/v1/operations/"+failed.Id+"/retry", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Errorf("another tenant retrying: %d", r.status)
	}
	r := g.doWith("POST", "/v1/operations/"+failed.Id+"/retry", "OTHER/MOH", nil, map[string]string{"Prefer": "wait=20"})
	var retried api.Operation
	r.decode(t, &retried)
	if r.status != http.StatusCreated || retried.Id == failed.Id || retried.State != api.Succeeded || retried.FullName != "OTHER:MOH:second-chance" {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	if r := g.do("POST", "/v1/operations/"+retried.Id+"/retry", "OTHER/MOH", nil); r.status != http.StatusConflict {
		t.Errorf("retrying a succeeded operation: %d", r.status)
	}
	if again := g.await("OTHER/MOH", failed.Id, time.Second); again.State != api.Failed {
		t.Errorf("the failed operation changed: %s", again.State)
	}
}
