package techpasssim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestGetGroup: Get Group embeds users and owners, the full list by
// default, a page with page and pageSize; bad paging and an unknown group
// are answered in TechPass's {"error":{...}} shape with a trace id.
func TestGetGroup(t *testing.T) {
	users := techpasssim.DemoUsers(5)
	e := newEnv(t, techpasssim.Config{Users: users})
	tok := e.token(shipClient, shipSecret)
	g, err := e.sim.CreateGroupDirect(ns, "SHIP:MOH:billing", "Billing", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := e.sim.AddMemberDirect(ns, g.Name, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	r := e.do(mustRequest(t, http.MethodPut, e.srv.URL+"/_sim/namespaces/SHIP/groups/"+url.PathEscape(g.Name)+"/owners", `{"userIds":["`+users[3].ID+`"]}`))
	wantStatus(t, r, http.StatusNoContent, "")
	path := route(t, techpass.RouteGetGroup).Path("namespace", ns, "groupId", g.ID)

	r = e.paced(http.MethodGet, path, shipKey, tok, nil)
	wantStatus(t, r, http.StatusOK, "")
	d := decode[techpass.GroupDetail](t, r)
	if d.ID != g.ID || d.Name != g.Name || len(d.Users) != 5 || len(d.Owners) != 1 || d.Owners[0].ID != users[3].ID || d.Users[0].AccountType == "" {
		t.Errorf("Get Group = %+v", d)
	}
	r = e.paced(http.MethodGet, path+"?page=2&pageSize=2", shipKey, tok, nil)
	wantStatus(t, r, http.StatusOK, "")
	if d := decode[techpass.GroupDetail](t, r); len(d.Users) != 2 || d.Users[0].ID != users[2].ID || len(d.Owners) != 1 {
		t.Errorf("page 2 of 2 = %+v", d)
	}
	r = e.paced(http.MethodGet, path+"?page=4&pageSize=2", shipKey, tok, nil)
	if d := decode[techpass.GroupDetail](t, r); len(d.Users) != 0 {
		t.Errorf("a page past the end = %+v", d)
	}
	for _, q := range []string{"?page=0", "?pageSize=1001", "?page=x", "?page=1&page=2"} {
		r = e.paced(http.MethodGet, path+q, shipKey, tok, nil)
		wantStatus(t, r, http.StatusBadRequest, "invalid paging parameters")
	}
	r = e.paced(http.MethodGet, route(t, techpass.RouteGetGroup).Path("namespace", ns, "groupId", "6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"), shipKey, tok, nil)
	wantStatus(t, r, http.StatusNotFound, "group not found")
	var body techpass.ErrorBody
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error == nil || string(body.Error.Code) != "14004" || body.Error.TraceID == "" {
		t.Errorf("error body %s", r.body)
	}
}

// TestTechBizGroups: a TechBiz-managed group is listed only with
// includeOnTechBiz=true, and the API refuses to change it or its members.
func TestTechBizGroups(t *testing.T) {
	users := techpasssim.DemoUsers(1)
	e := newEnv(t, techpasssim.Config{Users: users})
	tok := e.token(shipClient, shipSecret)
	r := e.do(mustRequest(t, http.MethodPost, e.srv.URL+"/_sim/namespaces/SHIP/groups", `{"name":"SHIP:TB:x","techBiz":true}`))
	wantStatus(t, r, http.StatusCreated, "")
	tb := decode[techpass.Group](t, r)
	if _, err := e.sim.CreateGroupDirect(ns, "SHIP:MOH:y", "", false); err != nil {
		t.Fatal(err)
	}
	names := func(q string) []string {
		r := e.paced(http.MethodGet, groupsPath(t, ns)+q, shipKey, tok, nil)
		wantStatus(t, r, http.StatusOK, "")
		var out []string
		for _, g := range decode[techpass.GroupList](t, r).Groups {
			out = append(out, g.Name)
		}
		return out
	}
	if got := names(""); !slices.Equal(got, []string{"SHIP:MOH:y"}) {
		t.Errorf("default list = %v", got)
	}
	if got := names("?includeOnTechBiz=true"); !slices.Equal(got, []string{"SHIP:TB:x", "SHIP:MOH:y"}) {
		t.Errorf("list with includeOnTechBiz = %v", got)
	}
	if got := names("?includeOnTechBiz=false"); len(got) != 1 {
		t.Errorf("includeOnTechBiz=false = %v", got)
	}
	byID := func(n techpass.RouteName, pairs ...string) string {
		return route(t, n).Path(append([]string{"namespace", ns, "groupId", tb.ID}, pairs...)...)
	}
	wantStatus(t, e.paced(http.MethodPatch, byID(techpass.RouteUpdateGroup), shipKey, tok, map[string]string{"description": "d"}), http.StatusForbidden, "the group is managed by TechBiz")
	wantStatus(t, e.paced(http.MethodDelete, byID(techpass.RouteDeleteGroup), shipKey, tok, nil), http.StatusForbidden, "the group is managed by TechBiz")
	wantStatus(t, e.paced(http.MethodPost, byID(techpass.RouteAddMember), shipKey, tok, techpass.AddMemberRequest{UserID: users[0].ID}), http.StatusForbidden, "the group is managed by TechBiz")
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "ship:tb:X"}), http.StatusConflict, "group already exists")
	// Get Group still reads it.
	wantStatus(t, e.paced(http.MethodGet, byID(techpass.RouteGetGroup), shipKey, tok, nil), http.StatusOK, "")
	if len(e.sim.Groups(ns)) != 2 {
		t.Error("a TechBiz group changed")
	}
}
