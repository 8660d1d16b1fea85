package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
)

// specOperation is one operation of openapi.yaml.
type specOperation struct {
	id, method, path string
	hasBody          bool
}

// specOperationList lists every operation of openapi.yaml.
func specOperationList(t *testing.T) []specOperation {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(groupgate.OpenAPISpec())
	if err != nil {
		t.Fatal(err)
	}
	var ops []specOperation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, specOperation{id: op.OperationID, method: method, path: path, hasBody: op.RequestBody != nil})
		}
	}
	return ops
}

// auditEntries reads the whole audit log as the operator.
func (g *gateway) auditEntries() []api.AuditEntry {
	g.t.Helper()
	var all []api.AuditEntry
	cursor := ""
	for {
		path := "/v1/audit?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := g.do("GET", path, "operator", nil)
		if r.status != http.StatusOK {
			g.t.Fatalf("audit: %d %s", r.status, r.body)
		}
		var page api.AuditPage
		r.decode(g.t, &page)
		all = append(all, page.Entries...)
		if page.Next == nil {
			return all
		}
		cursor = *page.Next
	}
}

// TestEveryMutatingCallIsAudited calls every operation of the spec that is
// not a GET, as the operator and with no credential, and finds an audit
// entry for each call, by its request id, naming the operation's action.
// The operations come from the spec, so a new one cannot be missed.
func TestEveryMutatingCallIsAudited(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	params := map[string]string{"tenant": "SHIP", "project": "MOH", "group": "nope", "user": "user001@example.gov.sg",
		"id": "op_00000000000000000000000000", "keyId": "0123456789abcdef"}
	type call struct{ op, requestID string }
	var calls []call
	for _, op := range specOperationList(t) {
		// Webhook deliveries are audited only when their signature
		// verifies (signedActions; see TestWebhookVerification).
		if op.method == http.MethodGet || op.id == "receiveWebhook" {
			continue
		}
		path := op.path
		for name, v := range params {
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
		}
		if strings.Contains(path, "{") {
			t.Fatalf("%s %s: no value for a path parameter", op.method, op.path)
		}
		for _, who := range []string{"operator", ""} {
			var body []byte
			if op.hasBody {
				body = []byte("{}")
			}
			req, err := http.NewRequest(op.method, g.base+path, bytesReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			if who != "" {
				req.Header.Set("Authorization", "Bearer "+g.keys[who])
			}
			id := fmt.Sprintf("audit-%s-%d", op.id, len(calls))
			req.Header.Set("X-Request-Id", id)
			// The body {} lacks what most operations require, on purpose:
			// a refused call is audited too, and changes nothing.
			r := g.badInput().send(req)
			if r.status == http.StatusNotFound && r.header.Get("Content-Type") == "" {
				t.Fatalf("%s %s: route not served", op.method, path)
			}
			calls = append(calls, call{op.id, id})
		}
	}
	if len(calls) < 2*10 {
		t.Fatalf("only %d calls: the spec lost its mutating operations?", len(calls))
	}
	byRequest := map[string]api.AuditEntry{}
	for _, e := range g.auditEntries() {
		if e.RequestId != nil {
			byRequest[*e.RequestId] = e
		}
	}
	for _, c := range calls {
		e, ok := byRequest[c.requestID]
		if !ok {
			t.Errorf("%s: no audit entry for request %s", c.op, c.requestID)
			continue
		}
		verb := c.op[:strings.IndexFunc(c.op, func(r rune) bool { return r >= 'A' && r <= 'Z' })]
		if !strings.HasSuffix(e.Action, "."+verb) || e.Status == nil {
			t.Errorf("%s: audit entry %+v, want action *.%s with a status", c.op, e, verb)
		}
	}
}

// TestTenantDefaultsFromConfig checks a tenant created through the admin
// API without an interval or group limit gets the configured ones.
func TestTenantDefaultsFromConfig(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 100 * time.Millisecond, mutate: func(c *config.Config) { c.GroupLimit = 7 }})
	r := g.do("POST", "/v1/tenants", "operator", map[string]string{"name": "FRESH"})
	if r.status != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	var tn api.Tenant
	r.decode(t, &tn)
	if tn.IntervalSeconds != 0.1 || tn.GroupLimit != 7 {
		t.Fatalf("new tenant: intervalSeconds %v, groupLimit %v; want 0.1 and 7 from the configuration", tn.IntervalSeconds, tn.GroupLimit)
	}
	// An explicit interval still wins.
	r = g.do("POST", "/v1/tenants", "operator", map[string]any{"name": "SLOW", "intervalSeconds": 2})
	r.decode(t, &tn)
	if r.status != http.StatusCreated || tn.IntervalSeconds != 2 {
		t.Fatalf("create tenant with interval: %d %s", r.status, r.body)
	}
}

