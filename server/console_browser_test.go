//go:build unix

package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestConsoleBrowser drives the web console in a real headless Chromium:
// an operator signs in (a session id planted before sign-in is not kept),
// sees the tenants and issues a tenant-admin key, which is shown once; the
// tenant-admin signs in with it, creates a group and watches its operation
// finish without a reload, adds a member, then revokes its own key and
// sees its session end. A form on another site that posts to the console
// is refused, and every page keeps to its CSP (no violation reported), asks
// nothing of any other host and shows no secret.
//
// With GROUPGATE_SCREENSHOTS=<dir> it writes PNGs of the main pages there
// (GROUPGATE_SCREENSHOTS=docs/ from the repository root refreshes the
// README's). Skipped without Chromium, except under CI (see TestDocsBrowser).
func TestConsoleBrowser(t *testing.T) {
	bin := needChromium(t)
	shots := os.Getenv("GROUPGATE_SCREENSHOTS")
	if shots != "" && !filepath.IsAbs(shots) {
		shots = filepath.Join("..", shots) // relative to the repository root
	}
	// A slower upstream leaves operations queued long enough to be seen.
	g := startGateway(t, gatewayOptions{interval: 150 * time.Millisecond})
	gw, err := url.Parse(g.base)
	if err != nil {
		t.Fatal(err)
	}
	// Another site: localhost is a different site from 127.0.0.1.
	evil := startCrossSite(t, g.base+"/console/tenants/SHIP/projects/MOH/groups")

	ctx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.WindowSize(1280, 900),
	)...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	// What the browser asks for and what it complains about.
	var (
		mu       sync.Mutex
		hosts    = map[string]bool{}
		problems []string
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if u, err := url.Parse(ev.Request.URL); err == nil && u.Host != "" {
				hosts[u.Host] = true
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				problems = append(problems, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		}
	}); err != nil {
		t.Fatal(err)
	}
	fatal := func(what string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		main, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, main)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		for i, step := range steps {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := chromedp.Do(sctx, step)
			cancel()
			if err != nil {
				fatal(fmt.Sprintf("%s (step %d)", what, i+1), err)
			}
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			fatal(what, err)
		}
		return v
	}
	html := func() string { t.Helper(); return get("read the page", chromedp.OuterHTML(chromedp.CSS("html"))) }
	var page string
	visit := func(what, path string) {
		t.Helper()
		run(what, chromedp.Navigate(g.base+path), chromedp.WaitReady(chromedp.CSS("main")))
		page = html()
		noSecretsIn(t, g, path, page)
	}
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			fatal("screenshot "+name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	signin := func(key string) {
		t.Helper()
		run("sign in", chromedp.Navigate(g.base+"/console/signin"), chromedp.WaitVisible(chromedp.CSS("#key")),
			chromedp.SendKeys(chromedp.CSS("#key"), key), chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(chromedp.CSS("#who")))
	}
	sessionCookie := func() string {
		t.Helper()
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{g.base + "/console/"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Cookies {
			if c.Name == "__Host-gg" {
				if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict {
					t.Errorf("session cookie: HttpOnly %v, Secure %v, SameSite %v; want HttpOnly, Secure, Strict", c.HTTPOnly, c.Secure, c.SameSite)
				}
				return c.Value
			}
		}
		return ""
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}

	run("open the console", chromedp.Navigate(g.base+"/console/"), chromedp.WaitVisible(chromedp.CSS("#key")))
	if !strings.Contains(html(), `id="signin"`) {
		t.Fatal("/console/ without a session did not show the sign-in page")
	}
	// A live session id planted before sign-in (another's, from its own
	// sign-in) is not kept, and is dead after the sign-in.
	planted := rawSignin(t, g, g.keys["SHIP/MOH"])
	if status, _ := rawGet(t, g, planted, "/console/queue"); status != http.StatusOK {
		t.Fatalf("the session to plant does not work: %d", status)
	}
	yes := true
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "__Host-gg", Value: planted, URL: g.base + "/console/", Path: "/", HTTPOnly: &yes, Secure: &yes}); err != nil {
		t.Fatal(err)
	}
	run("open the sign-in page", chromedp.Navigate(g.base+"/console/signin"), chromedp.WaitVisible(chromedp.CSS("#key")))
	shot("console-signin.png")
	signin(g.keys["operator"])
	if id := sessionCookie(); id == "" || id == planted {
		t.Fatalf("session cookie after sign-in is %q; want a new id", id)
	}
	if status, loc := rawGet(t, g, planted, "/console/queue"); status != http.StatusSeeOther || !strings.Contains(loc, "signin") {
		t.Errorf("the planted session still works after the sign-in: %d %q", status, loc)
	}

	// Operators: tenants, keys.
	visit("tenants", "/console/tenants")
	for _, want := range []string{">SHIP<", ">OTHER<", "this process", `class="badge token ok">ok<`} {
		if !strings.Contains(page, want) {
			t.Errorf("tenants page lacks %q", want)
		}
	}
	shot("console-tenants.png")
	visit("tenant SHIP", "/console/tenants/SHIP")
	if !strings.Contains(page, ">MOH<") || !strings.Contains(page, ">MOE<") {
		t.Errorf("tenant page lacks its projects")
	}
	run("issue a tenant-admin key",
		chromedp.Navigate(g.base+"/console/keys"), chromedp.WaitVisible(chromedp.CSS("#issue-form")),
		chromedp.SendKeys(chromedp.CSS("#key-name"), "console test admin"),
		chromedp.SetValue(chromedp.CSS("#key-role"), "tenant-admin"), chromedp.SetValue(chromedp.CSS("#key-tenant"), "SHIP"),
		chromedp.Click(chromedp.CSS("#issue")), chromedp.WaitVisible(chromedp.CSS("#new-key")))
	newKey := strings.TrimSpace(get("read the new key", chromedp.Text(chromedp.CSS("#new-key"))))
	newKeyID := strings.TrimSpace(get("read the new key id", chromedp.Text(chromedp.CSS("#new-key-id"))))
	if !strings.HasPrefix(newKey, "gk_"+newKeyID+"_") {
		t.Fatalf("issued key %q does not belong to id %q", newKey, newKeyID)
	}
	g.keys["console-admin"] = newKey // never shown again: noSecretsIn checks it
	visit("keys", "/console/keys?tenant=SHIP")
	if !strings.Contains(page, newKeyID) {
		t.Fatalf("keys page does not list key %s", newKeyID)
	}
	shot("console-keys.png")
	run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#notice")))

	// The tenant-admin: a group, its operation, a member. The tenant's
	// pacing is stretched to a minute while the test looks at queued work,
	// so what it sees does not depend on how fast this machine is.
	signin(newKey)
	queue := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			r := g.do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": fmt.Sprintf("%s-%d", prefix, i)})
			if r.status != http.StatusAccepted {
				t.Fatalf("queue a group: %d %s", r.status, r.body)
			}
		}
	}
	pace := func(seconds float64) {
		t.Helper()
		if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"intervalSeconds": seconds}); r.status != http.StatusOK {
			t.Fatalf("set SHIP's interval: %d %s", r.status, r.body)
		}
	}
	// An upstream request just now, so the next waits a whole interval.
	g.await("SHIP/MOH", g.create("SHIP/MOH", "before").Id, 10*time.Second)
	pace(60)
	run("create a group", chromedp.Navigate(g.base+"/console/tenants/SHIP/projects/MOH"), chromedp.WaitVisible(chromedp.CSS("#create-form")),
		chromedp.SendKeys(chromedp.CSS("#group-name"), "console-e2e"), chromedp.SendKeys(chromedp.CSS("#group-description"), "made in the console"),
		chromedp.Click(chromedp.CSS("#create")), chromedp.WaitVisible(chromedp.CSS("#op-live")))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	if first := get("read the state", chromedp.Text(chromedp.CSS("#op-state"))); first != "queued" && first != "running" {
		t.Fatalf("the new group's operation is %q at once; the test wants to watch it finish", first)
	}
	pace(0.15)
	run("watch the operation finish", chromedp.WaitVisible(chromedp.CSS("#op-live [data-final]")))
	state := get("read the state", chromedp.Text(chromedp.CSS("#op-state")))
	kept, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true`))
	if err != nil {
		t.Fatal(err)
	}
	polled, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#op-live"), "data-polled"))
	if err != nil {
		t.Fatal(err)
	}
	if state != "succeeded" || !kept || polled.Value == "" {
		t.Fatalf("operation state %q, page kept %v, polled %q times: want succeeded, seen live without a reload", state, kept, polled.Value)
	}
	run("add a member", chromedp.Navigate(g.base+"/console/tenants/SHIP/projects/MOH/groups/console-e2e"), chromedp.WaitVisible(chromedp.CSS("#add-form")),
		chromedp.SendKeys(chromedp.CSS("#users"), "user001@example.gov.sg"), chromedp.Click(chromedp.CSS("#add")),
		chromedp.WaitVisible(chromedp.CSS("#op-live [data-final]")))
	if state := get("read the state", chromedp.Text(chromedp.CSS("#op-state"))); state != "succeeded" {
		t.Fatalf("member operation ended %q", state)
	}
	visit("group", "/console/tenants/SHIP/projects/MOH/groups/console-e2e")
	if !strings.Contains(page, "user001@example.gov.sg") || !strings.Contains(page, "made in the console") {
		t.Errorf("group page lacks its member or description")
	}
	shot("console-group.png")

	// A queue with work waiting, seen draining live.
	pace(60)
	queue("queued", 6)
	visit("project", "/console/tenants/SHIP/projects/MOH")
	if !strings.Contains(page, "queued-5") {
		t.Errorf("project page's queue lacks the queued operations")
	}
	shot("console-project.png")
	pace(0.15)
	run("watch the queue drain", chromedp.WaitVisible(`//table[@id="queue"]//td[contains(., "Nothing pending")]`))
	visit("audit", "/console/audit?tenant=SHIP&action=group.create")
	if !strings.Contains(page, "console-e2e") {
		t.Errorf("audit page lacks the console's group.create")
	}

	// A same-site POST without the CSRF token (a script on the console's
	// own origin, which SameSite does not stop) is refused by the token
	// check, and so is one with another Origin.
	csrfStatus, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/console/tenants/SHIP/projects/MOH/groups",
		{method: "POST", body: new URLSearchParams({name: "no-token"})}).then(r => r.status)`, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil || csrfStatus != http.StatusForbidden {
		t.Errorf("same-site POST without the CSRF token: %d %v, want 403", csrfStatus, err)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH")+"/no-token", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Errorf("the POST without a token created a group: %d", r.status)
	}

	// A form on another site posting to the console is refused.
	run("cross-site POST", chromedp.Navigate(evil+"/"), chromedp.WaitVisible(chromedp.CSS("#go")), chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if p := html(); !strings.Contains(p, "refused") {
		t.Errorf("cross-site POST answered:\n%s", p)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH")+"/evil", "SHIP/MOH", nil); r.status != http.StatusNotFound {
		t.Errorf("the cross-site POST created a group: %d %s", r.status, r.body)
	}

	// Revoking the session's own key ends the session at once.
	run("revoke the session's key", chromedp.Navigate(g.base+"/console/keys"), chromedp.WaitVisible(chromedp.CSS("#revoke-"+newKeyID)),
		chromedp.Click(chromedp.CSS("#revoke-"+newKeyID)), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if p := html(); !strings.Contains(p, "Your session ended") || !strings.Contains(p, `id="signin"`) {
		t.Fatalf("after revoking its key the session goes on:\n%s", p)
	}
	if id := sessionCookie(); id != "" {
		t.Errorf("session cookie %q still set after the session ended", id)
	}

	mu.Lock()
	defer mu.Unlock()
	for h := range hosts {
		if h != gw.Host && !strings.HasPrefix(evil, "http://"+h) {
			t.Errorf("the console made the browser reach %s", h)
		}
	}
	for _, p := range problems {
		// The refused POSTs (cross-site, and without a token) are logged as
		// failed loads of the groups URL; nothing else may be.
		if !strings.Contains(p, "status of 403") || !strings.Contains(p, "/console/tenants/SHIP/projects/MOH/groups") {
			t.Errorf("browser reported: %s", p)
		}
	}
}

// rawSignin signs in with key over plain HTTP, sending the (Secure)
// cookies by hand, and returns the new session id.
func rawSignin(t *testing.T, g *gateway, key string) string {
	t.Helper()
	resp, err := http.Get(g.base + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", g.base+"/console/signin",
		strings.NewReader(url.Values{"key": {key}, "token": {formToken(t, string(body), "token")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-gg" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("sign-in gave no session: %d", resp.StatusCode)
	return ""
}

// rawGet requests path with the session id alone, and returns the status
// and redirect.
func rawGet(t *testing.T, g *gateway, session, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.base+path, nil)
	req.AddCookie(&http.Cookie{Name: "__Host-gg", Value: session})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// startCrossSite serves, on http://localhost (another site than the
// gateway's 127.0.0.1), a page whose form posts a group to target without
// a CSRF token.
func startCrossSite(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><form method="post" action="%s">
<input type="hidden" name="name" value="evil"><button id="go" type="submit">Win a prize</button></form></body></html>`, target)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
