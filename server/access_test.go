package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/tenants"
)

// TestIsolation: a key of SHIP/MOH may act only in SHIP/MOH; no key, a
// wrong key or a malformed key is 401 with WWW-Authenticate.
func TestIsolation(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	wrongSecret := g.keys["SHIP/MOH"][:len(g.keys["SHIP/MOH"])-4] + "AAAA"
	unknownKey, _ := tenants.NewKey()
	cases := []struct {
		name, method, path, who string
		want                    int
	}{
		{"own project list", "GET", groupsPath("SHIP", "MOH"), "SHIP/MOH", 200},
		{"own project, lower-case path", "GET", groupsPath("ship", "moh"), "SHIP/MOH", 200},
		{"other project same tenant", "GET", groupsPath("SHIP", "MOE"), "SHIP/MOH", 403},
		{"same project other tenant", "GET", groupsPath("OTHER", "MOH"), "SHIP/MOH", 403},
		{"unknown tenant", "GET", groupsPath("NOPE", "MOH"), "SHIP/MOH", 403},
		{"create in other project", "POST", groupsPath("SHIP", "MOE"), "SHIP/MOH", 403},
		{"create in other tenant", "POST", groupsPath("OTHER", "MOH"), "SHIP/MOH", 403},
		{"delete in other tenant", "DELETE", groupsPath("OTHER", "MOH") + "/x", "SHIP/MOH", 403},
		{"get in other project", "GET", groupsPath("SHIP", "MOE") + "/x", "SHIP/MOH", 403},
		{"no key", "GET", groupsPath("SHIP", "MOH"), "", 401},
		{"no key create", "POST", groupsPath("SHIP", "MOH"), "", 401},
		{"wrong secret", "GET", groupsPath("SHIP", "MOH"), "Bearer " + wrongSecret, 401},
		{"unknown key", "GET", groupsPath("SHIP", "MOH"), "Bearer " + unknownKey, 401},
		{"malformed key", "GET", groupsPath("SHIP", "MOH"), "Bearer hunter2", 401},
		{"basic auth", "GET", groupsPath("SHIP", "MOH"), "Basic " + g.keys["SHIP/MOH"], 401},
		{"no key operation", "GET", "/v1/operations/op_aaaaaaaaaaaaaaaaaaaaaaaaaa", "", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.method == "POST" {
				body = map[string]string{"name": "sneaky"}
			}
			r := g.do(c.method, c.path, c.who, body)
			if r.status != c.want {
				t.Fatalf("%s %s: %d, want %d (%s)", c.method, c.path, r.status, c.want, r.body)
			}
			if c.want >= 400 {
				p := r.problem(t)
				if int(p.Status) != c.want {
					t.Errorf("problem status %d", p.Status)
				}
			}
			if c.want == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", r.header)
			}
		})
	}
	// None of the refused writes reached the store or the upstream.
	for _, who := range []string{"SHIP/MOE", "OTHER/MOH"} {
		if gs := g.list(who); len(gs) != 0 {
			t.Errorf("%s has groups after refused writes: %+v", who, gs)
		}
	}
	if st := g.up.sim.Stats().Totals; st.Requests != 0 {
		t.Errorf("refused requests caused %d upstream calls", st.Requests)
	}
}

// TestOperationsArePrivate: an operation id of one project reads as not
// found to another project's key.
func TestOperationsArePrivate(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	op := g.create("SHIP/MOH", "billing")
	for _, who := range []string{"SHIP/MOE", "OTHER/MOH"} {
		if r := g.do("GET", "/v1/operations/"+op.Id, who, nil); r.status != http.StatusNotFound {
			t.Errorf("%s reading another project's operation: %d", who, r.status)
		}
	}
	if r := g.do("GET", "/v1/operations/op_aaaaaaaaaaaaaaaaaaaaaaaaaa", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown operation: %d", r.status)
	}
}

