package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestConsoleSessions checks the console's session rules over plain HTTP:
// a changing request with the session cookie but without the session's
// CSRF token is refused and changes nothing, sign-in needs its form token,
// a disabled tenant ends its sessions, and pages carry a strict CSP.
func TestConsoleSessions(t *testing.T) {
	g := startGateway(t, plainConsole(gatewayOptions{}))
	c := newConsoleClient(t, g)
	c.signin(g.keys["SHIP/MOH"])

	page := c.get("/console/tenants/SHIP/projects/MOH")
	if page.status != http.StatusOK {
		t.Fatalf("project page: %d", page.status)
	}
	csp := page.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || page.header.Get("Cache-Control") != "no-store" {
		t.Errorf("CSP %q, Cache-Control %q", csp, page.header.Get("Cache-Control"))
	}
	token := formToken(t, page.body, "csrf")
	groups := "/console/tenants/SHIP/projects/MOH/groups"
	for _, tc := range []struct {
		name  string
		form  url.Values
		extra map[string]string
	}{
		{"no token", url.Values{"name": {"nocsrf"}}, nil},
		{"wrong token", url.Values{"name": {"nocsrf"}, "csrf": {token + "x"}}, nil},
		{"another origin", url.Values{"name": {"nocsrf"}, "csrf": {token}}, map[string]string{"Origin": "http://localhost:1"}},
	} {
		if r := c.post(groups, tc.form, tc.extra); r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, r.status)
		}
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH")+"/nocsrf", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Fatalf("a refused POST created the group: %d", r.status)
	}
	if r := c.post(groups, url.Values{"name": {"withcsrf"}, "csrf": {token}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("POST with the token: status %d, want 303", r.status)
	}

	// The operator's API sees the console's write in the audit log, made by
	// the project key (the console acted as it, not as itself).
	var page2 api.AuditPage
	g.do("GET", "/v1/audit?action=group.create&tenant=SHIP", "operator", nil).decode(t, &page2)
	if len(page2.Entries) != 1 || page2.Entries[0].Actor != "key:"+keyID(g.keys["SHIP/MOH"]) {
		t.Errorf("audit of the console's create: %+v", page2.Entries)
	}

	// The console's in-process requests carry their principal in the
	// context; from the network, its placeholder credential is nothing.
	if r := g.do("GET", groupsPath("SHIP", "MOH"), "Bearer console-session", nil); r.status != http.StatusUnauthorized {
		t.Errorf("API request with the console's placeholder credential: %d, want 401", r.status)
	}

	// Sign-in without its form token is refused.
	other := newConsoleClient(t, g)
	if r := other.post("/console/signin", url.Values{"key": {g.keys["SHIP/MOH"]}}, nil); r.status != http.StatusForbidden {
		t.Errorf("sign-in without the form token: %d, want 403", r.status)
	}

	// Disabling the tenant ends the session at its next request.
	if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"disabled": true}); r.status != http.StatusOK {
		t.Fatalf("disable SHIP: %d %s", r.status, r.body)
	}
	if r := c.get("/console/tenants/SHIP/projects/MOH"); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "signin") {
		t.Errorf("after disabling the tenant: %d to %q, want a redirect to sign-in", r.status, r.header.Get("Location"))
	}
	if r := c.get("/console/live/queue"); r.status != http.StatusUnauthorized {
		t.Errorf("live part after the session ended: %d, want 401", r.status)
	}
}

// plainConsole turns off Secure cookies in o's gateway: the tests reach
// it over plain HTTP, as the local demo does, and a client sends Secure
// cookies only over HTTPS.
func plainConsole(o gatewayOptions) gatewayOptions {
	mutate := o.mutate
	o.mutate = func(c *config.Config) {
		c.Console.SecureCookies = false
		if mutate != nil {
			mutate(c)
		}
	}
	return o
}

// consoleClient is a browser stand-in: a cookie jar, no redirects
// followed, so each answer is seen.
type consoleClient struct {
	t    *testing.T
	g    *gateway
	http *http.Client
}

type consoleResponse struct {
	status int
	header http.Header
	body   string
}

