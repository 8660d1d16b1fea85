package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestMemberChangesFinishedInTimeNameTheirOperation: a member change that
// finishes while the caller waits answers 200 with Location naming the
// operation, as MembersFinished requires, for each of the three writes.
func TestMemberChangesFinishedInTimeNameTheirOperation(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.createActive("SHIP/MOH", "billing")
	users := techpasssim.DemoUsers(3)
	wait := map[string]string{"Prefer": "wait=10"}
	for _, tt := range []struct {
		name, method, path string
		body               any
	}{
		{"add", "POST", membersPath("SHIP", "MOH", "billing"), map[string]any{"users": []string{users[0].Email, users[1].Email}}},
		{"remove several", "POST", membersPath("SHIP", "MOH", "billing") + "/remove", map[string]any{"users": []string{users[0].Email}}},
		{"remove one", "DELETE", membersPath("SHIP", "MOH", "billing") + "/" + users[1].Email, nil},
	} {
		r := g.doWith(tt.method, tt.path, "SHIP/MOH", tt.body, wait)
		var op api.Operation
		r.decode(t, &op)
		if r.status != http.StatusOK || op.State != api.Succeeded {
			t.Fatalf("%s: %d %s, want 200 with the finished operation", tt.name, r.status, r.body)
		}
		if loc := r.header.Get("Location"); loc != "/v1/operations/"+op.Id {
			t.Errorf("%s: Location %q, want /v1/operations/%s", tt.name, loc, op.Id)
		}
	}
}

// TestNonASCIINamesAreRefused: names are valid exactly when their pattern
// matches them as written. ſ (U+017F) upper-cases to S, so upper-casing
// before the check let ſHIP reach SHIP and MOſ become MOS.
func TestNonASCIINamesAreRefused(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.createActive("SHIP/MOH", "billing")
	before := g.list("SHIP/MOH")

	for _, path := range []string{
		"/v1/tenants/%C5%BFHIP/projects/MOH/groups",
		"/v1/tenants/SHIP/projects/MO%C5%BF/groups",
		"/v1/tenants/%C5%BFHIP/projects/MOH/groups/billing",
	} {
		for _, who := range []string{"SHIP/MOH", "operator"} {
			if r := g.badInput().do("GET", path, who, nil); r.status != http.StatusBadRequest {
				t.Errorf("GET %s as %s: %d %s, want 400", path, who, r.status, r.body)
			}
		}
	}
	if r := g.badInput().do("POST", "/v1/tenants/%C5%BFHIP/projects/MOH/groups", "SHIP/MOH", map[string]string{"name": "sneaky"}); r.status != http.StatusBadRequest {
		t.Errorf("create through ſHIP: %d %s, want 400", r.status, r.body)
	}
	if got := g.list("SHIP/MOH"); len(got) != len(before) {
		t.Errorf("SHIP:MOH has %d groups after refused writes, want %d", len(got), len(before))
	}

	for _, tt := range []struct{ path, name string }{
		{"/v1/tenants/SHIP/projects", "MOſ"},
		{"/v1/tenants", "ſHIP"},
		{"/v1/tenants", "ſHIPX"},
	} {
		r := g.badInput().do("POST", tt.path, "operator", map[string]any{"name": tt.name})
		p := r.problem(t)
		if r.status != http.StatusUnprocessableEntity || p.Errors == nil || (*p.Errors)[0].Field != "name" {
			t.Errorf("create %s %q: %d %s, want 422 naming the field name", tt.path, tt.name, r.status, r.body)
		}
	}
	for _, path := range []string{"/v1/tenants/SHIP/projects/MOS", "/v1/tenants/SHIPX"} {
		if r := g.do("GET", path, "operator", nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404 (nothing created)", path, r.status)
		}
	}
	// Lower case ASCII is still welcome.
	if r := g.do("POST", "/v1/tenants/ship/projects", "operator", map[string]any{"name": "mos"}); r.status != http.StatusCreated {
		t.Errorf("create project mos: %d %s", r.status, r.body)
	}
}

