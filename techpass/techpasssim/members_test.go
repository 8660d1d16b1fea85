package techpasssim_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

func userPath(t testing.TB, identifier string) string {
	return route(t, techpass.RouteGetUser).Path("identifier", identifier)
}

func membersPath(t testing.TB, namespace, groupID string) string {
	return route(t, techpass.RouteListMembers).Path("namespace", namespace, "groupId", groupID)
}

func memberPath(t testing.TB, namespace, groupID, userID string) string {
	return route(t, techpass.RouteRemoveMember).Path("namespace", namespace, "groupId", groupID, "userId", userID)
}

// createGroup creates a group through the Automation API.
func (e *env) createGroup(name, token string) techpass.Group {
	e.t.Helper()
	r := e.paced(http.MethodPost, groupsPath(e.t, ns), shipKey, token, techpass.CreateGroupRequest{Name: name})
	wantStatus(e.t, r, http.StatusCreated, "")
	return decode[techpass.Group](e.t, r)
}

func TestDemoUsers(t *testing.T) {
	users := techpasssim.DemoUsers(3)
	want := techpass.User{ID: "00000000-0000-4000-8000-000000000002", Email: "user002@example.gov.sg", DisplayName: "User 002"}
	if len(users) != 3 || users[1] != want {
		t.Fatalf("DemoUsers(3) = %+v", users)
	}
	if !slices.Equal(techpasssim.DemoUsers(3), users) {
		t.Error("DemoUsers is not deterministic")
	}
	if got := techpasssim.DemoUsers(0); len(got) != 0 {
		t.Errorf("DemoUsers(0) = %v", got)
	}
	sim := techpasssim.New(techpasssim.Config{Users: techpasssim.DemoUsers(120)})
	if got := sim.Users(); len(got) != 120 || got[0].Email != "user001@example.gov.sg" {
		t.Errorf("seeded users: %d, first %+v", len(got), got[0])
	}
}

func TestAddUser(t *testing.T) {
	sim := techpasssim.New(techpasssim.Config{Users: techpasssim.DemoUsers(1)})
	u, err := sim.AddUser(techpass.User{Email: "Alice.Tan@Example.gov.sg", DisplayName: "Alice Tan"})
	if err != nil || !uuidRE.MatchString(u.ID) || u.Email != "Alice.Tan@Example.gov.sg" {
		t.Fatalf("AddUser without id = %+v, %v", u, err)
	}
	u, err = sim.AddUser(techpass.User{ID: "ABCDEF01-2345-4678-9ABC-DEF012345678", Email: "bob@example.gov.sg"})
	if err != nil || u.ID != "abcdef01-2345-4678-9abc-def012345678" {
		t.Errorf("AddUser with an upper-case id = %+v, %v; want it stored in lower case", u, err)
	}
	invalid := map[string]techpass.User{
		"id not a UUID":         {ID: "not-a-uuid", Email: "c@example.gov.sg"},
		"id too short":          {ID: "00000000-0000-4000-8000-00000000000", Email: "c@example.gov.sg"},
		"no e-mail":             {},
		"e-mail without at":     {Email: "carol.example.gov.sg"},
		"e-mail with a name":    {Email: "Carol <carol@example.gov.sg>"},
		"e-mail with spaces":    {Email: " carol@example.gov.sg"},
		"e-mail too long":       {Email: strings.Repeat("c", 250) + "@x.sg"},
		"control in name":       {Email: "c@example.gov.sg", DisplayName: "Carol\x00"},
		"display name too long": {Email: "c@example.gov.sg", DisplayName: strings.Repeat("n", techpasssim.MaxDisplayNameLength+1)},
	}
	for name, u := range invalid {
		if _, err := sim.AddUser(u); !errors.Is(err, techpasssim.ErrInvalidUser) {
			t.Errorf("%s: AddUser = %v, want ErrInvalidUser", name, err)
		}
	}
	for name, u := range map[string]techpass.User{
		"same e-mail in another case": {Email: "ALICE.TAN@example.GOV.SG"},
		"same id":                     {ID: techpasssim.DemoUsers(1)[0].ID, Email: "other@example.gov.sg"},
	} {
		if _, err := sim.AddUser(u); !errors.Is(err, techpasssim.ErrUserExists) {
			t.Errorf("%s: AddUser = %v, want ErrUserExists", name, err)
		}
	}
	got := sim.Users()
	if len(got) != 3 || got[0].Email != "Alice.Tan@Example.gov.sg" || got[1].Email != "bob@example.gov.sg" {
		t.Errorf("Users = %+v, want 3 sorted by e-mail", got)
	}

	// Seed users are checked by Config.Validate, every problem at once.
	err = techpasssim.Config{Users: []techpass.User{{Email: "x"}, {Email: "a@b.sg"}, {Email: "A@B.SG"}}}.Validate()
	if !errors.Is(err, techpasssim.ErrInvalidConfig) || !errors.Is(err, techpasssim.ErrInvalidUser) || !errors.Is(err, techpasssim.ErrUserExists) {
		t.Errorf("Validate = %v", err)
	}
	if err := (techpasssim.Config{MemberPageSize: -1}).Validate(); !errors.Is(err, techpasssim.ErrInvalidConfig) {
		t.Errorf("negative page size: %v", err)
	}
}

