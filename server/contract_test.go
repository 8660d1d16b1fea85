package server_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/webhooks"
)

// untestable lists the documented answers (operation and status) that no
// test here can produce, each with the reason. Every other status that
// openapi.yaml documents for an operation must be answered, through the
// validating client, by some test of this package. It is empty: a status
// the server cannot answer is dropped from openapi.yaml instead.
var untestable = map[string]string{}

// internalErrors: every operation documents 500 for a failure the server
// cannot attribute to the request (a broken store, a bug); no test provokes
// one on purpose, so 500 is exempt wherever it is documented (a test that
// meets one fails on its own).
const internalErrors = 500

// TestMain runs the package's tests, then, when the whole package ran (no
// -run, -skip or -short), fails if some operation and status documented in
// openapi.yaml was never answered through the validating client
// (internal/apitest): the contract's statuses are counted from the spec, so
// a status added to it needs a test.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	pgtest.Shutdown() // the PostgreSQL cluster of the replica tests, if started
	if !wholePackage() {
		os.Exit(code)
	}
	tb := &mainTB{}
	exempt := map[string]string{}
	for name, why := range untestable {
		exempt[name] = why
	}
	doc := apitest.Spec(tb)
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Responses.Status(internalErrors) != nil && !apitest.Exercised(op.OperationID, internalErrors) {
				exempt[fmt.Sprintf("%s %d", op.OperationID, internalErrors)] = "internal error"
			}
		}
	}
	if missing := apitest.Missing(doc, exempt); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: contract coverage: %d documented answers were never exercised through the validating client "+
			"(add a test, or a reason in untestable in server/contract_test.go):\n  %s\n", len(missing), strings.Join(missing, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// wholePackage reports whether every test of the package was asked to run.
func wholePackage() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// mainTB is the testing.TB that apitest.Spec needs outside a test.
type mainTB struct{ testing.TB }

func (mainTB) Helper() {}
func (mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// allowedCaller returns a principal of the authorization matrix that a's
// policy lets call the operation ("" for a public one).
func allowedCaller(a api.Access) string {
	switch {
	case a.Public:
		return ""
	case a.Operator:
		return "operator"
	case a.TenantAdmin:
		return "admin SHIP"
	default:
		return "SHIP/MOH"
	}
}

// TestContractRateLimited: every operation that documents 429 answers it,
// as the spec describes, to a caller over its rate.
func TestContractRateLimited(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: time.Second, mutate: func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 0.001, Burst: 1}
	}})
	// One request each empties the callers' buckets.
	admin, key := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "SHIP"})
	g.keys["admin SHIP"] = admin
	if r := g.do("GET", "/v1/tenants/SHIP", "admin SHIP", nil); r.status != http.StatusOK {
		t.Fatalf("admin: %d %s", r.status, r.body)
	}
	op := g.create("SHIP/MOH", "limited")
	// Webhook deliveries are limited per remote address: empty that bucket.
	body := []byte(`{"event":"user-invited"}`)
	g.deliver("SHIP", body, "")
	policy := api.Policy()
	samples := matrixSamples(op.Id, key.Id)
	for _, id := range specOperations(t) {
		if !documents(t, id, http.StatusTooManyRequests) {
			continue
		}
		s := samples[id]
		var body any
		if s.body != nil {
			body = s.body()
		}
		r := g.do(s.method, s.path, allowedCaller(policy[id]), body)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Errorf("%s over the rate: %d (Retry-After %q) %s, want 429", id, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
}

// TestContractUnsupportedMediaType: every operation that takes a JSON body
// answers 415 to another media type.
func TestContractUnsupportedMediaType(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	admin, key := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "SHIP"})
	g.keys["admin SHIP"] = admin
	op := g.create("SHIP/MOH", "media")
	policy := api.Policy()
	samples := matrixSamples(op.Id, key.Id)
	for _, id := range specOperations(t) {
		if !documents(t, id, http.StatusUnsupportedMediaType) {
			continue
		}
		s := samples[id]
		if s.body == nil {
			t.Errorf("%s documents 415 but its sample has no body", id)
			continue
		}
		req, err := http.NewRequest(s.method, g.base+s.path, bytes.NewReader(mustJSON(t, s.body())))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+g.keys[allowedCaller(policy[id])])
		if r := g.badInput().send(req); r.status != http.StatusUnsupportedMediaType {
			t.Errorf("%s with text/plain: %d %s, want 415", id, r.status, r.body)
		}
	}
}