// TestOperationResultIsTheGroup checks a finished create's and update's
// result.group is the JSON GET of the group gives, etag and fractional
// createdAt included.
func TestOperationResultIsTheGroup(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	op := g.create("SHIP/MOH", "billing")
	g.await("SHIP/MOH", op.Id, 10*time.Second)
	r := g.do("PATCH", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", map[string]string{"description": "changed"})
	if r.status != http.StatusAccepted {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	var update api.Operation
	r.decode(t, &update)
	g.await("SHIP/MOH", update.Id, 10*time.Second)

	got := g.do("GET", groupsPath("SHIP", "MOH")+"/billing", "SHIP/MOH", nil)
	var group map[string]any
	got.decode(t, &group)
	if got.header.Get("ETag") == "" || group["etag"] != got.header.Get("ETag") {
		t.Fatalf("GET group: etag %v, ETag header %q", group["etag"], got.header.Get("ETag"))
	}
	for _, id := range []string{op.Id, update.Id} {
		var o struct {
			Result struct {
				Group map[string]any `json:"group"`
			} `json:"result"`
		}
		g.do("GET", "/v1/operations/"+id, "SHIP/MOH", nil).decode(t, &o)
		if a, b := mustJSON(t, o.Result.Group), mustJSON(t, group); string(a) != string(b) {
			t.Errorf("operation %s result.group\n%s\nGET of the group\n%s", id, a, b)
		}
	}
}

// TestCredentialChangedThroughAPI: a client secret changed through PATCH
// /v1/tenants/{t} behaves as a rotated credential file. A wrong one is
// tried at the next renewal and refused, while the token fetched before
// keeps serving and /readyz reports the refusal (without the secret); the
// right one is then tried at once and renews the token.
func TestCredentialChangedThroughAPI(t *testing.T) {
	g := startGateway(t, gatewayOptions{projects: map[string][]string{"SHIP": {"MOH"}}})
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "before").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("create: %+v", op)
	}
	before := g.up.stats("SHIP").Counters
	setSecret := func(secret string) {
		t.Helper()
		r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{
			"techpass": map[string]any{"clientSecret": map[string]string{"value": secret}}})
		if r.status != http.StatusOK {
			t.Fatalf("PATCH the client secret: %d %s", r.status, r.body)
		}
	}
	upstreamCheck := func() (int, api.Check) {
		t.Helper()
		r := g.do("GET", "/readyz", "", nil)
		var rd api.Readiness
		r.decode(t, &rd)
		return r.status, rd.Checks["upstream:SHIP"]
	}

	wrong := "wrong-secret-" + randomWord(t)
	setSecret(wrong)
	for _, name := range []string{"after-wrong-1", "after-wrong-2"} {
		if op := g.await("SHIP/MOH", g.create("SHIP/MOH", name).Id, 10*time.Second); op.State != api.Succeeded {
			t.Fatalf("create %s with the earlier token: %s (%s)", name, op.State, errorOf(op))
		}
	}
	after := g.up.stats("SHIP").Counters
	if after.TokenFailures <= before.TokenFailures {
		t.Errorf("the new secret was not tried: token failures %d, then %d", before.TokenFailures, after.TokenFailures)
	}
	status, chk := upstreamCheck()
	if status != http.StatusOK || chk.Status != api.CheckStatusOk || chk.Detail == nil ||
		!strings.HasPrefix(*chk.Detail, "token endpoint: invalid_client") ||
		!strings.Contains(*chk.Detail, "the current access token is used until") {
		t.Errorf("readyz after a refused secret: %d %+v", status, chk)
	}

	setSecret(g.up.secrets["SHIP client secret"])
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "after-right").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("create after the right secret: %s (%s)", op.State, errorOf(op))
	}
	if st := g.up.stats("SHIP").Counters; st.TokenRequests-st.TokenFailures <= after.TokenRequests-after.TokenFailures {
		t.Errorf("no token issued for the right secret: %+v, then %+v", after, st)
	}
	if status, chk := upstreamCheck(); status != http.StatusOK || chk.Status != api.CheckStatusOk || chk.Detail != nil {
		t.Errorf("readyz after the right secret: %d %+v", status, chk)
	}
	g.stop()
	for where, text := range map[string]string{"responses": g.bodies.String(), "logs": g.logs.String()} {
		if strings.Contains(text, wrong) {
			t.Errorf("the wrong secret leaked into %s", where)
		}
	}
}

