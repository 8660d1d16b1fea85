package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/webhooks"
)

func webhookPath(tenant string) string { return "/v1/tenants/" + tenant + "/webhooks/techpass" }

// connectWebhooks points the simulator's webhooks of every namespace at g,
// retried every retry.
func (g *gateway) connectWebhooks(retry time.Duration) {
	g.t.Helper()
	for ns, secret := range g.up.hookSecrets {
		if err := g.up.sim.SetWebhook(ns, techpasssim.Webhook{URL: g.base + webhookPath(ns), Secret: secret, RetryEvery: retry}); err != nil {
			g.t.Fatal(err)
		}
	}
}

// deliver POSTs body to tenant's webhook with the signature header sig
// ("" for none).
func (g *gateway) deliver(tenant string, body []byte, sig string) response {
	g.t.Helper()
	req, err := http.NewRequest("POST", g.base+webhookPath(tenant), bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(webhooks.SignatureHeader, sig)
	}
	return g.send(req)
}

// simAdmin sends an admin request to the simulator and checks its status.
func (g *gateway) simAdmin(method, path string, body any, want int) {
	g.t.Helper()
	var raw []byte
	if body != nil {
		raw = mustJSON(g.t, body)
	}
	req, err := http.NewRequest(method, g.up.srv.URL+path, bytesReader(raw))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		g.t.Fatalf("simulator %s %s: %d, want %d", method, path, resp.StatusCode, want)
	}
}

// awaitDelivered waits until the simulator has delivered n events to ns.
func awaitDelivered(t *testing.T, up *upstream, ns string, n int, within time.Duration) techpasssim.WebhookStats {
	t.Helper()
	var st techpasssim.WebhookStats
	if !testkit.Poll(within, 10*time.Millisecond, func() bool { st = up.sim.WebhookStats(ns); return st.Delivered >= n }) {
		t.Fatalf("%s: %+v after %v, want %d delivered", ns, st, within, n)
	}
	return st
}

func (g *gateway) addMembers(who, group string, users ...string) api.Operation {
	g.t.Helper()
	tenant, project, _ := strings.Cut(who, "/")
	r := g.do("POST", membersPath(tenant, project, group), who, map[string]any{"users": users})
	if r.status != http.StatusAccepted && r.status != http.StatusOK {
		g.t.Fatalf("add members: %d %s", r.status, r.body)
	}
	var op api.Operation
	r.decode(g.t, &op)
	return op
}

func memberEmails(ms []api.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Email
	}
	return out
}