// TestBadInputChangesNothing: malformed names and bodies get 400/415/422
// problems, and neither the mirror, the queue nor the upstream changes.
func TestBadInputChangesNothing(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	path := groupsPath("SHIP", "MOH")
	cases := []struct {
		name        string
		contentType string
		body        string
		want        int
		field       string
	}{
		{"not json", "application/json", `{"name":`, 400, ""},
		{"array", "application/json", `["billing"]`, 400, ""},
		{"empty body", "application/json", ``, 400, ""},
		{"two objects", "application/json", `{"name":"a"}{"name":"b"}`, 400, ""},
		{"unknown field", "application/json", `{"name":"billing","owner":"me"}`, 400, ""},
		{"name not a string", "application/json", `{"name":42}`, 400, ""},
		{"wrong media type", "text/plain", `{"name":"billing"}`, 415, ""},
		{"no name", "application/json", `{}`, 422, "name"},
		{"name with colon", "application/json", `{"name":"a:b"}`, 422, "name"},
		{"name with space", "application/json", `{"name":"a b"}`, 422, "name"},
		{"name starts with dash", "application/json", `{"name":"-a"}`, 422, "name"},
		{"name too long", "application/json", `{"name":"` + strings.Repeat("a", 65) + `"}`, 422, "name"},
		{"description too long", "application/json", `{"name":"ok","description":"` + strings.Repeat("d", 1025) + `"}`, 422, "description"},
		{"description with control char", "application/json", `{"name":"ok","description":"a\u0007b"}`, 422, "description"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", g.base+path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
			r := g.badInput().send(req)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			p := r.problem(t)
			if c.field != "" && (p.Errors == nil || len(*p.Errors) == 0 || (*p.Errors)[0].Field != c.field) {
				t.Errorf("problem should name field %q: %s", c.field, r.body)
			}
		})
	}
	for _, bad := range []struct{ path, field string }{
		{groupsPath("S", "MOH"), "tenant"},
		{groupsPath("SHIP", "M_H"), "project"},
		{groupsPath("SHIP", "MOH") + "/-bad", "group"},
		{groupsPath("SHIP", "MOH") + "/" + strings.Repeat("g", 65), "group"},
	} {
		r := g.badInput().do("GET", bad.path, "SHIP/MOH", nil)
		if r.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad.path, r.status)
			continue
		}
		if p := r.problem(t); p.Errors == nil || (*p.Errors)[0].Field != bad.field {
			t.Errorf("GET %s: problem should name %q: %s", bad.path, bad.field, r.body)
		}
	}
	if gs := g.list("SHIP/MOH"); len(gs) != 0 {
		t.Errorf("bad input created groups: %+v", gs)
	}
	if st := g.up.sim.Stats().Totals; st.Requests != 0 || st.TokenRequests != 0 {
		t.Errorf("bad input reached the upstream: %+v", st)
	}
}