// TestTenantCredentialsMustBeReadable checks a tenant whose TechPass
// credentials are given by reference is refused with 422, and nothing is
// stored, when a referenced file is missing or a variable empty: on create
// (it was a 500 that stored the tenant anyway) and on update.
func TestTenantCredentialsMustBeReadable(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	tp := g.up.tps["SHIP"]
	missing := filepath.Join(t.TempDir(), "no-such-secret")
	body := func(name string, secret, apiKey map[string]string) map[string]any {
		return map[string]any{"name": name, "techpass": map[string]any{
			"apiUrl": tp.APIURL, "tokenUrl": tp.TokenURL, "clientId": tp.ClientID,
			"clientSecret": secret, "apiKey": apiKey,
		}}
	}
	good := map[string]string{"file": tp.ClientSecretFile}
	goodKey := map[string]string{"file": tp.APIKeyFile}
	for _, c := range []struct {
		name           string
		secret, apiKey map[string]string
		want           string
	}{
		{"missing file", map[string]string{"file": missing}, goodKey, "no-such-secret"},
		{"unset variable", good, map[string]string{"env": "GROUPGATE_TEST_UNSET_VARIABLE"}, "GROUPGATE_TEST_UNSET_VARIABLE"},
	} {
		r := g.do("POST", "/v1/tenants", "operator", body("BROKEN", c.secret, c.apiKey))
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: create answered %d %s, want 422 naming %s", c.name, r.status, r.body, c.want)
		}
		if r := g.do("GET", "/v1/tenants/BROKEN", "operator", nil); r.status != http.StatusNotFound {
			t.Errorf("%s: the refused tenant was stored: %d %s", c.name, r.status, r.body)
		}
	}
	if r := g.do("POST", "/v1/tenants", "operator", body("WORKS", good, goodKey)); r.status != http.StatusCreated {
		t.Fatalf("create with readable credentials: %d %s", r.status, r.body)
	}
	before := g.do("GET", "/v1/tenants/WORKS", "operator", nil)
	r := g.do("PATCH", "/v1/tenants/WORKS", "operator", map[string]any{"techpass": map[string]any{"clientSecret": map[string]string{"file": missing}}})
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("update to a missing file: %d %s, want 422", r.status, r.body)
	}
	if after := g.do("GET", "/v1/tenants/WORKS", "operator", nil); string(after.body) != string(before.body) {
		t.Errorf("a refused update changed the tenant:\n%s\n%s", before.body, after.body)
	}
}
