package techpass_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// wantStatus fails unless err is an *techpass.Error with status and, when
// msg is not empty, that message, and is not worth retrying.
func wantStatus(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var ae *techpass.Error
	if !errors.As(err, &ae) || ae.Status != status || (msg != "" && ae.Message != msg) {
		t.Fatalf("err = %v, want HTTP %d %q", err, status, msg)
	}
	if retry, _, _ := techpass.Temporary(err); retry {
		t.Errorf("HTTP %d must not be retried", status)
	}
}

func TestClientGetUser(t *testing.T) {
	odd := techpass.User{ID: "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", Email: "O'Neil+ops/x%y&z=1?@Example.gov.sg", DisplayName: "Pat O'Neil"}
	f := newFixtureWith(t, techpasssim.Config{Interval: 20 * time.Millisecond, Users: append(techpasssim.DemoUsers(2), odd)})
	ctx := context.Background()
	demo := techpasssim.DemoUsers(2)

	for _, id := range []string{"user002@example.gov.sg", "USER002@Example.GOV.SG", demo[1].ID} {
		u, err := f.client.GetUser(ctx, id)
		if err != nil || u != demo[1] {
			t.Errorf("GetUser(%q) = %+v, %v; want %+v", id, u, err, demo[1])
		}
	}
	// Every character of the identifier reaches the API as one path
	// segment, the query untouched.
	u, err := f.client.GetUser(ctx, odd.Email)
	if err != nil || u != odd {
		t.Errorf("GetUser(%q) = %+v, %v", odd.Email, u, err)
	}
	if got := f.last(); got.RawQuery != "" || got.EscapedPath() != "/iam/users/O%27Neil+ops%2Fx%25y&z=1%3F@Example.gov.sg" {
		t.Errorf("sent path %q query %q", got.EscapedPath(), got.RawQuery)
	}

	_, err = f.client.GetUser(ctx, "nobody@example.gov.sg")
	wantStatus(t, err, http.StatusNotFound, "user not found")

	before := f.sim.Stats().Namespaces["SHIP"].Requests
	for _, bad := range []string{"", ".", ".."} {
		_, err := f.client.GetUser(ctx, bad)
		if !errors.Is(err, techpass.ErrInvalidArgument) {
			t.Errorf("GetUser(%q) = %v, want ErrInvalidArgument", bad, err)
		}
		if retry, _, _ := techpass.Temporary(err); retry {
			t.Errorf("an invalid argument must not be retried")
		}
	}
	st := f.sim.Stats().Namespaces["SHIP"]
	if st.Requests != before {
		t.Errorf("invalid identifiers sent %d requests", st.Requests-before)
	}
	if st.ByRoute[techpass.RouteGetUser] != 5 || st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("getUser requests %d (want 5), violations %d, max in flight %d", st.ByRoute[techpass.RouteGetUser], st.Violations, st.MaxInFlight)
	}

	// The lookup's path names no namespace, yet its token is checked for
	// the key's namespace: an expired one is renewed and the call repeated.
	f.clock.Advance(time.Hour)
	if _, err := f.client.GetUser(ctx, demo[0].Email); err != nil {
		t.Fatal(err)
	}
	if st := f.sim.Stats().Namespaces["SHIP"]; st.Unauthorized != 1 || st.TokenRequests != 2 || st.Violations != 0 {
		t.Errorf("after expiry: unauthorized %d, token requests %d, violations %d; want 1, 2, 0", st.Unauthorized, st.TokenRequests, st.Violations)
	}

	// And throttling answers hold the pacer as for any route.
	if err := f.sim.SetFaults(techpasssim.Faults{ThrottleRate: 1, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	_, err = f.client.GetUser(ctx, demo[0].Email)
	if retry, after, throttled := techpass.Temporary(err); !retry || !throttled || after != time.Second {
		t.Errorf("429: %v", err)
	}
	if got := f.sim.Stats().Namespaces["SHIP"].Throttled; got != 1 {
		t.Errorf("throttled = %d, want 1", got)
	}
}

func TestClientMembers(t *testing.T) {
	users := techpasssim.DemoUsers(3)
	f := newFixtureWith(t, techpasssim.Config{Interval: 20 * time.Millisecond, Users: users})
	ctx := context.Background()
	g := f.mustCreate(t, "SHIP:MOH:billing", "Billing")

	if err := f.client.AddMember(ctx, g.ID, users[0].ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.client.AddMember(ctx, g.ID, users[0].ID), http.StatusConflict, "user is already a member of the group")
	if err := f.client.AddMember(ctx, g.ID, users[2].ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.client.AddMember(ctx, g.ID, "00000000-0000-4000-8000-000000000099"), http.StatusNotFound, "user not found")
	wantStatus(t, f.client.AddMember(ctx, "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", users[1].ID), http.StatusNotFound, "group not found")

	// Members come through Get Group (published), owners with them.
	if err := f.sim.SetOwners("SHIP", g.Name, users[1].ID); err != nil {
		t.Fatal(err)
	}
	page, err := f.client.ListMembers(ctx, g.ID, "")
	if err != nil || page.Next != "" || !slices.Equal(ids(page.Members), ids(users[0:1], users[2:])) ||
		!page.OwnersKnown || !slices.Equal(ids(page.Owners), ids(users[1:2])) || page.Members[0].AccountType != "account:public_officer" {
		t.Errorf("ListMembers = %+v, %v", page, err)
	}
	if f.last().Path != "/iam/namespace/SHIP/groups/"+g.ID || f.last().RawQuery != "" {
		t.Errorf("members read from %s, want Get Group asking for the full list", f.last())
	}

	if err := f.client.RemoveMember(ctx, g.ID, users[0].ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.client.RemoveMember(ctx, g.ID, users[0].ID), http.StatusNotFound, "user is not a member of the group")
	if got := f.sim.Members("SHIP", g.Name); !slices.Equal(got, users[2:]) {
		t.Errorf("members = %+v", got)
	}

	dyn, err := f.sim.CreateGroupDirect("SHIP", "SHIP:all-staff", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.AddMemberDirect("SHIP", dyn.Name, users[1].ID); err != nil {
		t.Fatal(err)
	}
	const dynamicMsg = "members of a dynamic group cannot be changed"
	wantStatus(t, f.client.AddMember(ctx, dyn.ID, users[0].ID), http.StatusForbidden, dynamicMsg)
	wantStatus(t, f.client.RemoveMember(ctx, dyn.ID, users[1].ID), http.StatusForbidden, dynamicMsg)

	for _, bad := range []error{
		f.client.AddMember(ctx, "", users[0].ID),
		f.client.RemoveMember(ctx, g.ID, ""),
		f.client.RemoveMember(ctx, g.ID, ".."),
		second(f.client.ListMembers(ctx, ".", "")),
		second(f.client.UpdateGroup(ctx, "", "d")),
	} {
		if !errors.Is(bad, techpass.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", bad)
		}
	}

	st := f.sim.Stats().Namespaces["SHIP"]
	want := map[techpass.RouteName]int{
		techpass.RouteCreateGroup: 1, techpass.RouteAddMember: 6, techpass.RouteGetGroup: 1, techpass.RouteRemoveMember: 3,
	}
	for k, v := range want {
		if st.ByRoute[k] != v {
			t.Errorf("%s requests = %d, want %d (one request per call)", k, st.ByRoute[k], v)
		}
	}
	if st.Violations != 0 || st.MaxInFlight != 1 {
		t.Errorf("violations %d, max in flight %d", st.Violations, st.MaxInFlight)
	}
}

func second[T any](_ T, err error) error { return err }

func ids(lists ...[]techpass.User) []string {
	var out []string
	for _, l := range lists {
		for _, u := range l {
			out = append(out, u.ID)
		}
	}
	return out
}

// TestClientGetGroupPages pages Get Group's member list 20 at a time with
// the page parameters, under the names an operator's override gives them:
// one request per page, every member once and in order, owners on each.
func TestClientGetGroupPages(t *testing.T) {
	users := techpasssim.DemoUsers(45)
	routes, err := techpass.ResolveRoutes(map[techpass.RouteName]techpass.RouteOverride{
		techpass.RouteGetGroup: {Params: map[string]string{techpass.ParamPage: "pageNumber", techpass.ParamPageSize: "size"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureWith(t, techpasssim.Config{Interval: 20 * time.Millisecond, Users: users, Routes: routes},
		func(c *techpass.Config) { c.Routes, c.MemberPageSize = routes, 20 })
	ctx := context.Background()
	g := bigGroup(t, f.sim, users)
	got, pages := allPages(t, f, g.ID, func(page int, _ string) {
		if q := f.last().Query(); q.Get("pageNumber") != strconv.Itoa(page) || q.Get("size") != "20" || len(q) != 2 {
			t.Errorf("page %d sent query %q", page, f.last().RawQuery)
		}
	})
	// 20, 20, 5: the short page ends the list.
	if pages != 3 || !slices.Equal(ids(got), ids(users)) {
		t.Errorf("%d pages, %d members; want 3 pages and every user once in order", pages, len(got))
	}
	if st := f.sim.Stats().Namespaces["SHIP"]; st.ByRoute[techpass.RouteGetGroup] != 3 || st.Violations != 0 {
		t.Errorf("getGroup requests %d, violations %d; want 3, 0", st.ByRoute[techpass.RouteGetGroup], st.Violations)
	}
	_, err = f.client.ListMembers(ctx, g.ID, "not-a-page")
	if !errors.Is(err, techpass.ErrInvalidArgument) {
		t.Errorf("bad page cursor: %v", err)
	}
	_, err = f.client.ListMembers(ctx, "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "")
	wantStatus(t, err, http.StatusNotFound, "group not found")
	var ae *techpass.Error
	if errors.As(err, &ae) && (ae.Code != "14004" || !strings.HasPrefix(ae.TraceID, "sim-")) {
		t.Errorf("error %+v: want code 14004 and the trace id of the error body", ae)
	}
}

// TestClientListMembersPages pages through 45 members 20 at a time through
// the list-members route (the configurable alternative to Get Group): one
// request per page, every member once and in order.
func TestClientListMembersPages(t *testing.T) {
	users := techpasssim.DemoUsers(45)
	f := newFixtureWith(t, techpasssim.Config{Interval: 20 * time.Millisecond, Users: users, MemberPageSize: 20},
		func(c *techpass.Config) { c.MembersSource = techpass.MembersFromListRoute })
	ctx := context.Background()
	g := bigGroup(t, f.sim, users)

	got, pages := allPages(t, f, g.ID, func(_ int, cursor string) {
		if cursor == "" && f.last().RawQuery != "" {
			t.Errorf("first page sent query %q, want none", f.last().RawQuery)
		}
		if cursor != "" && f.last().Query().Get("cursor") != cursor {
			t.Errorf("sent cursor %q, want %q", f.last().Query().Get("cursor"), cursor)
		}
	})
	if pages != 3 || !slices.Equal(got, users) {
		t.Errorf("%d pages, %d members; want 3 pages and every user once in order", pages, len(got))
	}
	if st := f.sim.Stats().Namespaces["SHIP"]; st.ByRoute[techpass.RouteListMembers] != 3 || st.Requests != 3 || st.Violations != 0 {
		t.Errorf("requests %d (listMembers %d), violations %d; want 3, 3, 0", st.Requests, st.ByRoute[techpass.RouteListMembers], st.Violations)
	}

	// The cursor is query-escaped: what the caller gives is what the API
	// reads, and a bad one is the API's 400.
	const bad = "a&cursor=b+c d/=?#%"
	_, err := f.client.ListMembers(ctx, g.ID, bad)
	wantStatus(t, err, http.StatusBadRequest, "invalid cursor")
	if q := f.last().Query(); len(q) != 1 || len(q["cursor"]) != 1 || q.Get("cursor") != bad {
		t.Errorf("sent query %q, want the one cursor %q", f.last().RawQuery, bad)
	}
	_, err = f.client.ListMembers(ctx, "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "")
	wantStatus(t, err, http.StatusNotFound, "group not found")
}

func TestClientUpdateGroup(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	ctx := context.Background()
	g := f.mustCreate(t, "SHIP:MOH:billing", "Billing")
	u, err := f.client.UpdateGroup(ctx, g.ID, "Billing, MOH")
	if err != nil || u.ID != g.ID || u.Name != g.Name || u.Description != "Billing, MOH" || !u.Created.Equal(g.Created) {
		t.Errorf("UpdateGroup = %+v, %v", u, err)
	}
	if got, err := f.client.GetGroup(ctx, g.ID); err != nil || got.Description != "Billing, MOH" {
		t.Errorf("GetGroup after update = %+v, %v", got, err)
	}
	if u, err := f.client.UpdateGroup(ctx, g.ID, ""); err != nil || u.Description != "" {
		t.Errorf("clearing the description: %+v, %v", u, err)
	}
	_, err = f.client.UpdateGroup(ctx, "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "x")
	wantStatus(t, err, http.StatusNotFound, "group not found")
	if st := f.sim.Stats().Namespaces["SHIP"]; st.ByRoute[techpass.RouteUpdateGroup] != 3 || st.Violations != 0 {
		t.Errorf("updateGroup requests %d, violations %d", st.ByRoute[techpass.RouteUpdateGroup], st.Violations)
	}
}

// bigGroup makes group SHIP:big at the simulator, directly (no upstream
// request), with users as its members.
// allPages reads group id's members through f's client page by page from the
// first, calling sent after each request with the page's number (from 1) and
// the cursor it asked for. It returns the members in order and the number of
// pages.
func allPages(t *testing.T, f *fixture, id string, sent func(page int, cursor string)) ([]techpass.User, int) {
	t.Helper()
	var got []techpass.User
	cursor := ""
	for pages := 1; ; pages++ {
		page, err := f.client.ListMembers(context.Background(), id, cursor)
		if err != nil {
			t.Fatal(err)
		}
		sent(pages, cursor)
		got = append(got, page.Members...)
		if page.Next == "" {
			return got, pages
		}
		cursor = page.Next
	}
}

func bigGroup(t *testing.T, sim *techpasssim.Simulator, users []techpass.User) techpass.Group {
	t.Helper()
	g, err := sim.CreateGroupDirect("SHIP", "SHIP:big", "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := sim.AddMemberDirect("SHIP", g.Name, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	return g
}
