package techpasssim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

func TestFetchStats(t *testing.T) {
	e := newEnv(t, techpasssim.Config{}, shipNamespace(), dockNamespace())
	tok := e.token(shipClient, shipSecret)
	e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, "wrong"))
	e.postForm(e.tokenURL("unknown-directory"), e.secretForm(shipClient, shipSecret))
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "g"}), http.StatusCreated, "")
	wantStatus(t, e.api(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "g"}), http.StatusTooManyRequests, "")
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "G"}), http.StatusConflict, "")
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), "", tok, nil), http.StatusForbidden, "")
	wantStatus(t, e.paced(http.MethodGet, "/iam/users", shipKey, tok, nil), http.StatusNotFound, "Not Found")

	got, err := techpasssim.FetchStats(context.Background(), e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	want := e.sim.Stats()
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("FetchStats = %s\nStats      = %s", gotJSON, wantJSON)
	}

	ship := got.Namespaces[ns]
	if ship.Requests != 3 || ship.Violations != 1 || ship.DuplicateCreates != 1 || ship.CreatesByName["g"] != 1 ||
		ship.TokenRequests != 2 || ship.TokenFailures != 1 || ship.MaxInFlight != 1 {
		t.Errorf("SHIP stats = %s", gotJSON)
	}
	if gap, ok := ship.MinGap(); !ok || gap != 0 {
		t.Errorf("min gap = %v %v, want 0", gap, ok)
	}
	if dock := got.Namespaces["DOCK"]; dock.Requests != 0 || dock.MinGapMs != nil || dock.LastStart != nil || dock.CreatesByName == nil {
		t.Errorf("DOCK stats = %+v, want zero with no gap and an empty map", dock)
	}
	tot := got.Totals
	if tot.Requests != 3 || tot.TokenRequests != 3 || tot.TokenFailures != 2 || tot.Forbidden != 1 || tot.UnknownRoutes != 1 {
		t.Errorf("totals = %+v", tot)
	}
	// The JSON field names other processes rely on.
	for _, field := range []string{`"namespaces":`, `"totals":`, `"requests":`, `"violations":`, `"throttled":`, `"serverErrors":`,
		`"maxInFlight":`, `"minGapMs":0`, `"tokenRequests":`, `"tokenFailures":`, `"duplicateCreates":`, `"createsByName":{"g":1}`} {
		if !strings.Contains(string(gotJSON), field) {
			t.Errorf("stats JSON lacks %s", field)
		}
	}

	// Stats are a deep copy.
	want.Namespaces[ns].CreatesByName["g"] = 99
	if e.sim.Stats().Namespaces[ns].CreatesByName["g"] != 1 {
		t.Error("changing a snapshot changed the simulator")
	}

	if _, err := techpasssim.FetchStats(context.Background(), e.srv.URL+"/nowhere", nil); err == nil {
		t.Error("FetchStats from a wrong URL succeeded")
	}
}

func TestResetStats(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	tok := e.token(shipClient, shipSecret)
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "g"}), http.StatusCreated, "")

	r := e.do(mustRequest(t, http.MethodPost, e.srv.URL+"/_sim/stats/reset", ""))
	wantStatus(t, r, http.StatusNoContent, "")
	st := e.sim.Stats()
	if st.Totals != (techpasssim.Totals{}) || st.Namespaces[ns].MinGapMs != nil || len(st.Namespaces[ns].CreatesByName) != 0 {
		t.Errorf("after reset: %+v", st)
	}
	// Enforcement state survives: a request right after the last one is
	// still a violation, and the groups are still there.
	wantStatus(t, e.api(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusTooManyRequests, "")
	if got := e.sim.Stats().Namespaces[ns]; got.Violations != 1 || got.MinGapMs != nil || got.LastStart == nil {
		t.Errorf("after reset and one request: %+v", got)
	}
	if len(e.sim.Groups(ns)) != 1 {
		t.Error("reset removed groups")
	}
	e.sim.ResetStats()
	if st := e.sim.Stats(); st.Namespaces[ns].Violations != 0 {
		t.Errorf("ResetStats left %+v", st)
	}
}