// documents reports whether openapi.yaml documents status for operation id.
func documents(t *testing.T, id string, status int) bool {
	t.Helper()
	for _, item := range contractSpec(t).Paths.Map() {
		for _, op := range item.Operations() {
			if op.OperationID == id {
				return op.Responses.Status(status) != nil
			}
		}
	}
	t.Fatalf("no operation %s in openapi.yaml", id)
	return false
}

var (
	contractOnce sync.Once
	contractDoc  *openapi3.T
)

// contractSpec is the parsed openapi.yaml, read once for the package's
// tests, which only read it.
func contractSpec(t *testing.T) *openapi3.T {
	contractOnce.Do(func() { contractDoc = apitest.Spec(t) })
	return contractDoc
}

// TestContractBadInput: every operation that documents 400 answers it to
// malformed input (a body that is not JSON, or a malformed path or query
// parameter), as a problem, and changes nothing. A signed operation's
// malformed body is signed, so that the signature is not what refuses it.
func TestContractBadInput(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	admin, _ := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "SHIP"})
	g.keys["admin SHIP"] = admin
	op := g.create("SHIP/MOH", "bad")
	g.await("SHIP/MOH", op.Id, 10*time.Second)
	policy := api.Policy()
	samples := matrixSamples(op.Id, "0123456789abcdef0123")
	// For operations without a body: a request with a malformed parameter.
	badPaths := map[string]string{
		"getGroup":         groupsPath("SHIP", "MOH") + "/-bad",
		"deleteGroup":      groupsPath("SHIP", "MOH") + "/-bad",
		"listGroups":       groupsPath("S", "MOH"),
		"getQueue":         "/v1/tenants/SHIP/projects/M_H/queue",
		"listMembers":      groupsPath("SHIP", "MOH") + "/-bad/members",
		"removeMember":     groupsPath("SHIP", "MOH") + "/-bad/members/user001@example.gov.sg",
		"listTenantGroups": "/v1/tenants/S/groups",
		"getMirror":        "/v1/tenants/S/mirror",
		"syncMirror":       "/v1/tenants/S/mirror",
		"getTenant":        "/v1/tenants/S",
		"listProjects":     "/v1/tenants/S/projects",
		"getProject":       "/v1/tenants/SHIP/projects/M_H",
		"listKeys":         "/v1/keys?tenant=S",
		"getKey":           "/v1/keys/X",
		"revokeKey":        "/v1/keys/X",
		"listAudit":        "/v1/audit?cursor=garbage",
		"getOperation":     "/v1/operations/op!",
		"cancelOperation":  "/v1/operations/op!",
		"retryOperation":   "/v1/operations/op!/retry",
		"confirmWebhook":   "/v1/tenants/SHIP/webhooks/techpass", // no challengeToken
	}
	for _, id := range specOperations(t) {
		if !documents(t, id, http.StatusBadRequest) {
			continue
		}
		s := samples[id]
		var r response
		switch path, ok := badPaths[id]; {
		case s.body != nil && policy[id].Signed:
			body := []byte(`{"name":`)
			req, err := http.NewRequest(s.method, g.base+s.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhooks.SignatureHeader, webhooks.Sign([]byte(g.up.hookSecrets["SHIP"]), time.Now(), body))
			r = g.badInput().send(req)
		case s.body != nil:
			r = g.badInput().do(s.method, s.path, allowedCaller(policy[id]), []byte(`{"name":`))
		case ok:
			r = g.badInput().do(s.method, path, allowedCaller(policy[id]), nil)
		default:
			t.Errorf("%s documents 400 but this test has no malformed request for it", id)
			continue
		}
		if r.status != http.StatusBadRequest {
			t.Errorf("%s with malformed input: %d %s, want 400", id, r.status, r.body)
			continue
		}
		r.problem(t)
	}
	if gs := g.list("SHIP/MOH"); len(gs) != 1 {
		t.Errorf("bad input changed the groups: %+v", gs)
	}
}

