package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
)

// issueKey issues a key as the operator and records it in g.keys as who
// (so noSecretsIn looks for it in every page).
func issueKey(t *testing.T, g *gateway, who string, in map[string]any) api.KeyCreated {
	t.Helper()
	var k api.KeyCreated
	r := g.do("POST", "/v1/keys", "operator", in)
	if r.status != http.StatusCreated {
		t.Fatalf("issue %s: %d %s", who, r.status, r.body)
	}
	r.decode(t, &k)
	g.keys[who] = k.Key
	return k
}

// TestConsoleEnforcesPolicy signs in with each role that is confined to a
// tenant or project and opens the pages of another tenant or project: each
// is refused, and no page tells anything of the other's queue, operations,
// groups or keys (not even how many there are).
func TestConsoleEnforcesPolicy(t *testing.T) {
	g := startGateway(t, plainConsole(gatewayOptions{}))
	issueKey(t, g, "SHIP admin", map[string]any{"name": "ship-admin", "role": "tenant-admin", "tenant": "SHIP"})
	otherKey := issueKey(t, g, "OTHER admin", map[string]any{"name": "other-admin-key", "role": "tenant-admin", "tenant": "OTHER"})

	// OTHER's work: a group, and operations held queued by a slow pace.
	op := g.await("OTHER/MOH", g.create("OTHER/MOH", "other-secret-group").Id, 10*time.Second)
	if r := g.do("PATCH", "/v1/tenants/OTHER", "operator", map[string]any{"intervalSeconds": 60}); r.status != http.StatusOK {
		t.Fatalf("slow OTHER: %d %s", r.status, r.body)
	}
	var queued []string
	for i := range 3 {
		queued = append(queued, g.create("OTHER/MOH", fmt.Sprintf("other-queued-%d", i)).Id)
	}
	// MOE's work, for the project key of SHIP:MOH.
	moe := g.await("SHIP/MOE", g.create("SHIP/MOE", "moe-secret-group").Id, 10*time.Second)

	foreignOther := []string{
		"/console/tenants/OTHER",
		"/console/tenants/OTHER/projects/MOH",
		"/console/tenants/OTHER/projects/MOH/groups/other-secret-group",
		"/console/queue?tenant=OTHER",
		"/console/queue?tenant=OTHER&project=MOH",
		"/console/live/queue?tenant=OTHER",
		"/console/live/queue?tenant=OTHER&project=MOH",
		"/console/operations/" + op.Id,
		"/console/operations/" + queued[2],
		"/console/live/operations/" + queued[2],
		"/console/keys?tenant=OTHER",
		"/console/audit?tenant=OTHER",
	}
	secrets := append([]string{op.Id, "other-secret-group", "other-queued", otherKey.Id, "other-admin-key", "pending"}, queued...)
	for _, tc := range []struct {
		who     string
		pages   []string
		secrets []string
	}{
		{"SHIP admin", foreignOther, secrets},
		{"SHIP/MOH", foreignOther, secrets},
		{"SHIP/MOH", []string{
			"/console/tenants/SHIP",
			"/console/tenants/SHIP/projects/MOE",
			"/console/tenants/SHIP/projects/MOE/groups/moe-secret-group",
			"/console/queue?tenant=SHIP&project=MOE",
			"/console/live/queue?tenant=SHIP&project=MOE",
			"/console/operations/" + moe.Id,
			"/console/keys?tenant=SHIP",
			"/console/audit?tenant=SHIP",
		}, []string{moe.Id, "moe-secret-group", "ship-admin"}},
	} {
		c := newConsoleClient(t, g)
		c.signin(g.keys[tc.who])
		for _, page := range tc.pages {
			r := c.get(page)
			if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
				t.Errorf("%s opens %s: %d, want 403 or 404", tc.who, page, r.status)
			}
			for _, s := range tc.secrets {
				if strings.Contains(r.body, s) {
					t.Errorf("%s's view of %s shows %q", tc.who, page, s)
				}
			}
		}
	}

	// The operator may read OTHER, so the refusals above are the policy's,
	// not broken pages; the API shows queues to the tenant's keys only, and
	// so does the console.
	c := newConsoleClient(t, g)
	c.signin(g.keys["operator"])
	if r := c.get("/console/queue?tenant=OTHER"); r.status != http.StatusOK || !strings.Contains(r.body, `id="queue-hidden"`) || strings.Contains(r.body, `id="queue-unread"`) || strings.Contains(r.body, queued[2]) {
		t.Errorf("operator's queue of OTHER: %d\n%s", r.status, r.body)
	}
	o := newConsoleClient(t, g)
	o.signin(g.keys["OTHER/MOH"])
	if r := o.get("/console/queue"); r.status != http.StatusOK || !strings.Contains(r.body, queued[2]) {
		t.Errorf("OTHER:MOH's own queue: %d, lists %s: %v", r.status, queued[2], strings.Contains(r.body, queued[2]))
	}
}

// TestConsoleCookiesSecure: by default the console's cookies are Secure
// and __Host- prefixed even over plain HTTP (allow_http is for a
// TLS-terminating proxy, where browsers speak HTTPS).
func TestConsoleCookiesSecure(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	c := newConsoleClient(t, g)
	r := c.get("/console/signin")
	cookies := (&http.Response{Header: r.header}).Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Host-gg-signin" || !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].Path != "/" || cookies[0].Domain != "" {
		t.Fatalf("sign-in cookies %+v, want one Secure HttpOnly __Host-gg-signin", cookies)
	}
}