// TestGetUser looks users up through the Automation API: the route names no
// namespace, so the API key says which namespace the request counts for,
// and every gateway rule applies to that namespace as to the group routes.
func TestGetUser(t *testing.T) {
	users := append(techpasssim.DemoUsers(2), techpass.User{
		ID: "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", Email: "O'Neil+ops/x%y@Example.gov.sg", DisplayName: "Pat O'Neil",
	})
	e := newEnv(t, techpasssim.Config{Users: users}, shipNamespace(), dockNamespace())
	tok := e.token(shipClient, shipSecret)
	dockTok := e.token(dockClient, dockSecret)

	for _, id := range []string{users[2].Email, strings.ToLower(users[2].Email), strings.ToUpper(users[2].Email), users[2].ID} {
		r := e.paced(http.MethodGet, userPath(t, id), shipKey, tok, nil)
		wantStatus(t, r, http.StatusOK, "")
		if got := decode[techpass.User](t, r); got != users[2] {
			t.Errorf("GET %s = %+v, want %+v", id, got, users[2])
		}
	}
	r := e.paced(http.MethodGet, userPath(t, users[0].Email), dockKey, dockTok, nil)
	wantStatus(t, r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"displayName":"User 001"`) || !strings.Contains(string(r.body), `"email":"user001@example.gov.sg"`) {
		t.Errorf("wire shape: %s", r.body)
	}
	for _, id := range []string{"nobody@example.gov.sg", strings.ToUpper(users[2].ID), "00000000-0000-4000-8000-000000000099"} {
		wantStatus(t, e.paced(http.MethodGet, userPath(t, id), shipKey, tok, nil), http.StatusNotFound, "user not found")
	}

	// The gateway: no key, an unknown key, a token of the other namespace.
	wantStatus(t, e.paced(http.MethodGet, userPath(t, users[0].ID), "", tok, nil), http.StatusForbidden, "Forbidden")
	wantStatus(t, e.paced(http.MethodGet, userPath(t, users[0].ID), shipKey+"x", tok, nil), http.StatusForbidden, "Forbidden")
	wantStatus(t, e.paced(http.MethodGet, userPath(t, users[0].ID), dockKey, tok, nil), http.StatusUnauthorized, "Unauthorized")

	st := e.sim.Stats()
	ship, dock := st.Namespaces[ns], st.Namespaces["DOCK"]
	if ship.Requests != 7 || ship.ByRoute[techpass.RouteGetUser] != 7 || ship.Unauthorized != 0 {
		t.Errorf("SHIP requests/getUser/unauthorized = %d/%d/%d, want 7/7/0", ship.Requests, ship.ByRoute[techpass.RouteGetUser], ship.Unauthorized)
	}
	if dock.Requests != 2 || dock.ByRoute[techpass.RouteGetUser] != 2 || dock.Unauthorized != 1 {
		t.Errorf("DOCK requests/getUser/unauthorized = %d/%d/%d, want 2/2/1", dock.Requests, dock.ByRoute[techpass.RouteGetUser], dock.Unauthorized)
	}
	if st.Totals.Forbidden != 2 {
		t.Errorf("forbidden = %d, want 2", st.Totals.Forbidden)
	}

	// Rate enforcement is the namespace's, whatever the route: a lookup
	// right after a list is a violation, in SHIP only.
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	r = e.api(http.MethodGet, userPath(t, users[0].ID), shipKey, tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests, "Too Many Requests")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	wantStatus(t, e.api(http.MethodGet, userPath(t, users[0].ID), dockKey, dockTok, nil), http.StatusOK, "")
	if st := e.sim.Stats(); st.Namespaces[ns].Violations != 1 || st.Namespaces["DOCK"].Violations != 0 {
		t.Errorf("violations SHIP/DOCK = %d/%d, want 1/0", st.Namespaces[ns].Violations, st.Namespaces["DOCK"].Violations)
	}

	// Faults apply too.
	if err := e.sim.SetFaults(techpasssim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if r := e.paced(http.MethodGet, userPath(t, users[0].ID), shipKey, tok, nil); r.status < 500 {
		t.Errorf("with server errors injected: %d", r.status)
	}
	if got := e.sim.Stats().Namespaces[ns].ServerErrors; got != 1 {
		t.Errorf("server errors = %d, want 1", got)
	}
}

func TestMembersAPI(t *testing.T) {
	users := techpasssim.DemoUsers(3)
	e := newEnv(t, techpasssim.Config{Users: users})
	tok := e.token(shipClient, shipSecret)
	g := e.createGroup("SHIP:MOH:billing", tok)
	add := func(groupID string, body any) response {
		t.Helper()
		return e.paced(http.MethodPost, membersPath(t, ns, groupID), shipKey, tok, body)
	}
	remove := func(groupID, userID string) response {
		t.Helper()
		return e.paced(http.MethodDelete, memberPath(t, ns, groupID, userID), shipKey, tok, nil)
	}

	r := add(g.ID, techpass.AddMemberRequest{UserID: users[1].ID})
	wantStatus(t, r, http.StatusNoContent, "")
	if len(r.body) != 0 {
		t.Errorf("add body = %q, want none", r.body)
	}
	wantStatus(t, add(g.ID, techpass.AddMemberRequest{UserID: users[1].ID}), http.StatusConflict, "user is already a member of the group")
	wantStatus(t, add(g.ID, techpass.AddMemberRequest{UserID: users[0].ID}), http.StatusNoContent, "")
	wantStatus(t, add(g.ID, techpass.AddMemberRequest{UserID: "00000000-0000-4000-8000-000000000099"}), http.StatusNotFound, "user not found")
	wantStatus(t, add(g.ID, techpass.AddMemberRequest{UserID: users[2].Email}), http.StatusNotFound, "user not found") // ids only
	wantStatus(t, add(g.ID, "not an object"), http.StatusBadRequest, "Invalid request body")
	wantStatus(t, add("6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", techpass.AddMemberRequest{UserID: users[0].ID}), http.StatusNotFound, "group not found")

	if got := e.sim.Members(ns, "ship:moh:BILLING"); !slices.Equal(got, users[:2]) {
		t.Errorf("Members = %+v, want the first two users", got)
	}

	wantStatus(t, remove(g.ID, users[1].ID), http.StatusNoContent, "")
	wantStatus(t, remove(g.ID, users[1].ID), http.StatusNotFound, "user is not a member of the group")
	wantStatus(t, remove(g.ID, users[2].ID), http.StatusNotFound, "user is not a member of the group")
	wantStatus(t, remove("6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", users[0].ID), http.StatusNotFound, "group not found")
	if got := e.sim.Members(ns, g.Name); !slices.Equal(got, users[:1]) {
		t.Errorf("Members after remove = %+v", got)
	}

	// Deleting a group drops its members: a group of the same name starts
	// empty.
	wantStatus(t, e.paced(http.MethodDelete, groupPath(t, ns, g.ID), shipKey, tok, nil), http.StatusNoContent, "")
	if got := e.sim.Members(ns, g.Name); got != nil {
		t.Errorf("Members of a deleted group = %+v, want nil", got)
	}
	g2 := e.createGroup(g.Name, tok)
	if got := e.sim.Members(ns, g2.Name); got == nil || len(got) != 0 {
		t.Errorf("Members of the recreated group = %#v, want empty", got)
	}

	// A dynamic group's members are the rule's: the API refuses both ways,
	// whether or not the user is a member.
	dyn, err := e.sim.CreateGroupDirect(ns, "SHIP:all-staff", "everyone", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AddMemberDirect(ns, dyn.Name, users[0].ID); err != nil {
		t.Fatal(err)
	}
	const dynamicMsg = "members of a dynamic group cannot be changed"
	wantStatus(t, add(dyn.ID, techpass.AddMemberRequest{UserID: users[1].ID}), http.StatusForbidden, dynamicMsg)
	wantStatus(t, add(dyn.ID, techpass.AddMemberRequest{UserID: users[0].ID}), http.StatusForbidden, dynamicMsg)
	wantStatus(t, remove(dyn.ID, users[0].ID), http.StatusForbidden, dynamicMsg)
	wantStatus(t, remove(dyn.ID, users[1].ID), http.StatusForbidden, dynamicMsg)
	r = e.paced(http.MethodGet, membersPath(t, ns, dyn.ID), shipKey, tok, nil)
	wantStatus(t, r, http.StatusOK, "")
	if page := decode[techpass.MemberPage](t, r); !slices.Equal(page.Members, users[:1]) || page.Next != "" {
		t.Errorf("dynamic group's members = %+v", page)
	}
	if st := e.sim.Stats().Namespaces[ns]; st.Violations != 0 {
		t.Errorf("violations = %d", st.Violations)
	}
}

// TestMemberPagination pages through 45 members 20 at a time: every member
// once, in object id order, the last page without a cursor; members added
// or removed between pages neither repeat nor hide the others.
func TestMemberPagination(t *testing.T) {
	users := techpasssim.DemoUsers(50)
	e := newEnv(t, techpasssim.Config{Users: users, MemberPageSize: 20})
	tok := e.token(shipClient, shipSecret)
	g := e.createGroup("SHIP:big", tok)
	for _, i := range rangeDesc(45) { // added out of order
		if err := e.sim.AddMemberDirect(ns, g.Name, users[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	page := func(cursor string) techpass.MemberPage {
		t.Helper()
		p := membersPath(t, ns, g.ID)
		if cursor != "" {
			p += "?" + url.Values{"cursor": {cursor}}.Encode()
		}
		r := e.paced(http.MethodGet, p, shipKey, tok, nil)
		wantStatus(t, r, http.StatusOK, "")
		if !strings.Contains(string(r.body), `"members":[`) {
			t.Errorf("page body %s lacks a members array", r.body)
		}
		return decode[techpass.MemberPage](t, r)
	}
	var got []techpass.User
	var sizes []int
	cursor := ""
	for {
		p := page(cursor)
		got = append(got, p.Members...)
		sizes = append(sizes, len(p.Members))
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if !slices.Equal(got, users[:45]) || !slices.Equal(sizes, []int{20, 20, 5}) {
		t.Errorf("pages of %v: %d members, want 20, 20, 5 and users 1 to 45 in order", sizes, len(got))
	}

	// Exactly two full pages: the second says it is the last.
	if err := e.sim.RemoveMemberDirect(ns, g.Name, users[44].ID); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{43, 42, 41, 40} {
		if err := e.sim.RemoveMemberDirect(ns, g.Name, users[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	p1 := page("")
	p2 := page(p1.Next)
	if len(p2.Members) != 20 || p2.Next != "" {
		t.Errorf("second of two full pages: %d members, next %q", len(p2.Members), p2.Next)
	}

	// Changes between pages: remove the last member of page 1 and one of
	// page 2, add one before the cursor and one after.
	p1 = page("")
	for _, i := range []int{19, 25} {
		if err := e.sim.RemoveMemberDirect(ns, g.Name, users[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	extra := techpass.User{ID: "00000000-0000-4000-8000-00000000000a", Email: "late@example.gov.sg"} // sorts before the cursor
	if _, err := e.sim.AddUser(extra); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{extra.ID, users[45].ID} {
		if err := e.sim.AddMemberDirect(ns, g.Name, id); err != nil {
			t.Fatal(err)
		}
	}
	rest := page(p1.Next)
	seen := map[string]int{}
	for _, u := range append(p1.Members, rest.Members...) {
		seen[u.ID]++
	}
	for i := range 40 {
		if i == 25 {
			continue // removed while paging: may or may not show
		}
		if seen[users[i].ID] != 1 {
			t.Errorf("user %d seen %d times, want once", i+1, seen[users[i].ID])
		}
	}
	if seen[users[45].ID] != 1 || seen[users[25].ID] != 0 || seen[extra.ID] != 0 {
		t.Errorf("added after the cursor: seen %d; removed after it: seen %d; added before it: seen %d",
			seen[users[45].ID], seen[users[25].ID], seen[extra.ID])
	}

	// Bad cursors are refused, a missing group is 404.
	valid := p1.Next
	for _, bad := range []string{
		"cursor=!!!",
		"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("after:not-a-uuid")),
		"cursor=" + base64.RawURLEncoding.EncodeToString([]byte(users[3].ID)),
		"cursor=" + valid + "%3D",
		"cursor=" + valid + "&cursor=" + valid,
		"cursor=" + url.QueryEscape(valid[:10]+"\n"+valid[10:]),
		"cursor=%zz",
		"cursor=" + strings.Repeat("A", 100),
	} {
		wantStatus(t, e.paced(http.MethodGet, membersPath(t, ns, g.ID)+"?"+bad, shipKey, tok, nil), http.StatusBadRequest, "invalid cursor")
	}
	wantStatus(t, e.paced(http.MethodGet, membersPath(t, ns, g.ID)+"?other=1", shipKey, tok, nil), http.StatusOK, "")
	wantStatus(t, e.paced(http.MethodGet, membersPath(t, ns, "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"), shipKey, tok, nil), http.StatusNotFound, "group not found")
}

// rangeDesc returns n-1 down to 0.
func rangeDesc(n int) []int {
	out := make([]int, n)
	for i := range n {
		out[i] = n - 1 - i
	}
	return out
}

func TestUpdateGroup(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	tok := e.token(shipClient, shipSecret)
	g := e.createGroup("SHIP:MOH:billing", tok)
	patch := func(id string, body any) response {
		t.Helper()
		return e.paced(http.MethodPatch, groupPath(t, ns, id), shipKey, tok, body)
	}
	r := patch(g.ID, techpass.UpdateGroupRequest{Description: "Billing, MOH"})
	wantStatus(t, r, http.StatusOK, "")
	want := g
	want.Description = "Billing, MOH"
	if got := decode[techpass.Group](t, r); !equalGroups([]techpass.Group{got}, []techpass.Group{want}) {
		t.Errorf("updated = %+v, want %+v", got, want)
	}
	if got := e.sim.Groups(ns); got[0].Description != "Billing, MOH" {
		t.Errorf("stored description = %q", got[0].Description)
	}
	wantStatus(t, patch(g.ID, techpass.UpdateGroupRequest{Description: strings.Repeat("é", techpasssim.MaxGroupDescriptionLength)}), http.StatusOK, "")
	wantStatus(t, patch(g.ID, techpass.UpdateGroupRequest{Description: strings.Repeat("d", techpasssim.MaxGroupDescriptionLength+1)}),
		http.StatusBadRequest, "group description must be at most 1024 characters")
	wantStatus(t, patch(g.ID, map[string]string{}), http.StatusBadRequest, "group description is required")
	wantStatus(t, patch(g.ID, "text"), http.StatusBadRequest, "Invalid request body")
	r = patch(g.ID, techpass.UpdateGroupRequest{})
	wantStatus(t, r, http.StatusOK, "")
	if got := decode[techpass.Group](t, r); got.Description != "" {
		t.Errorf("cleared description = %q", got.Description)
	}
	wantStatus(t, patch("6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", techpass.UpdateGroupRequest{}), http.StatusNotFound, "group not found")

	// Create is bounded alike.
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok,
		techpass.CreateGroupRequest{Name: "long", Description: strings.Repeat("d", techpasssim.MaxGroupDescriptionLength+1)}),
		http.StatusBadRequest, "group description must be at most 1024 characters")
}

// TestStatsByRoute: requests are counted per route, summing to Requests;
// ResetStats forgets them; the JSON carries them.
func TestStatsByRoute(t *testing.T) {
	users := techpasssim.DemoUsers(1)
	e := newEnv(t, techpasssim.Config{Users: users})
	tok := e.token(shipClient, shipSecret)
	g := e.createGroup("g", tok)
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	wantStatus(t, e.paced(http.MethodGet, userPath(t, users[0].Email), shipKey, tok, nil), http.StatusOK, "")
	wantStatus(t, e.paced(http.MethodPost, membersPath(t, ns, g.ID), shipKey, tok, techpass.AddMemberRequest{UserID: users[0].ID}), http.StatusNoContent, "")
	wantStatus(t, e.api(http.MethodGet, membersPath(t, ns, g.ID), shipKey, tok, nil), http.StatusTooManyRequests, "") // counted too
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), "", tok, nil), http.StatusForbidden, "")                 // not a request

	st := e.sim.Stats().Namespaces[ns]
	want := map[techpass.RouteName]int{
		techpass.RouteCreateGroup: 1, techpass.RouteListGroups: 2, techpass.RouteGetUser: 1,
		techpass.RouteAddMember: 1, techpass.RouteListMembers: 1,
	}
	sum := 0
	for _, n := range st.ByRoute {
		sum += n
	}
	if len(st.ByRoute) != len(want) || sum != st.Requests {
		t.Errorf("byRoute = %v (sum %d, requests %d), want %v", st.ByRoute, sum, st.Requests, want)
	}
	for k, v := range want {
		if st.ByRoute[k] != v {
			t.Errorf("byRoute[%s] = %d, want %d", k, st.ByRoute[k], v)
		}
	}
	r := e.do(mustRequest(t, http.MethodGet, e.srv.URL+"/_sim/stats", ""))
	if !strings.Contains(string(r.body), `"byRoute":{`) || !strings.Contains(string(r.body), `"listGroups":2`) {
		t.Errorf("stats JSON lacks byRoute: %s", r.body)
	}
	e.sim.ResetStats()
	if st := e.sim.Stats().Namespaces[ns]; st.ByRoute == nil || len(st.ByRoute) != 0 {
		t.Errorf("byRoute after reset = %#v, want empty", st.ByRoute)
	}
}

// TestDirectChanges: the portal-like methods change state without counting
// a request or moving rate enforcement, and report what is wrong with
// errors.
func TestDirectChanges(t *testing.T) {
	users := []techpass.User{
		{ID: "00000000-0000-4000-8000-000000000003", Email: "alice@example.gov.sg"},
		{ID: "00000000-0000-4000-8000-000000000001", Email: "Bob@example.gov.sg"},
		{ID: "00000000-0000-4000-8000-000000000002", Email: "carol@example.gov.sg"},
	}
	dock := dockNamespace()
	dock.GroupLimit = 1
	e := newEnv(t, techpasssim.Config{Users: users}, shipNamespace(), dock)
	tok := e.token(shipClient, shipSecret)
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	before, _ := json.Marshal(e.sim.Stats())
	if _, err := e.sim.CreateGroupDirect("DOCK", "a", "", false); err != nil {
		t.Fatal(err)
	}

	g, err := e.sim.CreateGroupDirect(ns, "SHIP:MOH:billing", "Billing", false)
	if err != nil || !uuidRE.MatchString(g.ID) || g.GRN != "ship:SHIP:MOH:billing" || g.Description != "Billing" {
		t.Fatalf("CreateGroupDirect = %+v, %v", g, err)
	}
	for _, u := range users {
		if err := e.sim.AddMemberDirect(ns, "ship:moh:billing", u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.sim.Members(ns, "SHIP:MOH:BILLING"); len(got) != 3 || got[0] != users[0] || got[1] != users[1] || got[2] != users[2] {
		t.Errorf("Members = %+v, want sorted by e-mail case-insensitively", got)
	}
	if err := e.sim.RemoveMemberDirect(ns, "SHIP:MOH:billing", users[1].ID); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"create in unknown namespace": {second(e.sim.CreateGroupDirect("NOPE", "g", "", false)), techpasssim.ErrUnknownNamespace},
		"create duplicate":            {second(e.sim.CreateGroupDirect(ns, "ship:moh:BILLING", "", false)), techpasssim.ErrGroupExists},
		"create without a name":       {second(e.sim.CreateGroupDirect(ns, " ", "", false)), techpasssim.ErrInvalidGroup},
		"create too long a name":      {second(e.sim.CreateGroupDirect(ns, strings.Repeat("n", 100), "", false)), techpasssim.ErrInvalidGroup},
		"create past the limit":       {second(e.sim.CreateGroupDirect("DOCK", "b", "", false)), techpasssim.ErrGroupLimit},
		"add to unknown group":        {e.sim.AddMemberDirect(ns, "nope", users[0].ID), techpasssim.ErrUnknownGroup},
		"add unknown user":            {e.sim.AddMemberDirect(ns, g.Name, "00000000-0000-4000-8000-000000000009"), techpasssim.ErrUnknownUser},
		"add a member":                {e.sim.AddMemberDirect(ns, g.Name, users[0].ID), techpasssim.ErrAlreadyMember},
		"remove a non-member":         {e.sim.RemoveMemberDirect(ns, g.Name, users[1].ID), techpasssim.ErrNotMember},
		"remove from unknown ns":      {e.sim.RemoveMemberDirect("NOPE", g.Name, users[0].ID), techpasssim.ErrUnknownNamespace},
		"delete unknown group":        {e.sim.DeleteGroupDirect(ns, "nope"), techpasssim.ErrUnknownGroup},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", name, tc.err, tc.want)
		}
	}
	if e.sim.Members(ns, "nope") != nil || e.sim.Members("NOPE", g.Name) != nil {
		t.Error("Members of an absent group is not nil")
	}
	if err := e.sim.DeleteGroupDirect(ns, "SHIP:MOH:BILLING"); err != nil {
		t.Fatal(err)
	}
	if e.sim.Members(ns, g.Name) != nil || len(e.sim.Groups(ns)) != 0 {
		t.Error("DeleteGroupDirect left the group or its members")
	}

	after, _ := json.Marshal(e.sim.Stats())
	if string(after) != string(before) {
		t.Errorf("direct changes moved the stats:\nbefore %s\nafter  %s", before, after)
	}
	// Nor did they take a rate slot: a paced request is fine, an immediate
	// one still a violation.
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
	wantStatus(t, e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusTooManyRequests, "")
}

func second[T any](_ T, err error) error { return err }
