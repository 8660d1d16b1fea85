package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

func membersPath(tenant, project, group string) string {
	return groupsPath(tenant, project) + "/" + group + "/members"
}

// createActive creates a group through the API and waits until it exists.
func (g *gateway) createActive(who, name string) {
	g.t.Helper()
	op := g.create(who, name)
	if done := g.await(who, op.Id, 10*time.Second); done.State != api.Succeeded {
		g.t.Fatalf("create %s: %s %+v", name, done.State, done.Error)
	}
}

// members reads every page of a group's members through the API.
func (g *gateway) members(who, group string, limit int, prefix string) ([]api.Member, api.MemberList) {
	g.t.Helper()
	tenant, project, _ := strings.Cut(who, "/")
	var all []api.Member
	var last api.MemberList
	cursor := ""
	for range 1000 {
		q := url.Values{}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := g.do("GET", membersPath(tenant, project, group)+"?"+q.Encode(), who, nil)
		if r.status != http.StatusOK {
			g.t.Fatalf("list members: %d %s", r.status, r.body)
		}
		last = api.MemberList{}
		r.decode(g.t, &last)
		all = append(all, last.Members...)
		if last.NextCursor == nil {
			return all, last
		}
		cursor = *last.NextCursor
	}
	g.t.Fatal("member pages never end")
	return nil, last
}

func emails(ms []api.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = strings.ToLower(m.Email)
	}
	return out
}

func simEmails(us []techpass.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = strings.ToLower(u.Email)
	}
	slices.Sort(out)
	return out
}

// readRequests counts the upstream requests that only read.
func readRequests(st techpasssim.NamespaceStats) int {
	return st.ByRoute[techpass.RouteListGroups] + st.ByRoute[techpass.RouteGetGroup] + st.ByRoute[techpass.RouteListMembers]
}