// TestWebhookUserDeleted: a user deleted at TechPass (through the
// simulator's admin endpoint) leaves the mirror's groups and known users by
// webhook, with no upstream request; the drift is audited; a member add of
// the user queued before the delivery arrived fails, naming the reason,
// without a request for it.
func TestWebhookUserDeleted(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 500 * time.Millisecond})
	g.connectWebhooks(50 * time.Millisecond)
	users := techpasssim.DemoUsers(3)
	g.createActive("SHIP/MOH", "billing")
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "billing", users[0].Email, users[1].Email).Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("add members: %+v", op.Error)
	}
	g.createActive("SHIP/MOE", "payroll")
	// Queue two creates and then an add of users[0]: the add waits its turn
	// behind the creates (a second at least) while the user is deleted.
	g.create("SHIP/MOE", "later")
	g.create("SHIP/MOE", "later2")
	queued := g.addMembers("SHIP/MOE", "payroll", users[0].Email)
	before := g.up.stats("SHIP").Requests
	g.simAdmin("DELETE", "/_sim/users/"+users[0].ID, nil, http.StatusNoContent)
	awaitDelivered(t, g.up, "SHIP", 1, 5*time.Second)
	var still api.Operation
	if g.do("GET", "/v1/operations/"+queued.Id, "SHIP/MOE", nil).decode(t, &still); still.State != api.Queued {
		t.Fatalf("the add was %s when the webhook arrived; the case needs it queued", still.State)
	}

	if got := memberEmails(must(g.members("SHIP/MOH", "billing", 0, ""))); len(got) != 1 || got[0] != users[1].Email {
		t.Errorf("billing members after the deletion = %v, want only %s", got, users[1].Email)
	}
	if n := g.up.stats("SHIP").Requests; n != before {
		t.Errorf("the webhook cost %d upstream requests, want none", n-before)
	}
	done := g.await("SHIP/MOE", queued.Id, 10*time.Second)
	if done.State != api.Failed || done.Error == nil || done.Error.Title != "User deleted" ||
		!strings.Contains(*done.Error.Detail, users[0].Email) || !strings.Contains(*done.Error.Detail, "deleted") {
		t.Fatalf("queued add of the deleted user: %s %+v, want failed with reason User deleted", done.State, done.Error)
	}
	if n := g.up.stats("SHIP").ByRoute[techpass.RouteAddMember]; n != 2 {
		t.Errorf("addMember requests = %d, want 2 (the first two members only)", n)
	}
	vanished := g.auditActions("SHIP", "drift.member.vanished")
	if len(vanished) != 1 || deref(vanished[0].Target) != "SHIP:MOH:billing" || !strings.Contains(deref(vanished[0].Detail), users[0].Email) {
		t.Errorf("drift.member.vanished entries = %+v", vanished)
	}
	if del := g.auditActions("SHIP", "drift.user.deleted"); len(del) != 1 || !strings.Contains(deref(del[0].Target), users[0].ID) {
		t.Errorf("drift.user.deleted entries = %+v", del)
	}
	// Adding the deleted user anew fails the same way, before any request.
	reqs := g.up.stats("SHIP").Requests
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "billing", users[0].ID).Id, 10*time.Second); op.State != api.Failed || op.Error.Title != "User deleted" {
		t.Errorf("add by id after the deletion: %s %+v", op.State, op.Error)
	}
	if n := g.up.stats("SHIP").Requests; n != reqs {
		t.Errorf("the refused add made %d upstream requests", n-reqs)
	}
}

func must[T any, U any](v T, _ U) T { return v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestWebhookUserUpdated: a user's new e-mail at TechPass reaches the
// mirror by webhook, so a member add by the new e-mail needs no user lookup
// upstream, and the old e-mail no longer names the member.
func TestWebhookUserUpdated(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.connectWebhooks(50 * time.Millisecond)
	users := techpasssim.DemoUsers(3)
	g.createActive("SHIP/MOH", "billing")
	g.createActive("SHIP/MOH", "payroll")
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "billing", users[1].Email).Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("add: %+v", op.Error)
	}
	before := g.up.stats("SHIP")
	g.simAdmin("PATCH", "/_sim/users/"+users[1].ID, map[string]string{"email": "renamed@agency.gov.sg"}, http.StatusOK)
	awaitDelivered(t, g.up, "SHIP", 1, 5*time.Second)
	if got := memberEmails(must(g.members("SHIP/MOH", "billing", 0, ""))); len(got) != 1 || got[0] != "renamed@agency.gov.sg" {
		t.Errorf("billing members = %v, want the new e-mail", got)
	}
	if n := g.up.stats("SHIP").Requests; n != before.Requests {
		t.Errorf("the webhook cost %d upstream requests", n-before.Requests)
	}
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "payroll", "renamed@agency.gov.sg").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("add by the new e-mail: %s %+v", op.State, op.Error)
	}
	if n := g.up.stats("SHIP").ByRoute[techpass.RouteGetUser]; n != before.ByRoute[techpass.RouteGetUser] {
		t.Errorf("the new e-mail was looked up upstream (%d getUser requests)", n-before.ByRoute[techpass.RouteGetUser])
	}
	if up := g.auditActions("SHIP", "drift.user.updated"); len(up) != 1 || !strings.Contains(deref(up[0].Detail), "renamed@agency.gov.sg") {
		t.Errorf("drift.user.updated entries = %+v", up)
	}
}