// TestServiceEndpoints: probes, the contract and the docs page are served
// without credentials.
func TestServiceEndpoints(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	if r := g.do("GET", "/healthz", "", nil); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := g.do("GET", "/readyz", "", nil)
		var rd api.Readiness
		r.decode(t, &rd)
		if r.status == 200 && rd.Status == api.Ready && rd.Checks["store"].Status == api.CheckStatusOk && rd.Checks["dispatchers"].Status == api.CheckStatusOk {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %d %s", r.status, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := g.do("GET", "/openapi.yaml", "", nil)
	if r.status != 200 || string(r.body) != string(groupgate.PublishedSpec()) {
		t.Errorf("openapi.yaml: %d, %d bytes", r.status, len(r.body))
	}
	r = g.do("GET", "/docs", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "/openapi.yaml") || !strings.Contains(strings.ToLower(string(r.body)), "swagger") {
		t.Errorf("docs page: %d %s", r.status, r.body)
	}
	// The page's assets are embedded in the binary: no CDN.
	if strings.Contains(string(r.body), "://cdn") || strings.Contains(string(r.body), "unpkg.com") {
		t.Errorf("docs page loads assets from a CDN")
	}
	// The page's assets and unknown routes are outside the contract, so
	// these two requests cannot go through the validating client.
	resp, err := http.Get(g.base + "/docs/swagger-ui-bundle.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(js) < 10000 {
		t.Errorf("docs asset: %d, %d bytes", resp.StatusCode, len(js))
	}
	// Unknown routes are problems too.
	resp, err = http.Get(g.base + "/v2/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown route: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestSecretsNeverLeak is the canary: after a run that creates, fails,
// deletes and is refused, no client secret, API key or access token appears
// in any response body or header or in any log line.
func TestSecretsNeverLeak(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	op := g.create("SHIP/MOH", "canary")
	g.await("SHIP/MOH", op.Id, 10*time.Second)
	g.do("DELETE", groupsPath("SHIP", "MOH")+"/canary", "SHIP/MOH", nil)
	g.do("GET", groupsPath("OTHER", "MOH"), "SHIP/MOH", nil)
	g.badInput().do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", []byte(`{"name":`))
	g.do("GET", groupsPath("SHIP", "MOH"), "Bearer gk_0000000000_"+strings.Repeat("A", 43), nil)
	// A tenant whose secret was revoked before it ever got a token: every
	// token request fails, and the failure reaches the client sanitized.
	if err := g.up.sim.SetClientSecret("OTHER", "rotated-away"); err != nil {
		t.Fatal(err)
	}
	failing := g.create("OTHER/MOH", "doomed")
	got := g.await("OTHER/MOH", failing.Id, 20*time.Second)
	if got.State != api.Failed || got.Error == nil {
		t.Fatalf("operation with a revoked secret: %+v", got)
	}
	if !strings.Contains(*got.Error.Detail, "invalid_client") {
		t.Errorf("failure should name the token error code: %q", *got.Error.Detail)
	}
	if gs := g.list("OTHER/MOH"); len(gs) != 0 {
		t.Errorf("a failed create must release its name: %+v", gs)
	}
	g.stop()

	tokens := g.up.sim.IssuedTokens()
	if len(tokens) == 0 {
		t.Fatal("the run issued no token: the canary proves nothing")
	}
	secrets := map[string]string{}
	for k, v := range g.up.secrets {
		secrets[k] = v
	}
	for i, tok := range tokens {
		secrets["access token "+string(rune('0'+i))] = tok
	}
	for what, secret := range secrets {
		for where, text := range map[string]string{"responses": g.bodies.String(), "logs": g.logs.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("%s leaked into %s", what, where)
			}
		}
	}
	if !strings.Contains(g.logs.String(), "operation succeeded") {
		t.Error("the logs were not captured: the canary proves nothing")
	}
}

// TestRequestLogs: every request is logged with its request id (the
// caller's, when well-formed), the caller's key id, tenant, project and
// operation id.
func TestRequestLogs(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	req, _ := http.NewRequest("POST", g.base+groupsPath("SHIP", "MOH"), strings.NewReader(`{"name":"logged"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.keys["SHIP/MOH"])
	req.Header.Set("X-Request-Id", "trace-123")
	r := g.send(req)
	if r.header.Get("X-Request-Id") != "trace-123" {
		t.Errorf("request id not echoed: %v", r.header)
	}
	var op api.Operation
	r.decode(t, &op)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var line string
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, `"request_id":"trace-123"`) && strings.Contains(l, `"msg":"request"`) {
				line = l
			}
		}
		if line != "" {
			for _, want := range []string{`"tenant":"SHIP"`, `"project":"MOH"`, `"operation_id":"` + op.Id + `"`, `"actor":"key:` + tenants.KeyID(g.keys["SHIP/MOH"]) + `"`, `"status":202`} {
				if !strings.Contains(line, want) {
					t.Errorf("log line lacks %s: %s", want, line)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request log line with the request id:\n%s", g.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