// TestConsoleIssuedKeyOnce: the page that shows a newly issued key is
// reached by a redirect, is not cached, and shows the key once: reloading
// it neither shows the key again nor issues another.
func TestConsoleIssuedKeyOnce(t *testing.T) {
	g := startGateway(t, plainConsole(gatewayOptions{}))
	c := newConsoleClient(t, g)
	c.signin(g.keys["operator"])
	count := func() int {
		var l api.KeyList
		g.do("GET", "/v1/keys", "operator", nil).decode(t, &l)
		return len(l.Keys)
	}
	before := count()
	page := c.get("/console/keys")
	r := c.post("/console/keys", url.Values{"csrf": {formToken(t, page.body, "csrf")}, "name": {"console-issued"}, "role": {"tenant-admin"}, "tenant": {"SHIP"}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/keys/issued" {
		t.Fatalf("issue: %d to %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
	// c.get checks pages for the keys in g.keys; this one must show its key.
	shown := c.get("/console/keys/issued")
	key := regexp.MustCompile(`gk_[a-z0-9]+_[A-Za-z0-9_-]{43}`).FindString(shown.body)
	if shown.status != http.StatusOK || key == "" || shown.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("issued page: %d, key found %v, Cache-Control %q", shown.status, key != "", shown.header.Get("Cache-Control"))
	}
	g.keys["issued"] = key
	if again := c.get("/console/keys/issued"); again.status != http.StatusNotFound {
		t.Errorf("reloaded issued page: %d, want 404", again.status)
	}
	if n := count(); n != before+1 {
		t.Errorf("keys after one issue and a reload: %d, want %d", n, before+1)
	}
	if r := g.do("GET", "/v1/tenants/SHIP", "issued", nil); r.status != http.StatusOK {
		t.Errorf("the shown key does not work: %d", r.status)
	}
}

// TestConsoleCredentialAges: the tenant page shows each credential's age
// as the server's credential loader knows it (the files' ages here), and
// a tenant-admin's view reads no metrics.
func TestConsoleCredentialAges(t *testing.T) {
	g := startGateway(t, plainConsole(gatewayOptions{}))
	c := newConsoleClient(t, g)
	c.signin(g.keys["operator"])
	page := c.get("/console/tenants/SHIP")
	for _, name := range []string{"client credential", "API key"} {
		if !regexp.MustCompile(name + `</dt><dd>[^<]*age \d+[smhd]</dd>`).MatchString(page.body) {
			t.Errorf("tenant page lacks the age of the %s:\n%s", name, page.body)
		}
	}
	issueKey(t, g, "SHIP admin", map[string]any{"name": "ship-admin", "role": "tenant-admin", "tenant": "SHIP"})
	a := newConsoleClient(t, g)
	a.signin(g.keys["SHIP admin"])
	if r := a.get("/console/tenants/SHIP"); r.status != http.StatusOK {
		t.Fatalf("tenant-admin's tenant page: %d", r.status)
	}
	if strings.Contains(g.logs.String(), `"route":"/metrics","status":403`) {
		t.Error("the tenant-admin's tenant page asked for /metrics")
	}
}

// TestDocsCSP: the docs page, on the console's origin, allows scripts from
// this origin and its own inline scripts by hash only (TestDocsBrowser
// shows Swagger UI still works under it).
func TestDocsCSP(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, path := range []string{"/docs/", "/docs/swagger-ui-bundle.js"} {
		resp, err := http.Get(g.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		script := regexp.MustCompile(`script-src ([^;]*)`).FindStringSubmatch(csp)
		if resp.StatusCode != http.StatusOK || script == nil || strings.Contains(script[1], "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: %d, CSP %q", path, resp.StatusCode, csp)
		}
		if path == "/docs/" && !strings.Contains(script[1], "'sha256-") {
			t.Errorf("docs page CSP allows no inline script by hash: %q", csp)
		}
	}
}

// TestConsoleRequestID: the console's in-process API requests carry the
// X-Request-Id of the page request they serve, so one id follows a page
// through the access log.
func TestConsoleRequestID(t *testing.T) {
	g := startGateway(t, plainConsole(gatewayOptions{}))
	c := newConsoleClient(t, g)
	c.signin(g.keys["SHIP/MOH"])
	req, err := http.NewRequest("GET", g.base+"/console/tenants/SHIP/projects/MOH", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "console-page-0123456789")
	if r := c.do(req); r.status != http.StatusOK {
		t.Fatalf("project page: %d", r.status)
	}
	var routes []string
	for line := range strings.SplitSeq(g.logs.String(), "\n") {
		if strings.Contains(line, `"request_id":"console-page-0123456789"`) {
			if m := regexp.MustCompile(`"route":"([^"]+)"`).FindStringSubmatch(line); m != nil {
				routes = append(routes, m[1])
			}
		}
	}
	for _, want := range []string{"/v1/tenants/:tenant/projects/:project/groups", "/v1/tenants/:tenant/projects/:project/queue"} {
		if !strings.Contains(strings.Join(routes, " "), want) {
			t.Errorf("API requests logged with the page's request id: %v; want %s among them", routes, want)
		}
	}
}