// TestWebhookVerification: a good delivery is applied once; a bad
// signature, a stale or future timestamp, no header, another tenant's
// secret, an oversized or malformed body are refused and change nothing; a
// repeat is a duplicate; the registration check echoes its token.
func TestWebhookVerification(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	users := techpasssim.DemoUsers(3)
	g.createActive("SHIP/MOH", "billing")
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "billing", users[0].Email, users[1].Email).Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("add: %+v", op.Error)
	}
	secret := []byte(g.up.hookSecrets["SHIP"])
	body := mustJSON(t, map[string]any{"event": "user-deleted", "user": map[string]string{"id": users[0].ID, "email": users[0].Email}})
	now := time.Now()
	refused := []struct {
		name, sig string
		body      []byte
		status    int
	}{
		{"no signature", "", body, 401},
		{"wrong secret", webhooks.Sign([]byte("not the secret"), now, body), body, 401},
		{"other tenant's secret", webhooks.Sign([]byte(g.up.hookSecrets["OTHER"]), now, body), body, 401},
		{"tampered body", webhooks.Sign(secret, now, body), bytes.Replace(body, []byte(users[0].ID), []byte(users[1].ID), 1), 401},
		{"stale", webhooks.Sign(secret, now.Add(-6*time.Minute), body), body, 401},
		{"future", webhooks.Sign(secret, now.Add(6*time.Minute), body), body, 401},
		{"garbage header", "t=abc,v1=zz", body, 401},
		{"too large", "t=1,v1=00", bytes.Repeat([]byte(" "), webhooks.MaxBody+1), 413},
		{"not JSON", webhooks.Sign(secret, now, []byte("{not json")), []byte("{not json"), 400},
	}
	for _, c := range refused {
		gw := g
		if !json.Valid(c.body) {
			gw = g.badInput() // the contract refuses a body that is not a JSON object
		}
		r := gw.deliver("SHIP", c.body, c.sig)
		if r.status != c.status {
			t.Errorf("%s: %d, want %d (%s)", c.name, r.status, c.status, r.body)
			continue
		}
		r.problem(t)
	}
	if got := must(g.members("SHIP/MOH", "billing", 0, "")); len(got) != 2 {
		t.Fatalf("refused deliveries changed the mirror: %v", memberEmails(got))
	}
	if denied := g.auditActions("SHIP", "webhook.receive"); len(denied) != 0 {
		t.Errorf("refused deliveries were audited: %d webhook.receive entries", len(denied))
	}
	// Refusals that reach the receiver (not the oversized one) are counted.
	if v, _ := value(g.scrape(), "groupgate_webhook_deliveries_total", map[string]string{"tenant": "SHIP", "kind": "refused"}); v != float64(len(refused)-1) {
		t.Errorf("refused deliveries counted %v, want %d", v, len(refused)-1)
	}

	var rec api.WebhookReceipt
	r := g.deliver("SHIP", body, webhooks.Sign(secret, now, body))
	if r.status != 200 {
		t.Fatalf("good delivery: %d %s", r.status, r.body)
	}
	if r.decode(t, &rec); rec.Status != api.Processed || rec.Event != "user-deleted" {
		t.Errorf("receipt = %+v", rec)
	}
	if calls := g.auditActions("SHIP", "webhook.receive"); len(calls) != 1 || calls[0].Actor != "techpass" || calls[0].Outcome != "succeeded" || deref(calls[0].Target) != "webhook:user-deleted" {
		t.Errorf("the verified delivery's audit entry: %+v", calls[0])
	}
	if got := must(g.members("SHIP/MOH", "billing", 0, "")); len(got) != 1 {
		t.Fatalf("after the delivery: %v", memberEmails(got))
	}
	// users[0] comes back (a later add through the gateway must survive
	// TechPass's retries of the old delivery, signed afresh).
	g.up.sim.AddUser(techpass.User{ID: users[0].ID, Email: users[0].Email, DisplayName: users[0].DisplayName})
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "billing", users[0].Email).Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("re-add: %s %+v", op.State, op.Error)
	}
	r = g.deliver("SHIP", body, webhooks.Sign(secret, now.Add(time.Minute), body))
	if r.decode(t, &rec); r.status != 200 || rec.Status != api.Duplicate {
		t.Errorf("replay: %d %+v, want 200 duplicate", r.status, rec)
	}
	if got := must(g.members("SHIP/MOH", "billing", 0, "")); len(got) != 2 {
		t.Errorf("the replay removed the user again: %v", memberEmails(got))
	}
	if n := len(g.auditActions("SHIP", "drift.user.deleted")); n != 1 {
		t.Errorf("drift.user.deleted audited %d times, want once", n)
	}

	// Registration check; unknown tenant.
	r = g.do("GET", webhookPath("SHIP")+"?challengeToken=tok-123", "", nil)
	var ch api.WebhookChallenge
	if r.decode(t, &ch); r.status != 200 || ch.ChallengeToken != "tok-123" {
		t.Errorf("challenge: %d %s", r.status, r.body)
	}
	if r := g.badInput().do("GET", webhookPath("SHIP"), "", nil); r.status != 400 {
		t.Errorf("challenge without a token: %d", r.status)
	}
	if r := g.deliver("NOPE", body, webhooks.Sign(secret, now, body)); r.status != 404 {
		t.Errorf("unknown tenant: %d", r.status)
	}
}

