package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/client"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// The tests in this file drive the gateway only through the typed client
// generated from openapi.yaml (package client), as a tenant backend would,
// so that the contract is exercised as a client sees it: the generated
// request encoding, the JSONnnn and ApplicationproblemJSONnnn fields and the
// parsed headers. Every response is also validated against the spec by
// apitest.

// typed returns a typed client for g that sends key (none if "") and checks
// every response against openapi.yaml.
func (g *gateway) typed(key string) *client.ClientWithResponses {
	g.t.Helper()
	opts := []client.ClientOption{client.WithHTTPClient(apitest.NewClient(g.t, http.DefaultTransport))}
	if key != "" {
		opts = append(opts, client.WithBearer(key))
	}
	c, err := client.NewClientWithResponses(g.base, opts...)
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func addr[T any](v T) *T { return &v }

// mustAnswer fails the test if a typed call was not answered, or its answer
// could not be parsed.
func mustAnswer(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantStatus fails the test unless resp has the given status.
func wantStatus(t *testing.T, what string, resp client.Response, status int) {
	t.Helper()
	if resp.StatusCode() != status {
		t.Fatalf("%s: %d, want %d: %s", what, resp.StatusCode(), status, resp.GetBody())
	}
}

// wantProblem checks that resp is the problem+json answer with the given
// status (and problem type, unless typ is ""), that the generated field for
// that status holds it, and that client.ProblemOf decodes the same problem.
func wantProblem(t *testing.T, what string, resp client.Response, field *client.Problem, status int, typ string) {
	t.Helper()
	wantStatus(t, what, resp, status)
	if !client.IsProblem(resp) {
		t.Fatalf("%s: content type %q, want %s", what, resp.ContentType(), client.ProblemMediaType)
	}
	if field == nil {
		t.Fatalf("%s: the generated ApplicationproblemJSON%d field is empty: %s", what, status, resp.GetBody())
	}
	p := client.ProblemOf(resp)
	if p == nil || p.Error() != field.Error() || p.Status != int32(status) || field.Status != int32(status) {
		t.Errorf("%s: ProblemOf %+v, generated field %+v", what, p, field)
	}
	if typ != "" && (field.Type == nil || *field.Type != typ) {
		t.Errorf("%s: problem type %v, want %s", what, field.Type, typ)
	}
}

// awaitTyped long-polls an operation (Prefer: wait) until it is final.
func awaitTyped(t *testing.T, c *client.ClientWithResponses, id string, within time.Duration) client.Operation {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := c.GetOperationWithResponse(t.Context(), id, &client.GetOperationParams{Prefer: addr("wait=2")})
		mustAnswer(t, err)
		wantStatus(t, "get operation "+id, resp, http.StatusOK)
		op := *resp.JSON200
		switch op.State {
		case client.Succeeded, client.Failed, client.Cancelled:
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s still %s after %v", id, op.State, within)
		}
	}
}

// TestTypedClientGroupLifecycle: create (202 and an operation to poll), get,
// list, create with Prefer: wait (201), queue status, delete, 404 after.
func TestTypedClientGroupLifecycle(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 50 * time.Millisecond})
	c := g.typed(g.keys["SHIP/MOH"])
	ctx := t.Context()

	created, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", nil,
		client.CreateGroupRequest{Name: "billing", Description: addr("Billing team")})
	mustAnswer(t, err)
	wantStatus(t, "create", created, http.StatusAccepted)
	op := created.JSON202
	if op == nil || op.Kind != client.GroupCreate || op.FullName != "SHIP:MOH:billing" || op.Tenant != "SHIP" || op.Project != "MOH" {
		t.Fatalf("accepted operation: %s", created.Body)
	}
	if loc := created.Headers202.Location; loc != "/v1/operations/"+op.Id {
		t.Errorf("Location %q, want /v1/operations/%s", loc, op.Id)
	}
	done := awaitTyped(t, c, op.Id, 10*time.Second)
	if done.State != client.Succeeded || done.Result == nil || done.Result.Group == nil || done.Result.Group.FullName != "SHIP:MOH:billing" {
		t.Fatalf("finished operation: %+v", done)
	}

	list, err := c.ListGroupsWithResponse(ctx, "SHIP", "MOH", nil)
	mustAnswer(t, err)
	wantStatus(t, "list", list, http.StatusOK)
	if gs := list.JSON200.Groups; len(gs) != 1 || gs[0].Name != "billing" || gs[0].State != client.GroupStateActive || gs[0].Description != "Billing team" {
		t.Errorf("list: %s", list.Body)
	}
	got, err := c.GetGroupWithResponse(ctx, "ship", "moh", "BILLING")
	mustAnswer(t, err) // names match case-insensitively
	wantStatus(t, "get", got, http.StatusOK)
	if got.JSON200.FullName != "SHIP:MOH:billing" || got.JSON200.UpstreamId == nil {
		t.Errorf("get: %s", got.Body)
	}

	// Prefer: wait answers 201 with the finished operation.
	waited, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", &client.CreateGroupParams{Prefer: addr("wait=10")},
		client.CreateGroupRequest{Name: "payroll"})
	mustAnswer(t, err)
	wantStatus(t, "waited create", waited, http.StatusCreated)
	if w := waited.JSON201; w.State != client.Succeeded || w.Result == nil || w.Result.Group.FullName != "SHIP:MOH:payroll" {
		t.Errorf("waited create: %s", waited.Body)
	}
	h := waited.Headers201
	if h.Location != "/v1/tenants/SHIP/projects/MOH/groups/payroll" || h.PreferenceApplied == nil || *h.PreferenceApplied != "wait=10" {
		t.Errorf("waited create headers: %+v", h)
	}

	queue, err := c.GetQueueWithResponse(ctx, "SHIP", "MOH")
	mustAnswer(t, err)
	wantStatus(t, "queue", queue, http.StatusOK)
	if q := queue.JSON200; q.IntervalSeconds != 0.05 || q.Project.Pending != 0 || q.Project.Max < 1 || q.Tenant.Max < q.Project.Max {
		t.Errorf("queue status when idle: %s", queue.Body)
	}

	del, err := c.DeleteGroupWithResponse(ctx, "SHIP", "MOH", "billing", nil)
	mustAnswer(t, err)
	wantStatus(t, "delete", del, http.StatusAccepted)
	if del.JSON202.Kind != client.GroupDelete || del.Headers202.Location != "/v1/operations/"+del.JSON202.Id {
		t.Errorf("delete: %s %+v", del.Body, del.Headers202)
	}
	if done := awaitTyped(t, c, del.JSON202.Id, 10*time.Second); done.State != client.Succeeded {
		t.Fatalf("delete operation: %+v", done)
	}
	// A waited delete answers 200 with the finished operation.
	waitedDel, err := c.DeleteGroupWithResponse(ctx, "SHIP", "MOH", "payroll", &client.DeleteGroupParams{Prefer: addr("wait=10")})
	mustAnswer(t, err)
	wantStatus(t, "waited delete", waitedDel, http.StatusOK)
	if waitedDel.JSON200.State != client.Succeeded {
		t.Errorf("waited delete: %s", waitedDel.Body)
	}

	gone, err := c.GetGroupWithResponse(ctx, "SHIP", "MOH", "billing")
	mustAnswer(t, err)
	wantProblem(t, "get after delete", gone, gone.ApplicationproblemJSON404, http.StatusNotFound, "")
	list, err = c.ListGroupsWithResponse(ctx, "SHIP", "MOH", nil)
	mustAnswer(t, err)
	if len(list.JSON200.Groups) != 0 {
		t.Errorf("list after delete: %s", list.Body)
	}
	if ug := g.up.sim.Groups("SHIP"); len(ug) != 0 {
		t.Errorf("the simulator still has %+v", ug)
	}
}