// TestMembersAddAndRemove is the acceptance scenario: add 30 members in one
// call, remove 10, and the list shows the right 20, as TechPass does; reads
// made meanwhile cost no upstream call; a change the mirror shows done
// needs none either.
func TestMembersAddAndRemove(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	g.createActive("SHIP/MOH", "billing")
	users := techpasssim.DemoUsers(80)

	var add []string
	for i, u := range users[:30] {
		switch i % 3 {
		case 0:
			add = append(add, u.Email)
		case 1:
			add = append(add, strings.ToUpper(u.Email)) // e-mails are case-insensitive
		default:
			add = append(add, u.ID) // or an object id
		}
	}
	// Repeats are folded; a user named both by e-mail and by id is added once.
	add = append(add, users[0].Email, strings.ToUpper(users[2].ID), users[1].ID)
	before := readRequests(g.up.stats("SHIP"))

	// Reads while the change runs: none reaches TechPass.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			g.members("SHIP/MOH", "billing", 7, "")
			g.list("SHIP/MOH")
			g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil)
		}
	}()
	r := g.do("POST", membersPath("SHIP", "MOH", "billing"), "SHIP/MOH", map[string]any{"users": add})
	op := g.accepted("add members", r)
	if op.Kind != api.GroupMembers {
		t.Fatalf("kind %s, want group.members", op.Kind)
	}
	done := g.await("SHIP/MOH", op.Id, 30*time.Second)
	if done.State != api.Succeeded || done.Result == nil || done.Result.Members == nil {
		t.Fatalf("add members: %s %+v", done.State, done.Error)
	}
	if n := len(done.Result.Members.Added); n != 30 {
		t.Fatalf("added %d users, want 30", n)
	}

	// Remove 10: eight in one call, two one by one (by e-mail and by id).
	var remove []string
	for _, u := range users[:8] {
		remove = append(remove, u.Email)
	}
	r = g.do("POST", membersPath("SHIP", "MOH", "billing")+"/remove", "SHIP/MOH", map[string]any{"users": remove})
	op = g.accepted("remove members", r)
	if done := g.await("SHIP/MOH", op.Id, 30*time.Second); done.State != api.Succeeded || len(done.Result.Members.Removed) != 8 {
		t.Fatalf("remove members: %s %+v %+v", done.State, done.Error, done.Result)
	}
	for _, who := range []string{users[8].Email, users[9].ID} {
		r = g.do("DELETE", membersPath("SHIP", "MOH", "billing")+"/"+url.PathEscape(who), "SHIP/MOH", nil)
		op = g.accepted("remove "+who, r)
		if done := g.await("SHIP/MOH", op.Id, 10*time.Second); done.State != api.Succeeded {
			t.Fatalf("remove %s: %s %+v", who, done.State, done.Error)
		}
	}
	close(stop)
	wg.Wait()
	if after := readRequests(g.up.stats("SHIP")); after != before {
		t.Fatalf("reads made %d upstream read requests, want 0", after-before)
	}

	got, page := g.members("SHIP/MOH", "billing", 7, "")
	want := simEmails(users[10:30])
	if !slices.Equal(emails(got), want) {
		t.Fatalf("mirror members %v\nwant %v", emails(got), want)
	}
	if sim := simEmails(g.up.sim.Members("SHIP", "SHIP:MOH:billing")); !slices.Equal(sim, want) {
		t.Fatalf("TechPass members %v\nwant %v", sim, want)
	}
	if page.SyncedAt == nil {
		t.Fatal("a group created through the gateway has a known member list: syncedAt missing")
	}
	// Filter by prefix.
	prefixed, _ := g.members("SHIP/MOH", "billing", 0, "USER02")
	if want := simEmails(users[19:29]); !slices.Equal(emails(prefixed), want) {
		t.Fatalf("prefix user02: %v, want %v", emails(prefixed), want)
	}
	var grp api.Group
	g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil).decode(t, &grp)
	if grp.MemberCount == nil || *grp.MemberCount != 20 {
		t.Fatalf("memberCount %v, want 20", grp.MemberCount)
	}

	// What the mirror shows done needs no upstream request at all: the
	// answer is 200 with the operation already succeeded.
	requests := g.up.stats("SHIP").Requests
	r = g.do("POST", membersPath("SHIP", "MOH", "billing"), "SHIP/MOH", map[string]any{"users": []string{users[12].Email, users[13].ID}})
	if r.status != http.StatusOK {
		t.Fatalf("adding present members: %d %s, want 200", r.status, r.body)
	}
	r.decode(t, &op)
	if op.State != api.Succeeded || len(op.Result.Members.Unchanged) != 2 || len(op.Result.Members.Added) != 0 {
		t.Fatalf("adding present members: %s %+v", op.State, op.Result)
	}
	r = g.do("DELETE", membersPath("SHIP", "MOH", "billing")+"/"+users[0].Email, "SHIP/MOH", nil)
	if r.status != http.StatusOK {
		t.Fatalf("removing an absent member: %d %s, want 200", r.status, r.body)
	}
	if g.do("GET", "/v1/operations/"+op.Id, "SHIP/MOH", nil).status != http.StatusOK {
		t.Fatal("the recorded operation cannot be read back")
	}
	if n := g.up.stats("SHIP").Requests; n != requests {
		t.Fatalf("no-op changes made %d upstream requests, want 0", n-requests)
	}
}