// TestRefusedNonASCIINamesAreAuditedAsWritten: a refused call through ſHIP
// or MOſ is audited under the names as written (upper-cased in ASCII only),
// never under SHIP or MOS, which the call did not reach.
func TestRefusedNonASCIINamesAreAuditedAsWritten(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for id, path := range map[string]string{
		"long-s-tenant":  "/v1/tenants/%C5%BFhip/projects/moh/groups",
		"long-s-project": "/v1/tenants/ship/projects/mo%C5%BF/groups",
	} {
		req, err := http.NewRequest("POST", g.base+path, strings.NewReader(`{"name":"sneaky"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
		req.Header.Set("X-Request-Id", id)
		if r := g.badInput().send(req); r.status != http.StatusBadRequest {
			t.Fatalf("POST %s: %d %s, want 400", path, r.status, r.body)
		}
	}
	want := map[string][2]string{"long-s-tenant": {"ſHIP", "MOH"}, "long-s-project": {"SHIP", "MOſ"}}
	found := 0
	for _, e := range g.auditEntries() {
		w, ok := want[orEmpty(e.RequestId)]
		if !ok {
			continue
		}
		found++
		if orEmpty(e.Tenant) != w[0] || orEmpty(e.Project) != w[1] || orEmpty(e.Target) != w[0]+":"+w[1] || e.Outcome != "failed" {
			t.Errorf("request %s audited as tenant %q project %q target %q (%s), want %s:%s failed",
				orEmpty(e.RequestId), orEmpty(e.Tenant), orEmpty(e.Project), orEmpty(e.Target), e.Outcome, w[0], w[1])
		}
	}
	if found != len(want) {
		t.Errorf("%d of the %d refused calls audited", found, len(want))
	}
}

// orEmpty is *s, or "" for nil.
func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestBodyTypeErrorsNameJSONTypes: a body member of the wrong type is named
// with the JSON type expected, never a Go type.
func TestBodyTypeErrorsNameJSONTypes(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, tt := range []struct {
		path, body, want string
	}{
		{"/v1/tenants", `{"name":"NEW","groupLimit":"5"}`, `Field "groupLimit" must be a JSON integer.`},
		{"/v1/tenants", `{"name":"NEW","techpass":[]}`, `Field "techpass" must be a JSON object.`},
		{"/v1/tenants", `"NEW"`, `The body must be a JSON object.`},
		{"/v1/tenants/SHIP/projects", `{"name":"NEW","disabled":1}`, `Field "disabled" must be a JSON boolean.`},
	} {
		r := g.badInput().do("POST", tt.path, "operator", []byte(tt.body))
		p := r.problem(t)
		if r.status != http.StatusBadRequest || p.Detail == nil || *p.Detail != tt.want {
			t.Errorf("POST %s %s: %d %s, want 400 %q", tt.path, tt.body, r.status, r.body, tt.want)
		}
	}
}

// TestPatchWithNullBodyIsRefused: PATCH with the body null changes nothing
// (a 400: the body must be an object) and is not recorded as an update.
func TestPatchWithNullBodyIsRefused(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, path := range []string{"/v1/tenants/SHIP", "/v1/tenants/SHIP/projects/MOH"} {
		before := g.do("GET", path, "operator", nil)
		time.Sleep(5 * time.Millisecond) // a change would move updatedAt
		r := g.badInput().do("PATCH", path, "operator", []byte("null"))
		if p := r.problem(t); r.status != http.StatusBadRequest || p.Detail == nil || *p.Detail != "The body must be a JSON object." {
			t.Errorf("PATCH %s null: %d %s, want 400", path, r.status, r.body)
		}
		after := g.do("GET", path, "operator", nil)
		if string(before.body) != string(after.body) {
			t.Errorf("PATCH %s null changed it:\n%s\n%s", path, before.body, after.body)
		}
	}
	for _, action := range []string{"tenant.update", "project.update"} {
		for _, e := range g.auditActions("SHIP", action) {
			if e.Outcome != "failed" {
				t.Errorf("%s audited as %s, want failed: %+v", action, e.Outcome, e)
			}
		}
	}
}

// TestDuplicateMembersAreRefused: a JSON body naming a member twice, at any
// depth, is refused with 400 and changes nothing; before, the last one won.
func TestDuplicateMembersAreRefused(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.createActive("SHIP/MOH", "billing")
	before := g.list("SHIP/MOH")
	users := techpasssim.DemoUsers(2)
	for _, tt := range []struct {
		method, path, who, body string
	}{
		{"POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", `{"name":"a","name":"b"}`},
		{"PATCH", groupsPath("SHIP", "MOH") + "/billing", "SHIP/MOH", `{"description":"x","description":"y"}`},
		{"POST", membersPath("SHIP", "MOH", "billing"), "SHIP/MOH", `{"users":["` + users[0].Email + `"],"users":["` + users[1].Email + `"]}`},
		{"POST", membersPath("SHIP", "MOH", "billing") + "/remove", "SHIP/MOH", `{"users":[],"users":["x@y.z"]}`},
		{"POST", "/v1/tenants", "operator", `{"name":"NEW","techpass":{"apiKey":{"env":"A","env":"B"}}}`},
		{"PATCH", "/v1/tenants/SHIP", "operator", `{"groupLimit":5,"groupLimit":6}`},
		{"POST", "/v1/tenants/SHIP/projects", "operator", `{"name":"NEW","name":"OLD"}`},
		{"PATCH", "/v1/tenants/SHIP/projects/MOH", "operator", `{"identity":{"issuer":"https://a","issuer":"https://b","audience":"x","jwksUrl":"https://a/k"}}`},
		{"POST", "/v1/keys", "operator", `{"name":"k","role":"operator","role":"operator"}`},
	} {
		r := g.do(tt.method, tt.path, tt.who, []byte(tt.body))
		p := r.problem(t)
		if r.status != http.StatusBadRequest || p.Detail == nil || !strings.Contains(*p.Detail, "twice") {
			t.Errorf("%s %s %s: %d %s, want 400 naming the duplicate", tt.method, tt.path, tt.body, r.status, r.body)
		}
	}
	if got := g.list("SHIP/MOH"); len(got) != len(before) || got[0].Description != before[0].Description {
		t.Errorf("groups changed: %+v, was %+v", got, before)
	}
	if ms, _ := g.members("SHIP/MOH", "billing", 0, ""); len(ms) != 0 {
		t.Errorf("members added: %v", ms)
	}
	for _, path := range []string{"/v1/tenants/NEW", "/v1/tenants/SHIP/projects/NEW", "/v1/tenants/SHIP/projects/OLD"} {
		if r := g.do("GET", path, "operator", nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
	r := g.do("GET", "/v1/tenants/SHIP", "operator", nil)
	var tn api.Tenant
	r.decode(t, &tn)
	if tn.GroupLimit == 5 || tn.GroupLimit == 6 {
		t.Errorf("group limit changed to %d", tn.GroupLimit)
	}
	r = g.do("GET", "/v1/keys", "operator", nil)
	var kl api.KeyList
	r.decode(t, &kl)
	for _, k := range kl.Keys {
		if k.Name == "k" {
			t.Errorf("key issued: %+v", k)
		}
	}
}

// TestParametersFollowTheSpec: a path or query parameter that breaks the
// pattern, length or bounds openapi.yaml gives it is a 400 naming it, on
// every operation alike; so is a list cursor the list did not issue. Before,
// some were 200, 404 or 422.
func TestParametersFollowTheSpec(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.createActive("SHIP/MOH", "billing")
	long := strings.Repeat("a", 10000)
	groups := groupsPath("SHIP", "MOH")
	for _, tt := range []struct{ path, who, field string }{
		{"/v1/audit?limit=0", "operator", "limit"},
		{"/v1/audit?limit=1001", "operator", "limit"},
		{"/v1/audit?actor=" + long, "operator", "actor"},
		{"/v1/audit?action=" + long, "operator", "action"},
		{"/v1/audit?project=" + long, "operator", "project"},
		{"/v1/audit?tenant=S:HIP", "operator", "tenant"},
		{"/v1/audit?since=yesterday", "operator", "since"},
		{"/v1/tenants/SHIP/groups?project=MO:H", "operator", "project"},
		{"/v1/tenants/SHIP/groups?cursor=garbage", "operator", "cursor"},
		{"/v1/keys?tenant=1", "operator", "tenant"},
		{"/v1/keys/ABC", "operator", "keyId"},
		// Either alphabet of operation ids alone, but not the two mixed.
		{"/v1/operations/op_" + strings.Repeat("8w", 13), "SHIP/MOH", "id"},
		{"/v1/operations/op_x", "SHIP/MOH", "id"},
		{groups + "?limit=5000", "SHIP/MOH", "limit"},
		{groups + "?limit=0", "SHIP/MOH", "limit"},
		{groups + "?limit=abc", "SHIP/MOH", "limit"},
		{groups + "?limit=1&limit=2", "SHIP/MOH", "limit"},
		{groups + "?cursor=garbage", "SHIP/MOH", "cursor"},
		{groups + "?prefix=" + strings.Repeat("p", 255), "SHIP/MOH", "prefix"},
		{groups + "/billing/members?cursor=garbage", "SHIP/MOH", "cursor"},
		{groups + "/billing/members?limit=1001", "SHIP/MOH", "limit"},
		{groups + "/bil%20ling", "SHIP/MOH", "group"},
	} {
		r := g.badInput().do("GET", tt.path, tt.who, nil)
		p := r.problem(t)
		if r.status != http.StatusBadRequest || p.Errors == nil || (*p.Errors)[0].Field != tt.field {
			t.Errorf("GET %.80s: %d %.300s, want 400 naming %s", tt.path, r.status, r.body, tt.field)
		}
	}
	for _, path := range []string{"/v1/audit?limit=1&tenant=ship", groups + "?limit=1000&prefix=bil", "/v1/keys?tenant=ship",
		"/v1/tenants/SHIP/groups?project=moh"} {
		who := "SHIP/MOH"
		if !strings.HasPrefix(path, "/v1/tenants/SHIP/projects") {
			who = "operator"
		}
		if r := g.do("GET", path, who, nil); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", path, r.status, r.body)
		}
	}
	// A header parameter too: If-Match is at most 64 characters.
	r := g.badInput().doWith("PATCH", groups+"/billing", "SHIP/MOH", map[string]string{"description": "x"}, map[string]string{"If-Match": `"` + long[:70] + `"`})
	if p := r.problem(t); r.status != http.StatusBadRequest || p.Errors == nil || (*p.Errors)[0].Field != "If-Match" {
		t.Errorf("PATCH with a long If-Match: %d %s, want 400", r.status, r.body)
	}
	if got := g.list("SHIP/MOH"); got[0].Description != "group billing" {
		t.Errorf("description changed to %q", got[0].Description)
	}
}

// TestTooLargeRequests: every operation that documents 413 gives it for a
// body over its limit, and changes nothing.
func TestTooLargeRequests(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.createActive("SHIP/MOH", "billing")
	big := []byte(`{"description":"` + strings.Repeat("x", 70<<10) + `"}`)
	huge := []byte(strings.Repeat("x", 2<<20))
	groups := groupsPath("SHIP", "MOH")
	for _, tt := range []struct {
		method, path, who string
		body              []byte
	}{
		{"GET", "/healthz", "", huge},
		{"GET", "/readyz", "", huge},
		{"GET", "/openapi.yaml", "", huge},
		{"GET", "/docs", "", huge},
		{"POST", groups, "SHIP/MOH", big},
		{"PATCH", groups + "/billing", "SHIP/MOH", big},
		{"POST", groups + "/billing/members", "SHIP/MOH", big},
		{"POST", groups + "/billing/members/remove", "SHIP/MOH", big},
		{"POST", "/v1/tenants", "operator", big},
		{"PATCH", "/v1/tenants/SHIP", "operator", big},
		{"POST", "/v1/tenants/SHIP/projects", "operator", big},
		{"PATCH", "/v1/tenants/SHIP/projects/MOH", "operator", big},
		{"POST", "/v1/keys", "operator", big},
		{"POST", groups, "SHIP/MOH", huge},
	} {
		r := g.badInput().do(tt.method, tt.path, tt.who, tt.body)
		if p := r.problem(t); r.status != http.StatusRequestEntityTooLarge || p.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s with %d bytes: %d %s, want 413", tt.method, tt.path, len(tt.body), r.status, r.body)
		}
	}
	if got := g.list("SHIP/MOH"); len(got) != 1 || got[0].Description != "group billing" {
		t.Errorf("groups changed: %+v", got)
	}
}

// TestPublishedSpecHasNoCodegenExtensions: /openapi.yaml, which /docs
// renders, shows readers no x-go-* extension.
func TestPublishedSpecHasNoCodegenExtensions(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	r := g.do("GET", "/openapi.yaml", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "operationId: listGroups") {
		t.Fatalf("/openapi.yaml: %d", r.status)
	}
	for _, ext := range []string{"x-go-", "x-oapi-codegen-"} {
		for _, line := range strings.Split(string(r.body), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, " -"), ext) {
				t.Errorf("/openapi.yaml shows %q", line)
			}
		}
	}
}

// TestDefinitionErrorsNameTheirFields: a refused definition's errors name
// each offending field as the API spells it, carried as data by the
// domain's error (not guessed from its text).
func TestDefinitionErrorsNameTheirFields(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, tt := range []struct {
		path string
		body any
		want []string
	}{
		{"/v1/tenants", map[string]any{"name": "NEW", "groupLimit": 0, "techpass": map[string]any{"apiUrl": "ftp://x"}},
			[]string{"groupLimit", "techpass.apiUrl", "techpass.directoryId", "techpass.clientId", "techpass.clientSecret", "techpass.apiKey"}},
		{"/v1/tenants", map[string]any{"name": "NEW", "techpass": map[string]any{"apiKey": map[string]any{"env": "A", "file": "/x"}}},
			[]string{"techpass.apiKey"}},
		{"/v1/keys", map[string]any{"name": "k", "role": "operator", "tenant": "SHIP", "project": "MOH"}, []string{"tenant", "project"}},
		{"/v1/keys", map[string]any{"name": "k", "role": "tenant-admin"}, []string{"tenant"}},
		{"/v1/tenants/SHIP/projects", map[string]any{"name": "NEW", "identity": map[string]any{"issuer": "https://idp.example", "audience": "x"}},
			[]string{"identity"}},
	} {
		r := g.badInput().do("POST", tt.path, "operator", tt.body)
		p := r.problem(t)
		var got []string
		if p.Errors != nil {
			for _, e := range *p.Errors {
				got = append(got, e.Field)
			}
		}
		if r.status != http.StatusUnprocessableEntity || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("POST %s %v: %d fields %v, want 422 naming %v (%s)", tt.path, tt.body, r.status, got, tt.want, r.body)
		}
	}
}

// TestMemberNamesAreCaseSensitive: encoding/json matches member names to
// fields case-insensitively, so {"NAME": ...} was taken for "name" (and
// {"name": ..., "NAME": ...} let the last win). The contract names members
// exactly and allows no others: 400, nothing changed.
func TestMemberNamesAreCaseSensitive(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, tt := range []struct {
		method, path, who, body string
	}{
		{"POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", `{"NAME":"sneaky"}`},
		{"POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", `{"name":"a","NAME":"b"}`},
		{"POST", "/v1/tenants/SHIP/projects", "operator", `{"Name":"NEW"}`},
		{"PATCH", "/v1/tenants/SHIP", "operator", `{"GROUPLIMIT":5}`},
		{"PATCH", "/v1/tenants/SHIP", "operator", `{"techpass":{"apiKey":{"ENV":"X"}}}`},
	} {
		r := g.badInput().do(tt.method, tt.path, tt.who, []byte(tt.body))
		p := r.problem(t)
		if r.status != http.StatusBadRequest || p.Detail == nil || !strings.Contains(*p.Detail, "case-sensitive") {
			t.Errorf("%s %s %s: %d %s, want 400", tt.method, tt.path, tt.body, r.status, r.body)
		}
	}
	if got := g.list("SHIP/MOH"); len(got) != 0 {
		t.Errorf("groups created: %+v", got)
	}
	if r := g.do("GET", "/v1/tenants/SHIP/projects/NEW", "operator", nil); r.status != http.StatusNotFound {
		t.Errorf("project NEW: %d, want 404", r.status)
	}
	r := g.do("GET", "/v1/tenants/SHIP", "operator", nil)
	var tn api.Tenant
	r.decode(t, &tn)
	if tn.GroupLimit == 5 || tn.Techpass.ApiKey.Ref != nil && *tn.Techpass.ApiKey.Ref == "X" {
		t.Errorf("tenant changed: %s", r.body)
	}
}