// TestTypedClientIdempotencyAndCancel: an Idempotency-Key replay returns the
// original operation; the same key for another request is a 422 problem; a
// queued write can be cancelled, a finished one cannot (409).
func TestTypedClientIdempotencyAndCancel(t *testing.T) {
	// A 1 s interval leaves time to cancel what was just queued.
	g := startGateway(t, gatewayOptions{interval: time.Second})
	c := g.typed(g.keys["SHIP/MOH"])
	ctx := t.Context()

	key := &client.CreateGroupParams{IdempotencyKeyParam: addr(`"req-1"`)}
	first, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", key, client.CreateGroupRequest{Name: "first"})
	mustAnswer(t, err)
	wantStatus(t, "first create", first, http.StatusAccepted)
	replay, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", key, client.CreateGroupRequest{Name: "first"})
	mustAnswer(t, err)
	var replayed *client.Operation
	switch replay.StatusCode() {
	case http.StatusAccepted:
		replayed = replay.JSON202
	case http.StatusOK:
		replayed = replay.JSON200
	default:
		t.Fatalf("replay: %d %s", replay.StatusCode(), replay.Body)
	}
	if replayed.Id != first.JSON202.Id {
		t.Errorf("replay returned operation %s, want the original %s", replayed.Id, first.JSON202.Id)
	}
	reused, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", key, client.CreateGroupRequest{Name: "other"})
	mustAnswer(t, err)
	wantProblem(t, "same key, other request", reused, reused.ApplicationproblemJSON422, http.StatusUnprocessableEntity,
		"urn:groupgate:problem:idempotency-key-reused")

	second, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", nil, client.CreateGroupRequest{Name: "second"})
	mustAnswer(t, err)
	wantStatus(t, "second create", second, http.StatusAccepted)
	queue, err := c.GetQueueWithResponse(ctx, "SHIP", "MOH")
	mustAnswer(t, err)
	wantStatus(t, "queue", queue, http.StatusOK)
	if q := queue.JSON200; q.Project.Pending < 1 || q.Tenant.Pending < q.Project.Pending || q.IntervalSeconds != 1 || q.EstimatedStartAt.IsZero() {
		t.Errorf("queue status with two writes queued: %s", queue.Body)
	}
	cancelled, err := c.CancelOperationWithResponse(ctx, second.JSON202.Id)
	mustAnswer(t, err)
	wantStatus(t, "cancel", cancelled, http.StatusOK)
	if op := cancelled.JSON200; op.State != client.Cancelled || op.FinishedAt == nil {
		t.Errorf("cancelled operation: %s", cancelled.Body)
	}

	if done := awaitTyped(t, c, first.JSON202.Id, 10*time.Second); done.State != client.Succeeded {
		t.Fatalf("first: %+v", done)
	}
	late, err := c.CancelOperationWithResponse(ctx, first.JSON202.Id)
	mustAnswer(t, err)
	wantProblem(t, "cancel a finished operation", late, late.ApplicationproblemJSON409, http.StatusConflict,
		"urn:groupgate:problem:not-cancellable")

	// Another project's key: 403 for its groups, and the name conflict is
	// its own.
	moe := g.typed(g.keys["SHIP/MOE"])
	denied, err := moe.CreateGroupWithResponse(ctx, "SHIP", "MOH", nil, client.CreateGroupRequest{Name: "intruder"})
	mustAnswer(t, err)
	wantProblem(t, "create in another project", denied, denied.ApplicationproblemJSON403, http.StatusForbidden, "")
	dup, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH", nil, client.CreateGroupRequest{Name: "FIRST"})
	mustAnswer(t, err)
	wantProblem(t, "duplicate name", dup, dup.ApplicationproblemJSON409, http.StatusConflict, "")
	if n := g.up.stats("SHIP").CreatesByName["SHIP:MOH:second"]; n != 0 {
		t.Errorf("the cancelled create reached the simulator %d times", n)
	}
}