// An unknown user fails the change, naming the user, before any member is
// changed; bad identifiers and mixed changes are refused at once.
func TestMembersUnknownUserAndBadInput(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	g.createActive("SHIP/MOH", "ops")
	users := techpasssim.DemoUsers(2)
	r := g.do("POST", membersPath("SHIP", "MOH", "ops"), "SHIP/MOH", map[string]any{"users": []string{users[0].Email, "ghost@example.gov.sg"}})
	op := g.accepted("add", r)
	done := g.await("SHIP/MOH", op.Id, 10*time.Second)
	if done.State != api.Failed || done.Error == nil || done.Error.Status != 422 || !strings.Contains(*done.Error.Detail, "ghost@example.gov.sg") {
		t.Fatalf("unknown user: %s %+v, want failed 422 naming the user", done.State, done.Error)
	}
	if ms := g.up.sim.Members("SHIP", "SHIP:MOH:ops"); len(ms) != 0 {
		t.Fatalf("TechPass members %v after a failed change, want none", ms)
	}
	if got, _ := g.members("SHIP/MOH", "ops", 0, ""); len(got) != 0 {
		t.Fatalf("mirror members %v after a failed change, want none", got)
	}
	// The failed change no longer counts as pending: removing a user the
	// mirror knows is absent is answered at once.
	if r := g.do("DELETE", membersPath("SHIP", "MOH", "ops")+"/"+users[0].Email, "SHIP/MOH", nil); r.status != http.StatusOK {
		t.Fatalf("no-op remove after a failed change: %d %s, want 200", r.status, r.body)
	}
	for _, body := range []any{
		map[string]any{"users": []string{"not an e-mail"}},
		map[string]any{"users": []string{}},
		map[string]any{"users": make([]string, 101)},
	} {
		r := g.badInput().do("POST", membersPath("SHIP", "MOH", "ops"), "SHIP/MOH", body)
		if r.status != http.StatusBadRequest && r.status != http.StatusUnprocessableEntity {
			t.Errorf("body %v: %d %s, want 400 or 422", body, r.status, r.body)
		} else {
			r.problem(t)
		}
	}
	r = g.do("DELETE", membersPath("SHIP", "MOH", "ops")+"/nobody", "SHIP/MOH", nil)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("remove a malformed user: %d %s, want 422", r.status, r.body)
	}
	if r := g.do("GET", membersPath("SHIP", "MOH", "nope"), "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Fatalf("members of a missing group: %d, want 404", r.status)
	}
	if r := g.do("GET", membersPath("SHIP", "MOH", "ops")+"?cursor=garbage", "SHIP/MOH", nil); r.status != http.StatusBadRequest {
		t.Fatalf("a forged cursor: %d %s, want 400", r.status, r.body)
	}
}