func TestAdminFaults(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	put := func(body string) response {
		t.Helper()
		return e.do(mustRequest(t, http.MethodPut, e.srv.URL+"/_sim/faults", body))
	}
	wantStatus(t, put(`{"tokenOutage":true,"throttleRate":0.5,"retryAfter":"3s","latencyMin":"1ms","latencyMax":"2ms"}`), http.StatusOK, "")
	want := techpasssim.Faults{TokenOutage: true, ThrottleRate: 0.5, RetryAfter: 3e9, LatencyMin: 1e6, LatencyMax: 2e6}
	if got := e.sim.CurrentFaults(); got != want {
		t.Errorf("faults = %+v, want %+v", got, want)
	}
	r := e.do(mustRequest(t, http.MethodGet, e.srv.URL+"/_sim/faults", ""))
	if got := decode[techpasssim.Faults](t, r); got != want {
		t.Errorf("GET faults = %+v, want %+v", got, want)
	}
	r = e.postForm(e.tokenURL(testDir), e.secretForm(shipClient, shipSecret))
	if r.status != http.StatusServiceUnavailable || r.tokenError(t).Error != "temporarily_unavailable" {
		t.Errorf("token during outage: %d %s", r.status, r.body)
	}

	for _, bad := range []string{`{"throttleRate":2}`, `{"retryAfter":"soon"}`, `{"throttleRates":0.1}`, `not json`} {
		wantStatus(t, put(bad), http.StatusBadRequest, "")
	}
	if got := e.sim.CurrentFaults(); got != want {
		t.Errorf("refused updates changed the faults to %+v", got)
	}
	wantStatus(t, put(`{}`), http.StatusOK, "")
	e.token(shipClient, shipSecret)
}

func TestAdminGroupsDump(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	tok := e.token(shipClient, shipSecret)
	wantStatus(t, e.paced(http.MethodPost, groupsPath(t, ns), shipKey, tok, techpass.CreateGroupRequest{Name: "g"}), http.StatusCreated, "")
	before := e.sim.Stats()

	r := e.do(mustRequest(t, http.MethodGet, e.srv.URL+"/_sim/namespaces/SHIP/groups", ""))
	wantStatus(t, r, http.StatusOK, "")
	if got := decode[techpass.GroupList](t, r).Groups; !equalGroups(got, e.sim.Groups(ns)) {
		t.Errorf("dump = %+v", got)
	}
	wantStatus(t, e.do(mustRequest(t, http.MethodGet, e.srv.URL+"/_sim/namespaces/NOPE/groups", "")), http.StatusNotFound, "namespace not found")
	after := e.sim.Stats()
	if after.Namespaces[ns].Requests != before.Namespaces[ns].Requests {
		t.Error("the admin dump counted as a request")
	}
	// Nor does it move the rate enforcement: a paced call is still fine.
	wantStatus(t, e.paced(http.MethodGet, groupsPath(t, ns), shipKey, tok, nil), http.StatusOK, "")
}