// TestWebhookSecretRotation: during a changeover both secrets verify;
// rewriting the secret file applies without a restart; a value given
// through the admin API is sealed and used.
func TestWebhookSecretRotation(t *testing.T) {
	dir := t.TempDir()
	prevFile := dir + "/previous"
	g := startGateway(t, gatewayOptions{mutate: func(c *config.Config) {
		for i := range c.Tenants {
			c.Tenants[i].TechPass.PreviousWebhookSecretFile = prevFile
		}
	}})
	old := g.up.hookSecrets["SHIP"]
	event := func(i int) []byte { return mustJSON(t, map[string]any{"event": "user-invited", "n": i}) }
	deliver := func(secret string, i int) int {
		return g.deliver("SHIP", event(i), webhooks.Sign([]byte(secret), time.Now(), event(i))).status
	}
	// The previous-secret file does not exist yet: the current one works.
	if s := deliver(old, 1); s != 200 {
		t.Fatalf("current secret: %d", s)
	}
	// Changeover: the old secret becomes the previous one, a new one is
	// current; both verify, without a restart.
	testkit.WriteFile(t, prevFile, old)
	fresh := "whsec-new-" + randomWord(t)
	testkit.WriteFile(t, g.up.hookFiles["SHIP"], fresh)
	if a, b := deliver(old, 2), deliver(fresh, 3); a != 200 || b != 200 {
		t.Fatalf("during the changeover: old %d, new %d", a, b)
	}
	// The changeover ends: the old secret is refused.
	if err := os.Remove(prevFile); err != nil {
		t.Fatal(err)
	}
	if a, b := deliver(old, 4), deliver(fresh, 5); a != 401 || b != 200 {
		t.Fatalf("after the changeover: old %d (want 401), new %d", a, b)
	}
	// A short secret: refused by the admin API (422), and a file holding
	// one is refused at each delivery and shown in /readyz.
	if r := g.badInput().do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"techpass": map[string]any{"webhookSecret": map[string]string{"value": "x"}}}); r.status != 422 {
		t.Errorf("a 1-byte webhook secret through the admin API: %d %s", r.status, r.body)
	}
	if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"techpass": map[string]any{"webhookSecret": map[string]string{"value": "fifteen-bytes.."}}}); r.status != 422 {
		t.Errorf("a 15-byte webhook secret through the admin API: %d %s", r.status, r.body)
	}
	testkit.WriteFile(t, prevFile, "short")
	if a, b := deliver("short", 8), deliver(fresh, 9); a != 401 || b != 200 {
		t.Errorf("a 5-byte secret in the previous-secret file: %d (want 401), the current one %d", a, b)
	}
	if r := g.do("GET", "/readyz", "", nil); !strings.Contains(string(r.body), "fewer than the 16 required") {
		t.Errorf("/readyz does not say the webhook secret is short: %s", r.body)
	}
	if err := os.Remove(prevFile); err != nil {
		t.Fatal(err)
	}
	// A sealed value through the admin API, then removed with {}.
	sealed := "whsec-sealed-" + randomWord(t)
	if r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{"techpass": map[string]any{"webhookSecret": map[string]string{"value": sealed}, "previousWebhookSecret": map[string]string{}}}); r.status != 200 {
		t.Fatalf("set a sealed webhook secret: %d %s", r.status, r.body)
	} else if !strings.Contains(string(r.body), `"webhookSecret":{"fingerprint"`) && !strings.Contains(string(r.body), `"kind":"stored"`) {
		t.Errorf("tenant answer does not show the stored secret's kind: %s", r.body)
	}
	if a, b := deliver(sealed, 6), deliver(fresh, 7); a != 200 || b != 401 {
		t.Fatalf("sealed secret %d (want 200), the file's %d (want 401)", a, b)
	}
	audit := g.do("GET", "/v1/audit?limit=1000", "operator", nil)
	tenant := g.do("GET", "/v1/tenants/SHIP", "operator", nil)
	metrics := g.do("GET", "/metrics", "operator", nil)
	g.stop()
	raw, err := os.ReadFile(g.store)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{sealed, old, fresh} {
		for what, text := range map[string]string{
			"response bodies": g.bodies.String(), "logs": g.logs.String(), "audit log": string(audit.body),
			"tenant": string(tenant.body), "metrics": string(metrics.body), "store file": string(raw),
		} {
			if strings.Contains(text, secret) {
				t.Errorf("a webhook secret appears in the %s", what)
			}
		}
	}
	if !strings.Contains(string(tenant.body), `"webhookSecret":{`) {
		t.Errorf("the tenant does not show its webhook secret's kind: %s", tenant.body)
	}
}