// TestTypedClientAdminAndAudit: an operator onboards a tenant with stored
// credentials and a tenant-admin key; the admin creates a project with a
// quota and a project key; that key works until it is revoked; the admin
// reads the tenant's audit log page by page.
func TestTypedClientAdminAndAudit(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx := t.Context()

	// The new tenant's namespace on the test's simulator.
	secret, apiKey := "secret-ACME-"+randomWord(t), "apikey-ACME-"+randomWord(t)
	if err := g.up.sim.AddNamespace(techpasssim.Namespace{Name: "ACME", DirectoryID: "dir-acme", ClientID: "client-acme",
		ClientSecret: secret, APIKeys: []string{apiKey}}); err != nil {
		t.Fatal(err)
	}
	op := g.typed(g.keys["operator"])
	tenant, err := op.CreateTenantWithResponse(ctx, client.TenantInput{
		Name: "acme", GroupLimit: addr[int32](10), IntervalSeconds: addr(0.02),
		Techpass: &client.TechPassInput{
			ApiUrl: addr(g.up.srv.URL), TokenUrl: addr(techpass.TokenURL(g.up.srv.URL, "dir-acme")),
			DirectoryId: addr("dir-acme"), ClientId: addr("client-acme"),
			ClientSecret: &client.CredentialInput{Value: addr(secret)}, ApiKey: &client.CredentialInput{Value: addr(apiKey)},
		},
	})
	mustAnswer(t, err)
	wantStatus(t, "create tenant", tenant, http.StatusCreated)
	if tn := tenant.JSON201; tn.Name != "ACME" || tn.GroupLimit != 10 || tn.Techpass.Upstream != client.Techpass ||
		tn.Techpass.ClientSecret.Kind != client.Stored || tn.Techpass.ApiKey.Kind != client.Stored {
		t.Errorf("tenant: %s", tenant.Body)
	}
	if body := string(tenant.Body); strings.Contains(body, secret) || strings.Contains(body, apiKey) {
		t.Error("the tenant's credentials came back in the response")
	}
	again, err := op.CreateTenantWithResponse(ctx, client.TenantInput{Name: "ACME"})
	mustAnswer(t, err)
	wantProblem(t, "create the tenant again", again, again.ApplicationproblemJSON409, http.StatusConflict, "")

	adminKey, err := op.CreateKeyWithResponse(ctx, client.KeyInput{Name: "acme admins", Role: client.RoleTenantAdmin, Tenant: addr("ACME")})
	mustAnswer(t, err)
	wantStatus(t, "create admin key", adminKey, http.StatusCreated)
	if k := adminKey.JSON201; k.Role != client.RoleTenantAdmin || k.State != client.KeyCreatedStateActive || !strings.HasPrefix(k.Key, "gk_") {
		t.Fatalf("admin key: %+v", k)
	}
	admin := g.typed(adminKey.JSON201.Key)

	project, err := admin.CreateProjectWithResponse(ctx, "ACME", client.ProjectInput{Name: "moh", GroupQuota: addr[int32](2)})
	mustAnswer(t, err)
	wantStatus(t, "create project", project, http.StatusCreated)
	if p := project.JSON201; p.Name != "MOH" || p.Tenant != "ACME" || p.GroupQuota != 2 {
		t.Errorf("project: %s", project.Body)
	}
	// A tenant-admin manages only its own tenant.
	elsewhere, err := admin.CreateProjectWithResponse(ctx, "SHIP", client.ProjectInput{Name: "SNEAKY"})
	mustAnswer(t, err)
	wantProblem(t, "a project in another tenant", elsewhere, elsewhere.ApplicationproblemJSON403, http.StatusForbidden, "")

	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	projectKey, err := admin.CreateKeyWithResponse(ctx, client.KeyInput{Name: "moh backend", Role: client.RoleProject,
		Tenant: addr("ACME"), Project: addr("MOH"), Scopes: &[]client.Scope{client.GroupsRead, client.GroupsWrite}, ExpiresAt: &expires})
	mustAnswer(t, err)
	wantStatus(t, "create project key", projectKey, http.StatusCreated)
	pk := projectKey.JSON201
	if pk.Role != client.RoleProject || pk.ExpiresAt == nil || !pk.ExpiresAt.Equal(expires) || !slices.Contains(pk.Scopes, client.GroupsWrite) {
		t.Errorf("project key: %+v", pk)
	}

	moh := g.typed(pk.Key)
	list, err := moh.ListGroupsWithResponse(ctx, "ACME", "MOH", nil)
	mustAnswer(t, err)
	wantStatus(t, "list with the new key", list, http.StatusOK)
	if len(list.JSON200.Groups) != 0 {
		t.Errorf("a new project has groups: %s", list.Body)
	}
	// The stored credentials reach the simulator, within the quota of 2.
	for _, name := range []string{"g1", "g2"} {
		r, err := moh.CreateGroupWithResponse(ctx, "ACME", "MOH", &client.CreateGroupParams{Prefer: addr("wait=10")}, client.CreateGroupRequest{Name: name})
		mustAnswer(t, err)
		wantStatus(t, "create "+name, r, http.StatusCreated)
	}
	over, err := moh.CreateGroupWithResponse(ctx, "ACME", "MOH", nil, client.CreateGroupRequest{Name: "g3"})
	mustAnswer(t, err)
	wantProblem(t, "over the quota", over, over.ApplicationproblemJSON409, http.StatusConflict, "urn:groupgate:problem:group-quota")
	if n := len(g.up.sim.Groups("ACME")); n != 2 {
		t.Errorf("the simulator has %d ACME groups, want 2", n)
	}

	revoked, err := admin.RevokeKeyWithResponse(ctx, pk.Id)
	mustAnswer(t, err)
	wantStatus(t, "revoke", revoked, http.StatusOK)
	if k := revoked.JSON200; k.State != client.KeyStateRevoked || k.RevokedAt == nil {
		t.Errorf("revoked key: %s", revoked.Body)
	}
	refused, err := moh.ListGroupsWithResponse(ctx, "ACME", "MOH", nil)
	mustAnswer(t, err)
	wantProblem(t, "list with the revoked key", refused, refused.ApplicationproblemJSON401, http.StatusUnauthorized, "")
	if h := refused.Headers401; h == nil || !strings.HasPrefix(h.WWWAuthenticate, "Bearer") {
		t.Errorf("WWW-Authenticate: %+v", h)
	}
	anonymous, err := g.typed("").ListGroupsWithResponse(ctx, "ACME", "MOH", nil)
	mustAnswer(t, err)
	wantProblem(t, "list without a key", anonymous, anonymous.ApplicationproblemJSON401, http.StatusUnauthorized, "")

	// The admin reads ACME's audit log one entry per page; the cursors
	// lead through all of it exactly once, newest first.
	seen := map[string]bool{}
	actions := map[string]bool{}
	params := &client.ListAuditParams{Limit: addr(1)}
	var last time.Time
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the audit cursors do not end")
		}
		page, err := admin.ListAuditWithResponse(ctx, params)
		mustAnswer(t, err)
		wantStatus(t, "audit page", page, http.StatusOK)
		if n := len(page.JSON200.Entries); n > 1 {
			t.Fatalf("a page of limit 1 has %d entries", n)
		}
		for _, e := range page.JSON200.Entries {
			if seen[e.Id] {
				t.Errorf("entry %s on two pages", e.Id)
			}
			if e.Tenant == nil || *e.Tenant != "ACME" {
				t.Errorf("an ACME admin sees another tenant's entry: %+v", e)
			}
			if !last.IsZero() && e.Time.After(last) {
				t.Errorf("entry %s at %v after a newer one at %v", e.Id, e.Time, last)
			}
			seen[e.Id], last = true, e.Time
			actions[e.Action+"/"+e.Outcome] = true
		}
		if page.JSON200.Next == nil {
			break
		}
		params.Cursor = page.JSON200.Next
	}
	// Outcomes follow the status: a waited create that finished is
	// succeeded (201), the one over the quota failed (409).
	for _, want := range []string{"tenant.create/succeeded", "key.create/succeeded", "project.create/succeeded",
		"group.create/succeeded", "group.create/failed", "operation.succeeded/succeeded", "key.revoke/succeeded"} {
		if !actions[want] {
			t.Errorf("the audit log lacks %s: %v", want, actions)
		}
	}
	bad, err := admin.ListAuditWithResponse(ctx, &client.ListAuditParams{Cursor: addr("garbage")})
	mustAnswer(t, err)
	wantProblem(t, "a malformed cursor", bad, bad.ApplicationproblemJSON400, http.StatusBadRequest, "")
	foreign, err := admin.ListAuditWithResponse(ctx, &client.ListAuditParams{Tenant: addr("SHIP")})
	mustAnswer(t, err)
	wantProblem(t, "another tenant's audit log", foreign, foreign.ApplicationproblemJSON403, http.StatusForbidden, "")
}