func mustRequest(t testing.TB, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// TestAdminMembership drives users, groups and members through the /_sim/
// endpoints: no credentials, no request counted, errors as JSON.
func TestAdminMembership(t *testing.T) {
	e := newEnv(t, techpasssim.Config{})
	admin := func(method, path, body string) response {
		t.Helper()
		return e.do(mustRequest(t, method, e.srv.URL+path, body))
	}

	r := admin(http.MethodPost, "/_sim/users", `{"email":"alice@example.gov.sg","displayName":"Alice"}`)
	wantStatus(t, r, http.StatusCreated, "")
	alice := decode[techpass.User](t, r)
	if !uuidRE.MatchString(alice.ID) || alice.Email != "alice@example.gov.sg" || alice.DisplayName != "Alice" {
		t.Errorf("added %+v", alice)
	}
	bob := techpasssim.DemoUsers(1)[0]
	wantStatus(t, admin(http.MethodPost, "/_sim/users", `{"id":"`+bob.ID+`","email":"`+bob.Email+`","displayName":"`+bob.DisplayName+`"}`), http.StatusCreated, "")
	wantStatus(t, admin(http.MethodPost, "/_sim/users", `{"email":"ALICE@example.gov.sg"}`), http.StatusConflict, "user already exists")
	wantStatus(t, admin(http.MethodPost, "/_sim/users", `{"email":"nope"}`), http.StatusBadRequest, "")
	wantStatus(t, admin(http.MethodPost, "/_sim/users", `{"mail":"x@y.sg"}`), http.StatusBadRequest, "")
	r = admin(http.MethodGet, "/_sim/users", "")
	wantStatus(t, r, http.StatusOK, "")
	if got := decode[struct{ Users []techpass.User }](t, r).Users; len(got) != 2 || got[0] != alice {
		t.Errorf("users = %+v", got)
	}

	const groups = "/_sim/namespaces/SHIP/groups"
	r = admin(http.MethodPost, groups, `{"name":"SHIP:all staff","description":"everyone","dynamic":true}`)
	wantStatus(t, r, http.StatusCreated, "")
	if g := decode[techpass.Group](t, r); g.Name != "SHIP:all staff" || g.GRN != "ship:SHIP:all staff" {
		t.Errorf("created %+v", g)
	}
	wantStatus(t, admin(http.MethodPost, groups, `{"name":"ship:ALL staff"}`), http.StatusConflict, "group already exists")
	wantStatus(t, admin(http.MethodPost, groups, `{"name":""}`), http.StatusBadRequest, "")
	wantStatus(t, admin(http.MethodPost, "/_sim/namespaces/NOPE/groups", `{"name":"g"}`), http.StatusNotFound, "namespace not found")

	members := groups + "/" + url.PathEscape("ship:all staff") + "/members"
	wantStatus(t, admin(http.MethodPost, members, `{"userId":"`+bob.ID+`"}`), http.StatusNoContent, "")
	wantStatus(t, admin(http.MethodPost, members, `{"userId":"`+alice.ID+`"}`), http.StatusNoContent, "")
	wantStatus(t, admin(http.MethodPost, members, `{"userId":"`+alice.ID+`"}`), http.StatusConflict, "user is already a member of the group")
	wantStatus(t, admin(http.MethodPost, members, `{"userId":"00000000-0000-4000-8000-000000000099"}`), http.StatusNotFound, "user not found")
	wantStatus(t, admin(http.MethodPost, groups+"/nope/members", `{"userId":"`+alice.ID+`"}`), http.StatusNotFound, "group not found")
	r = admin(http.MethodGet, members, "")
	wantStatus(t, r, http.StatusOK, "")
	if got := decode[techpass.MemberPage](t, r).Members; len(got) != 2 || got[0] != alice || got[1] != bob {
		t.Errorf("members = %+v, want alice then user001 (by e-mail)", got)
	}
	wantStatus(t, admin(http.MethodDelete, members+"/"+bob.ID, ""), http.StatusNoContent, "")
	wantStatus(t, admin(http.MethodDelete, members+"/"+bob.ID, ""), http.StatusNotFound, "user is not a member of the group")
	wantStatus(t, admin(http.MethodGet, groups+"/nope/members", ""), http.StatusNotFound, "group not found")

	wantStatus(t, admin(http.MethodDelete, groups+"/"+url.PathEscape("SHIP:all staff"), ""), http.StatusNoContent, "")
	wantStatus(t, admin(http.MethodDelete, groups+"/"+url.PathEscape("SHIP:all staff"), ""), http.StatusNotFound, "group not found")
	if len(e.sim.Groups(ns)) != 0 {
		t.Error("group still there")
	}
	if st := e.sim.Stats(); st.Totals.Requests != 0 || st.Totals.Forbidden != 0 || st.Totals.UnknownRoutes != 0 {
		t.Errorf("admin calls counted: %+v", st.Totals)
	}
}