// TestWebhookDuringRestart: a delivery sent while the gateway is down is
// retried by the simulator and applied once the gateway is back.
func TestWebhookDuringRestart(t *testing.T) {
	up := startUpstream(t, 20*time.Millisecond, 0, "SHIP")
	store := t.TempDir() + "/groupgate.db"
	opts := gatewayOptions{up: up, store: store, projects: map[string][]string{"SHIP": {"MOH"}}}
	g := startGateway(t, opts)
	users := techpasssim.DemoUsers(2)
	g.createActive("SHIP/MOH", "billing")
	if op := g.await("SHIP/MOH", g.addMembers("SHIP/MOH", "billing", users[0].Email, users[1].Email).Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("add: %+v", op.Error)
	}
	g.connectWebhooks(100 * time.Millisecond)
	addr := strings.TrimPrefix(g.base, "http://")
	g.stop()
	g.simAdmin("DELETE", "/_sim/users/"+users[0].ID, nil, http.StatusNoContent)
	if !testkit.Poll(5*time.Second, 10*time.Millisecond, func() bool { return up.sim.WebhookStats("SHIP").Attempts >= 2 }) {
		t.Fatalf("no failed attempts while the gateway is down: %+v", up.sim.WebhookStats("SHIP"))
	}
	opts.mutate = func(c *config.Config) { c.Listen = addr }
	g2 := startGateway(t, opts)
	st := awaitDelivered(t, up, "SHIP", 1, 10*time.Second)
	if st.Attempts < 3 || st.Pending != 0 {
		t.Errorf("webhook stats %+v: want retries, then delivered", st)
	}
	if got := memberEmails(must(g2.members("SHIP/MOH", "billing", 0, ""))); len(got) != 1 || got[0] != users[1].Email {
		t.Errorf("members after the restart = %v, want only %s", got, users[1].Email)
	}
}