// TestPatchIfMatch: of two updates sent with the same ETag one is accepted
// and the other refused with 412; the description reaches TechPass.
func TestPatchIfMatch(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	g.createActive("SHIP/MOH", "billing")
	r := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil)
	tag := r.header.Get("ETag")
	if tag == "" {
		t.Fatal("GET group has no ETag")
	}
	patch := func(desc, ifMatch string) response {
		req, _ := http.NewRequest("PATCH", g.base+groupsPath("SHIP", "MOH")+"/billing", strings.NewReader(fmt.Sprintf(`{"description":%q}`, desc)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		return g.send(req)
	}
	var wg sync.WaitGroup
	results := make([]response, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = patch(fmt.Sprintf("writer %d", i), tag)
		}()
	}
	wg.Wait()
	codes := []int{results[0].status, results[1].status}
	slices.Sort(codes)
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusPreconditionFailed {
		t.Fatalf("two PATCHes with one If-Match: %v, want one 202 and one 412 (%s / %s)", codes, results[0].body, results[1].body)
	}
	winner := results[0]
	if winner.status != http.StatusAccepted {
		winner = results[1]
	}
	var op api.Operation
	winner.decode(t, &op)
	if op.Kind != api.GroupUpdate || winner.header.Get("ETag") == tag {
		t.Fatalf("accepted update: kind %s, ETag %q (old %q)", op.Kind, winner.header.Get("ETag"), tag)
	}
	if done := g.await("SHIP/MOH", op.Id, 10*time.Second); done.State != api.Succeeded {
		t.Fatalf("update: %s %+v", done.State, done.Error)
	}
	var desc string
	for _, grp := range g.up.sim.Groups("SHIP") {
		if grp.Name == "SHIP:MOH:billing" {
			desc = grp.Description
		}
	}
	var loser response
	if results[0].status == http.StatusAccepted {
		loser = results[1]
	} else {
		loser = results[0]
	}
	if p := loser.problem(t); p.Status != 412 {
		t.Fatalf("loser problem %+v", p)
	}
	var grp api.Group
	g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil).decode(t, &grp)
	if desc != grp.Description || !strings.HasPrefix(desc, "writer ") {
		t.Fatalf("TechPass description %q, mirror %q", desc, grp.Description)
	}
	for _, bad := range []string{tag, `W/` + *grp.Etag, `"nonsense"`} {
		if r := patch("again", bad); r.status != http.StatusPreconditionFailed {
			t.Errorf("If-Match %s: %d %s, want 412", bad, r.status, r.body)
		}
	}
	if r := patch("any", "*"); r.status != http.StatusAccepted {
		t.Fatalf("If-Match *: %d %s", r.status, r.body)
	}
	if r := patch("none", ""); r.status != http.StatusAccepted {
		t.Fatalf("no If-Match: %d %s", r.status, r.body)
	}
	if r := patch("x", `"r1"`); r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}
	if r := g.do("PATCH", groupsPath("SHIP", "MOH")+"/nope", "SHIP/MOH", map[string]string{"description": "x"}); r.status != http.StatusNotFound {
		t.Fatalf("PATCH a missing group: %d, want 404", r.status)
	}
	req, _ := http.NewRequest("PATCH", g.base+groupsPath("SHIP", "MOH")+"/nope", strings.NewReader(`{"description":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
	req.Header.Set("If-Match", "*")
	if r := g.send(req); r.status != http.StatusPreconditionFailed {
		t.Fatalf("If-Match * on a missing group: %d, want 412", r.status)
	}
	// The description is required: an empty body changes nothing.
	before := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil).header.Get("ETag")
	if r := g.badInput().do("PATCH", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", map[string]any{}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("PATCH {}: %d %s, want 422", r.status, r.body)
	}
	if after := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil).header.Get("ETag"); after != before {
		t.Fatalf("a refused PATCH moved the ETag from %s to %s", before, after)
	}
	// A replay of an update answers as the original did, even though the
	// ETag it named is stale by then.
	replay := func() response {
		req, _ := http.NewRequest("PATCH", g.base+groupsPath("SHIP", "MOH")+"/billing", strings.NewReader(`{"description":"replayed"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
		req.Header.Set("If-Match", before+`, "r999999"`)
		req.Header.Set("Idempotency-Key", `"patch-1"`)
		return g.send(req)
	}
	first, second := replay(), replay()
	var a, b api.Operation
	first.decode(t, &a)
	second.decode(t, &b)
	// The second may find it done already (200).
	if first.status != http.StatusAccepted || (second.status != http.StatusAccepted && second.status != http.StatusOK) || a.Id != b.Id {
		t.Fatalf("replayed PATCH: %d then %d, operations %s and %s; want the same operation twice", first.status, second.status, a.Id, b.Id)
	}
}

// A tenant-admin lists every project's groups, page by page.
func TestTenantAdminListsAcrossProjects(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	for _, n := range []string{"a1", "a2", "b1"} {
		g.create("SHIP/MOH", n)
		g.create("SHIP/MOE", n)
	}
	g.create("OTHER/MOH", "hidden")
	admin, _ := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "SHIP"})
	g.keys["admin SHIP"] = admin
	var got []string
	cursor := ""
	for {
		path := "/v1/tenants/SHIP/groups?limit=4"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := g.do("GET", path, "admin SHIP", nil)
		if r.status != http.StatusOK {
			t.Fatalf("tenant list: %d %s", r.status, r.body)
		}
		var gl api.GroupList // fresh: a last page has no nextCursor to overwrite
		r.decode(t, &gl)
		for _, grp := range gl.Groups {
			got = append(got, grp.FullName)
		}
		if gl.NextCursor == nil {
			break
		}
		cursor = *gl.NextCursor
	}
	want := []string{"SHIP:MOE:a1", "SHIP:MOE:a2", "SHIP:MOE:b1", "SHIP:MOH:a1", "SHIP:MOH:a2", "SHIP:MOH:b1"}
	if !slices.Equal(got, want) {
		t.Fatalf("tenant groups %v, want %v", got, want)
	}
	var gl api.GroupList
	g.do("GET", "/v1/tenants/SHIP/groups?project=moh&prefix=A", "admin SHIP", nil).decode(t, &gl)
	if len(gl.Groups) != 2 || gl.Groups[0].FullName != "SHIP:MOH:a1" {
		t.Fatalf("filtered tenant list %+v", gl.Groups)
	}
	if r := g.do("GET", "/v1/tenants/SHIP/groups", "SHIP/MOH", nil); r.status != http.StatusForbidden {
		t.Fatalf("a project key listing the tenant: %d, want 403", r.status)
	}
	// A project's own list pages too.
	g.do("GET", groupsPath("SHIP", "MOH")+"?limit=2&prefix=a", "SHIP/MOH", nil).decode(t, &gl)
	if len(gl.Groups) != 2 || gl.NextCursor != nil {
		t.Fatalf("project list with prefix a, limit 2: %d groups, next %v", len(gl.Groups), gl.NextCursor)
	}
}