// TestContractStatuses: the answers of openapi.yaml that need a particular
// state (a missing tenant, a pending operation, a failed operation to retry,
// a reused Idempotency-Key...), one step each, in order, on one gateway.
func TestContractStatuses(t *testing.T) {
	// The simulator's namespace limit is 4 while the gateway's own counts
	// only its groups, so a create can fail upstream.
	g := startGateway(t, gatewayOptions{groupLimit: 4})
	for _, name := range []string{"SHIP:PORTAL:a", "SHIP:PORTAL:b"} {
		if _, err := g.up.sim.CreateGroupDirect("SHIP", name, "", false); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"g1", "g2"} {
		g.await("SHIP/MOH", g.create("SHIP/MOH", name).Id, 10*time.Second)
	}
	members := func(group string) string { return groupsPath("SHIP", "MOH") + "/" + group + "/members" }
	users := func(u ...string) map[string]any { return map[string]any{"users": u} }
	const u1, u2 = "user001@example.gov.sg", "user002@example.gov.sg"
	ops := map[string]string{} // step name -> operation id it answered

	steps := []struct {
		name         string
		method, path string
		who          string // "" for a public operation
		body         any
		header       map[string]string
		want         int
		// then waits for the answered operation to finish.
		then bool
		// before runs before the request.
		before func()
	}{
		// Members: two added, one removed, then removing it again needs
		// nothing from TechPass.
		{name: "add", method: "POST", path: members("g1"), who: "SHIP/MOH", body: users(u1, u2), want: 202, then: true},
		{name: "remove", method: "POST", path: members("g1") + "/remove", who: "SHIP/MOH", body: users(u2), want: 202, then: true},
		{name: "remove again", method: "POST", path: members("g1") + "/remove", who: "SHIP/MOH", body: users(u2), want: 200},
		{name: "fails: unknown user", method: "POST", path: members("g1"), who: "SHIP/MOH", body: users("ghost@example.gov.sg"), want: 202, then: true},
		{name: "fails again", method: "POST", path: members("g1"), who: "SHIP/MOH", body: users("ghost2@example.gov.sg"), want: 202, then: true},
		{name: "bad user", method: "POST", path: members("g1") + "/remove", who: "SHIP/MOH", body: users("nobody"), want: 422},
		// A finished update, waited for.
		{name: "update", method: "PATCH", path: groupsPath("SHIP", "MOH") + "/g1", who: "SHIP/MOH", body: map[string]any{"description": "d"},
			header: map[string]string{"Prefer": "wait=10"}, want: 200},
		// A create that fails upstream (the namespace is full), waited for.
		{name: "create fails", method: "POST", path: groupsPath("SHIP", "MOH"), who: "SHIP/MOH", body: map[string]any{"name": "g3"},
			header: map[string]string{"Prefer": "wait=10"}, want: 200},
		// While g2 is being deleted (its upstream request held for a
		// while), nothing else may change it.
		{name: "delete", method: "DELETE", path: groupsPath("SHIP", "MOH") + "/g2", who: "SHIP/MOH", header: map[string]string{"Idempotency-Key": "del-1"}, want: 202,
			before: func() { setFaults(t, g, techpasssim.Faults{LatencyMin: 5 * time.Second, LatencyMax: 5 * time.Second}) }},
		{name: "update deleting", method: "PATCH", path: groupsPath("SHIP", "MOH") + "/g2", who: "SHIP/MOH", body: map[string]any{"description": "x"}, want: 409},
		{name: "add deleting", method: "POST", path: members("g2"), who: "SHIP/MOH", body: users(u1), want: 409},
		{name: "remove deleting", method: "POST", path: members("g2") + "/remove", who: "SHIP/MOH", body: users(u1), want: 409},
		{name: "remove one deleting", method: "DELETE", path: members("g2") + "/" + u1, who: "SHIP/MOH", want: 409},
		{name: "key reused", before: func() {
			// The conflicts above were met while the delete was still on.
			var op api.Operation
			g.do("GET", "/v1/operations/"+ops["delete"], "SHIP/MOH", nil).decode(t, &op)
			if op.State != api.Queued && op.State != api.Running {
				t.Fatalf("the held delete is %s already: the 409s above prove nothing", op.State)
			}
			setFaults(t, g, techpasssim.Faults{})
		}, method: "DELETE", path: groupsPath("SHIP", "MOH") + "/g1", who: "SHIP/MOH", header: map[string]string{"Idempotency-Key": "del-1"}, want: 422},
		// Admin: missing tenants and projects, conflicts, broken rules.
		{name: "no tenant", method: "GET", path: "/v1/tenants/NOPE", who: "operator", want: 404},
		{name: "no tenant to patch", method: "PATCH", path: "/v1/tenants/NOPE", who: "operator", body: map[string]any{"disabled": false}, want: 404},
		{name: "no tenant's projects", method: "GET", path: "/v1/tenants/NOPE/projects", who: "operator", want: 404},
		{name: "no tenant for a project", method: "POST", path: "/v1/tenants/NOPE/projects", who: "operator", body: map[string]any{"name": "P1"}, want: 404},
		{name: "no tenant's groups", method: "GET", path: "/v1/tenants/NOPE/groups", who: "operator", want: 404},
		{name: "no tenant's mirror", method: "GET", path: "/v1/tenants/NOPE/mirror", who: "operator", want: 404},
		{name: "no tenant to reconcile", method: "POST", path: "/v1/tenants/NOPE/mirror", who: "operator", want: 404},
		{name: "no project", method: "GET", path: "/v1/tenants/SHIP/projects/NOPE", who: "operator", want: 404},
		{name: "no project to patch", method: "PATCH", path: "/v1/tenants/SHIP/projects/NOPE", who: "operator", body: map[string]any{"groupQuota": 1}, want: 404},
		{name: "no project for a key", method: "POST", path: "/v1/keys", who: "operator",
			body: map[string]any{"name": "k", "role": "project", "tenant": "SHIP", "project": "NOPE"}, want: 404},
		{name: "project key without project", method: "POST", path: "/v1/keys", who: "operator",
			body: map[string]any{"name": "k", "role": "project", "tenant": "SHIP"}, want: 422},
		{name: "project exists", method: "POST", path: "/v1/tenants/SHIP/projects", who: "operator", body: map[string]any{"name": "MOH"}, want: 409},
		{name: "identity without keys", method: "POST", path: "/v1/tenants/SHIP/projects", who: "operator",
			body: map[string]any{"name": "P9", "identity": map[string]any{"issuer": "https://idp.example", "audience": "a"}}, want: 422},
		{name: "identity without keys on patch", method: "PATCH", path: "/v1/tenants/SHIP/projects/MOH", who: "operator",
			body: map[string]any{"identity": map[string]any{"issuer": "https://idp.example", "audience": "a"}}, want: 422},
		{name: "quota", method: "PATCH", path: "/v1/tenants/SHIP/projects/MOH", who: "operator", body: map[string]any{"groupQuota": 3}, want: 200},
		{name: "limit below the quotas", method: "PATCH", path: "/v1/tenants/SHIP", who: "operator", body: map[string]any{"groupLimit": 2}, want: 409},
		{name: "two sources on patch", method: "PATCH", path: "/v1/tenants/SHIP", who: "operator",
			body: map[string]any{"techpass": map[string]any{"apiKey": map[string]any{"file": "/a", "env": "B"}}}, want: 422},
		{name: "two sources", method: "POST", path: "/v1/tenants", who: "operator",
			body: map[string]any{"name": "T2", "techpass": map[string]any{"apiKey": map[string]any{"file": "/a", "env": "B"}}}, want: 422},
		// TechPass confirming a webhook of a tenant the gateway does not have.
		{name: "no tenant's webhook", method: "GET", path: "/v1/tenants/NOPE/webhooks/techpass?challengeToken=tok", want: 404},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		var body io.Reader
		if s.body != nil {
			body = bytes.NewReader(mustJSON(t, s.body))
		}
		req, err := http.NewRequest(s.method, g.base+s.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if s.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if s.who != "" {
			req.Header.Set("Authorization", "Bearer "+g.keys[s.who])
		}
		for k, v := range s.header {
			req.Header.Set(k, v)
		}
		r := g.send(req)
		if r.status != s.want {
			t.Fatalf("%s: %s %s: %d %s, want %d", s.name, s.method, s.path, r.status, r.body, s.want)
		}
		if r.status >= 400 {
			r.problem(t)
			continue
		}
		var op api.Operation
		if json.Unmarshal(r.body, &op) == nil && op.Id != "" {
			ops[s.name] = op.Id
			if s.then {
				g.await("SHIP/MOH", op.Id, 10*time.Second)
			}
		}
	}

	// Failed operations are retried: queued again, waited for, and a key
	// reused for another retry is refused.
	retry := func(id string, header map[string]string, want int) response {
		t.Helper()
		req, _ := http.NewRequest("POST", g.base+"/v1/operations/"+id+"/retry", nil)
		req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
		for k, v := range header {
			req.Header.Set(k, v)
		}
		r := g.send(req)
		if r.status != want {
			t.Fatalf("retry %s %v: %d %s, want %d", id, header, r.status, r.body, want)
		}
		return r
	}
	var again api.Operation
	retry(ops["fails: unknown user"], map[string]string{"Idempotency-Key": "retry-1"}, 202).decode(t, &again)
	g.await("SHIP/MOH", again.Id, 20*time.Second) // after the held delete
	retry(ops["fails: unknown user"], map[string]string{"Prefer": "wait=10"}, 200)
	retry(ops["fails again"], map[string]string{"Idempotency-Key": "retry-1"}, 422)
}

func setFaults(t *testing.T, g *gateway, f techpasssim.Faults) {
	t.Helper()
	if err := g.up.sim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

// TestDisabledTenantRefusesItsAdmins: the admin of a disabled tenant is
// refused (403, the disabled problem) even for its own key, which a
// refused revoke leaves working; enabled again, the tenant's admin may.
func TestDisabledTenantRefusesItsAdmins(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	admin, own := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "OTHER"})
	g.keys["admin OTHER"] = admin
	setDisabled := func(disabled bool) {
		t.Helper()
		if r := g.do("PATCH", "/v1/tenants/OTHER", "operator", map[string]any{"disabled": disabled}); r.status != http.StatusOK {
			t.Fatalf("disable OTHER (%v): %d %s", disabled, r.status, r.body)
		}
	}
	setDisabled(true)
	for _, method := range []string{"GET", "DELETE"} {
		r := g.do(method, "/v1/keys/"+own.Id, "admin OTHER", nil)
		if p := r.problem(t); r.status != http.StatusForbidden || p.Type == nil || *p.Type != "urn:groupgate:problem:disabled" {
			t.Errorf("%s its own key, disabled: %d %s, want 403 disabled", method, r.status, r.body)
		}
	}
	var k api.Key
	if g.do("GET", "/v1/keys/"+own.Id, "operator", nil).decode(t, &k); k.State != api.KeyStateActive {
		t.Errorf("the refused revoke changed the key: %+v", k)
	}
	setDisabled(false)
	if r := g.do("GET", "/v1/keys/"+own.Id, "admin OTHER", nil); r.status != http.StatusOK {
		t.Errorf("get its own key, enabled again: %d %s", r.status, r.body)
	}
}