// TestWebhookApplicationEvents: credentials expiring and application
// deleted are logged at warn level, audited, counted and shown in /readyz
// (which stays ready); other events are acknowledged. No secret appears in
// any of them.
func TestWebhookApplicationEvents(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.connectWebhooks(50 * time.Millisecond)
	for i, ev := range []string{"application-credentials-expiring", "application-deleted", "user-invited"} {
		g.simAdmin("POST", "/_sim/namespaces/SHIP/events", map[string]any{"event": ev, "expiresAt": "2026-12-31T00:00:00Z"}, http.StatusAccepted)
		awaitDelivered(t, g.up, "SHIP", i+1, 5*time.Second)
	}
	r := g.do("GET", "/readyz", "", nil)
	var ready api.Readiness
	r.decode(t, &ready)
	chk, ok := ready.Checks["webhooks:SHIP"]
	if r.status != 200 || !ok || chk.Status != api.CheckStatusOk || chk.Detail == nil ||
		!strings.Contains(*chk.Detail, "application-credentials-expiring") || !strings.Contains(*chk.Detail, "application-deleted") {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	if _, ok := ready.Checks["webhooks:OTHER"]; ok {
		t.Errorf("another tenant shows SHIP's events")
	}
	for _, action := range []string{"techpass.application-credentials-expiring", "techpass.application-deleted", "webhook.received"} {
		if n := len(g.auditActions("SHIP", action)); n != 1 {
			t.Errorf("audit %s: %d entries, want 1", action, n)
		}
	}
	fams := g.scrape()
	counts := map[string]float64{}
	for _, m := range fams["groupgate_webhook_deliveries_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["tenant"] == "SHIP" {
			counts[labels["kind"]] += m.GetCounter().GetValue()
		}
	}
	if counts["application-credentials-expiring"] != 1 || counts["application-deleted"] != 1 || counts["other"] != 1 {
		t.Errorf("groupgate_webhook_deliveries_total for SHIP = %v", counts)
	}
	logs := g.logs.String()
	for _, want := range []string{"application credentials are about to expire", "application was deleted"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line saying %q", want)
		}
	}
	audit := g.do("GET", "/v1/audit?tenant=SHIP&limit=1000", "operator", nil)
	for name, secret := range g.up.secrets {
		for what, text := range map[string]string{"logs": logs, "audit": string(audit.body), "responses": g.bodies.String(), "metrics": fmt.Sprint(fams)} {
			if strings.Contains(text, secret) {
				t.Errorf("%s appears in the %s", name, what)
			}
		}
	}
}