func newConsoleClient(t *testing.T, g *gateway) *consoleClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, g: g, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *consoleClient) do(req *http.Request) consoleResponse {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	noSecretsIn(c.t, c.g, req.URL.Path, string(b))
	return consoleResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c *consoleClient) get(path string) consoleResponse {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.g.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

func (c *consoleClient) post(path string, form url.Values, header map[string]string) consoleResponse {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.g.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return c.do(req)
}

// signin signs in with key through the sign-in form.
func (c *consoleClient) signin(key string) {
	c.t.Helper()
	form := c.get("/console/signin")
	r := c.post("/console/signin", url.Values{"key": {key}, "token": {formToken(c.t, form.body, "token")}}, nil)
	if r.status != http.StatusSeeOther {
		c.t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
}

// formToken returns the value of the first hidden input called name.
func formToken(t *testing.T, html, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no %s field in:\n%s", name, html)
	}
	return m[1]
}

// keyID returns the id part of an API key gk_<id>_<secret>.
func keyID(key string) string { return strings.Split(key, "_")[1] }

// noSecretsIn fails if a console page holds a key of the gateway or any
// TechPass credential.
func noSecretsIn(t *testing.T, g *gateway, path, html string) {
	t.Helper()
	for who, key := range g.keys {
		if strings.Contains(html, key) {
			t.Errorf("%s shows the key of %s", path, who)
		}
	}
	for what, secret := range g.up.secrets {
		if strings.Contains(html, secret) {
			t.Errorf("%s shows the %s", path, what)
		}
	}
}

// TestConsoleGroupLifecycle drives a group's whole life through the
// console's forms as a project key, checking each change through the API:
// describe, add and remove a member, delete; and cancels a queued
// operation from the queue.
func TestConsoleGroupLifecycle(t *testing.T) {
	// Under constant server errors a create's outcome is unknown, and the
	// checks that follow are bounded by the retry window alone (failed
	// checks are not counted failures): keep the window short so that the
	// failing create below fails within the test.
	g := startGateway(t, plainConsole(gatewayOptions{interval: 100 * time.Millisecond, mutate: func(c *config.Config) {
		c.Retry.MaxDuration = config.Duration(2 * time.Second)
	}}))
	c := newConsoleClient(t, g)
	c.signin(g.keys["SHIP/MOH"])
	base := "/console/tenants/SHIP/projects/MOH"
	// submit posts a form of page and awaits the operation it starts.
	submit := func(page, action string, form url.Values) api.Operation {
		t.Helper()
		form.Set("csrf", formToken(t, c.get(page).body, "csrf"))
		r := c.post(action, form, nil)
		id, ok := strings.CutPrefix(r.header.Get("Location"), "/console/operations/")
		if r.status != http.StatusSeeOther || !ok {
			t.Fatalf("POST %s: %d to %q\n%s", action, r.status, r.header.Get("Location"), r.body)
		}
		if page := c.get("/console/operations/" + id); page.status != http.StatusOK || !strings.Contains(page.body, id) {
			t.Fatalf("operation page of %s: %d", id, page.status)
		}
		return g.await("SHIP/MOH", id, 10*time.Second)
	}
	group := base + "/groups/lifecycle"
	if op := submit(base, base+"/groups", url.Values{"name": {"lifecycle"}, "description": {"first"}}); op.State != api.Succeeded {
		t.Fatalf("create: %s", op.State)
	}
	if op := submit(group, group+"/description", url.Values{"description": {"second"}}); op.State != api.Succeeded {
		t.Fatalf("describe: %s", op.State)
	}
	if op := submit(group, group+"/members/add", url.Values{"users": {"user001@example.gov.sg, user002@example.gov.sg"}}); op.State != api.Succeeded {
		t.Fatalf("add members: %s", op.State)
	}
	var gr api.Group
	g.do("GET", groupsPath("SHIP", "MOH")+"/lifecycle", "SHIP/MOH", nil).decode(t, &gr)
	if gr.Description != "second" || gr.MemberCount == nil || *gr.MemberCount != 2 {
		t.Fatalf("after the console's changes: %+v", gr)
	}
	page := c.get(group)
	if !strings.Contains(page.body, "user002@example.gov.sg") {
		t.Fatal("group page lacks the added member")
	}
	id := regexp.MustCompile(`name="user" value="([^"]+)"`).FindAllStringSubmatch(page.body, -1)
	if len(id) != 2 {
		t.Fatalf("group page offers %d members to remove, want 2", len(id))
	}
	if op := submit(group, group+"/members/remove", url.Values{"user": {id[0][1]}}); op.State != api.Succeeded {
		t.Fatalf("remove member: %s", op.State)
	}
	g.do("GET", groupsPath("SHIP", "MOH")+"/lifecycle", "SHIP/MOH", nil).decode(t, &gr)
	if *gr.MemberCount != 1 {
		t.Fatalf("members after removing one: %d", *gr.MemberCount)
	}
	if op := submit(group, group+"/delete", url.Values{}); op.State != api.Succeeded {
		t.Fatalf("delete: %s", op.State)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH")+"/lifecycle", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Fatalf("deleted group still there: %d", r.status)
	}

	// Cancel the last of three queued creates from the queue page, while
	// the tenant's pacing (stretched to a minute) holds them queued.
	pace := func(seconds float64) {
		t.Helper()
		if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"intervalSeconds": seconds}); r.status != http.StatusOK {
			t.Fatalf("set SHIP's interval: %d %s", r.status, r.body)
		}
	}
	pace(60)
	var last api.Operation
	for i := range 3 {
		last = g.create("SHIP/MOH", fmt.Sprintf("wait-%d", i))
	}
	q := c.get("/console/queue")
	if !strings.Contains(q.body, last.Id) {
		t.Fatalf("queue page lacks %s", last.Id)
	}
	r := c.post("/console/operations/"+last.Id+"/cancel", url.Values{"csrf": {formToken(t, q.body, "csrf")}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("cancel: %d\n%s", r.status, r.body)
	}
	var op api.Operation
	g.do("GET", "/v1/operations/"+last.Id, "SHIP/MOH", nil).decode(t, &op)
	if op.State != api.Cancelled {
		t.Fatalf("cancelled operation is %s", op.State)
	}

	pace(0.1)

	// A create that failed for good is retried from its page.
	if err := g.up.sim.SetFaults(techpasssim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	failed := g.await("SHIP/MOH", g.create("SHIP/MOH", "flaky").Id, 20*time.Second)
	if failed.State != api.Failed {
		t.Fatalf("create under constant server errors: %s", failed.State)
	}
	if err := g.up.sim.SetFaults(techpasssim.Faults{}); err != nil {
		t.Fatal(err)
	}
	opPage := c.get("/console/operations/" + failed.Id)
	if !strings.Contains(opPage.body, `id="retry"`) {
		t.Fatal("failed operation's page offers no retry")
	}
	r = c.post("/console/operations/"+failed.Id+"/retry", url.Values{"csrf": {formToken(t, opPage.body, "csrf")}}, nil)
	retried, ok := strings.CutPrefix(r.header.Get("Location"), "/console/operations/")
	if r.status != http.StatusSeeOther || !ok {
		t.Fatalf("retry: %d\n%s", r.status, r.body)
	}
	if op := g.await("SHIP/MOH", retried, 20*time.Second); op.State != api.Succeeded {
		t.Fatalf("retried create: %s", op.State)
	}
}