// A change the mirror seems to show done is still queued when an earlier
// change of the group, not yet carried out, may undo it: the last request
// wins in TechPass, as the client meant.
func TestMembersQueuedChangesKeepOrder(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 150 * time.Millisecond})
	g.createActive("SHIP/MOH", "crew")
	u := techpasssim.DemoUsers(1)[0]
	r := g.do("POST", membersPath("SHIP", "MOH", "crew"), "SHIP/MOH", map[string]any{"users": []string{u.Email}})
	var op api.Operation
	r.decode(t, &op)
	g.await("SHIP/MOH", op.Id, 10*time.Second)

	g.create("SHIP/MOH", "ahead") // holds the project's queue for a slot
	r = g.do("DELETE", membersPath("SHIP", "MOH", "crew")+"/"+u.Email, "SHIP/MOH", nil)
	removal := g.accepted("remove", r)
	r = g.do("POST", membersPath("SHIP", "MOH", "crew"), "SHIP/MOH", map[string]any{"users": []string{u.Email}})
	if r.status != http.StatusAccepted {
		t.Fatalf("add back while the removal is queued: %d %s, want 202 (queued after it)", r.status, r.body)
	}
	var addBack api.Operation
	r.decode(t, &addBack)
	g.await("SHIP/MOH", removal.Id, 10*time.Second)
	if done := g.await("SHIP/MOH", addBack.Id, 10*time.Second); done.State != api.Succeeded || len(done.Result.Members.Added) != 1 {
		t.Fatalf("add back: %s %+v %+v", done.State, done.Error, done.Result)
	}
	if ms := g.up.sim.Members("SHIP", "SHIP:MOH:crew"); len(ms) != 1 {
		t.Fatalf("TechPass members %v, want %s back", ms, u.Email)
	}
	got, _ := g.members("SHIP/MOH", "crew", 0, "")
	if len(got) != 1 {
		t.Fatalf("mirror members %v, want one", got)
	}
	// Idle again: a no-op is answered at once.
	if r := g.do("POST", membersPath("SHIP", "MOH", "crew"), "SHIP/MOH", map[string]any{"users": []string{u.ID}}); r.status != http.StatusOK {
		t.Fatalf("add a present member when idle: %d, want 200", r.status)
	}
}

// A key scoped to members only can change members and follow its own
// operations, and nothing else.
func TestMembersOnlyKey(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 20 * time.Millisecond})
	g.createActive("SHIP/MOH", "crew")
	key, _ := g.issueKey("operator", map[string]any{"name": "hr sync", "role": "project", "tenant": "SHIP", "project": "MOH",
		"scopes": []string{"members:read", "members:write"}})
	g.keys["SHIP/MOH members"] = key
	r := g.do("POST", membersPath("SHIP", "MOH", "crew"), "SHIP/MOH members", map[string]any{"users": []string{techpasssim.DemoUsers(1)[0].Email}})
	op := g.accepted("add as a members-only key", r)
	if done := g.await("SHIP/MOH members", op.Id, 10*time.Second); done.State != api.Succeeded {
		t.Fatalf("members-only key following its operation: %s", done.State)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH"), "SHIP/MOH members", nil); r.status != http.StatusForbidden {
		t.Fatalf("members-only key listing groups: %d, want 403", r.status)
	}
	create := g.create("SHIP/MOH", "other")
	if r := g.do("GET", "/v1/operations/"+create.Id, "SHIP/MOH members", nil); r.status != http.StatusForbidden {
		t.Fatalf("members-only key reading a group create: %d, want 403", r.status)
	}
}