// TestEmbeddedSimulatorWebhooks: a tenant on the built-in simulator (make
// run) gets its webhooks: a user deleted through the simulator's admin
// endpoint reaches the gateway, signed with the generated secret.
func TestEmbeddedSimulatorWebhooks(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Listen, cfg.AllowHTTP = "127.0.0.1:0", true
	cfg.StorePath = t.TempDir() + "/g.db"
	cfg.Simulator.Users = 5
	cfg.Simulator.WebhookRetry = config.Duration(100 * time.Millisecond)
	cfg.Tenants = []config.TenantConfig{{Name: "SHIP", Projects: []config.ProjectConfig{{Name: "MOH"}}}}
	logs := &syncBuffer{}
	srv, err := server.New(cfg, server.Options{Logger: server.NewLogger(cfg, logs), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, srv.Run)
	user := techpasssim.DemoUsers(1)[0]
	req, _ := http.NewRequest("DELETE", srv.SimulatorURL()+"/_sim/users/"+user.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete user: %d", resp.StatusCode)
	}
	if !testkit.Poll(5*time.Second, 10*time.Millisecond, func() bool { return strings.Contains(logs.String(), "user deleted in TechPass") }) {
		t.Fatalf("the delivery did not reach the gateway; logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "webhook refused") {
		t.Errorf("a delivery was refused:\n%s", logs.String())
	}
}

// TestWebhookUnsignedFlood: anyone can reach the receiver, so unsigned
// requests are rate-limited per remote address, never audited, counted, and
// logged at most once a minute.
func TestWebhookUnsignedFlood(t *testing.T) {
	g := startGateway(t, gatewayOptions{mutate: func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 0.01, Burst: 5}
	}})
	body := []byte(`{"event":"user-deleted","userId":"00000000-0000-4000-8000-000000000001"}`)
	statuses := map[int]int{}
	for range 8 {
		statuses[g.deliver("SHIP", body, "t=1,v1=00").status]++
	}
	if statuses[401] != 5 || statuses[429] != 3 {
		t.Errorf("statuses %v, want 5 401s then 3 429s", statuses)
	}
	if n := len(g.auditActions("SHIP", "webhook.receive")); n != 0 {
		t.Errorf("unsigned requests audited %d times", n)
	}
	if v, _ := value(g.scrape(), "groupgate_webhook_deliveries_total", map[string]string{"tenant": "SHIP", "kind": "refused"}); v != 5 {
		t.Errorf("refusals counted %v, want 5", v)
	}
	if n := strings.Count(g.logs.String(), "webhook refused"); n != 1 {
		t.Errorf("refusals logged %d times, want once a minute", n)
	}
}

// TestWebhookUnknownUserIsNotDrift: events about a user the mirror does not
// know change nothing of it and are audited as webhook.received, not as
// drift.
func TestWebhookUnknownUserIsNotDrift(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	stranger := "00000000-0000-4000-8000-0000000000aa"
	secret := []byte(g.up.hookSecrets["SHIP"])
	for _, ev := range []map[string]any{
		{"event": "user-deleted", "user": map[string]string{"id": stranger}},
		{"event": "user-updated", "user": map[string]string{"id": stranger, "email": "stranger@agency.gov.sg"}},
	} {
		body := mustJSON(t, ev)
		if r := g.deliver("SHIP", body, webhooks.Sign(secret, time.Now(), body)); r.status != 200 {
			t.Fatalf("%s: %d %s", ev["event"], r.status, r.body)
		}
	}
	for _, a := range []string{"drift.user.deleted", "drift.user.updated"} {
		if n := len(g.auditActions("SHIP", a)); n != 0 {
			t.Errorf("%s audited %d times for a user the mirror does not know", a, n)
		}
	}
	if got := g.auditActions("SHIP", "webhook.received"); len(got) != 2 || !strings.Contains(deref(got[0].Target), stranger) {
		t.Errorf("webhook.received entries = %+v, want 2 naming the user", got)
	}
}

// TestWebhookNoticeSurvivesRestart: "credentials expiring" stays in /readyz
// after a restart (it is kept in the store for 14 days).
func TestWebhookNoticeSurvivesRestart(t *testing.T) {
	up := startUpstream(t, 20*time.Millisecond, 0, "SHIP")
	opts := gatewayOptions{up: up, store: t.TempDir() + "/groupgate.db", projects: map[string][]string{"SHIP": {"MOH"}}}
	g := startGateway(t, opts)
	body := []byte(`{"event":"application-credentials-expiring"}`)
	if r := g.deliver("SHIP", body, webhooks.Sign([]byte(up.hookSecrets["SHIP"]), time.Now(), body)); r.status != 200 {
		t.Fatalf("delivery: %d %s", r.status, r.body)
	}
	g.stop()
	g2 := startGateway(t, opts)
	var ready api.Readiness
	r := g2.do("GET", "/readyz", "", nil)
	r.decode(t, &ready)
	if chk, ok := ready.Checks["webhooks:SHIP"]; !ok || chk.Detail == nil || !strings.Contains(*chk.Detail, "application-credentials-expiring") {
		t.Errorf("after a restart, /readyz lost the notice: %s", r.body)
	}
}
