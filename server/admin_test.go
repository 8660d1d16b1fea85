package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/testkit"
)

// issueKey issues a key through the admin API as who.
func (g *gateway) issueKey(who string, in map[string]any) (string, api.KeyCreated) {
	g.t.Helper()
	r := g.do("POST", "/v1/keys", who, in)
	if r.status != http.StatusCreated {
		g.t.Fatalf("issue key %v: %d %s", in, r.status, r.body)
	}
	var k api.KeyCreated
	r.decode(g.t, &k)
	return k.Key, k
}

// matrixSample is one request per operation of the spec, aimed at tenant
// SHIP, project MOH.
type matrixSample struct {
	method, path string
	body         func() any
	// tenantScoped: the request targets tenant SHIP (so other tenants'
	// admins are refused); false for listings that show the caller's own.
	tenantScoped bool
}

// matrixSamples returns one conforming request per operation of the spec,
// aimed at tenant SHIP, project MOH: operation opID and key keyID must exist.
func matrixSamples(opID, keyID string) map[string]matrixSample {
	var n atomic.Int64
	uniq := func(prefix string) string { return fmt.Sprintf("%s%d", prefix, n.Add(1)) }
	return map[string]matrixSample{
		"getHealth":        {method: "GET", path: "/healthz"},
		"getReadiness":     {method: "GET", path: "/readyz"},
		"getOpenAPISpec":   {method: "GET", path: "/openapi.yaml"},
		"getDocs":          {method: "GET", path: "/docs"},
		"getMetrics":       {method: "GET", path: "/metrics"},
		"listGroups":       {method: "GET", path: groupsPath("SHIP", "MOH"), tenantScoped: true},
		"getGroup":         {method: "GET", path: groupsPath("SHIP", "MOH") + "/nope", tenantScoped: true},
		"getQueue":         {method: "GET", path: "/v1/tenants/SHIP/projects/MOH/queue", tenantScoped: true},
		"createGroup":      {method: "POST", path: groupsPath("SHIP", "MOH"), body: func() any { return map[string]string{"name": uniq("m")} }, tenantScoped: true},
		"deleteGroup":      {method: "DELETE", path: groupsPath("SHIP", "MOH") + "/nope", tenantScoped: true},
		"updateGroup":      {method: "PATCH", path: groupsPath("SHIP", "MOH") + "/nope", body: func() any { return map[string]string{"description": "d"} }, tenantScoped: true},
		"listMembers":      {method: "GET", path: groupsPath("SHIP", "MOH") + "/nope/members", tenantScoped: true},
		"addMembers":       {method: "POST", path: groupsPath("SHIP", "MOH") + "/nope/members", body: func() any { return map[string]any{"users": []string{"user001@example.gov.sg"}} }, tenantScoped: true},
		"removeMembers":    {method: "POST", path: groupsPath("SHIP", "MOH") + "/nope/members/remove", body: func() any { return map[string]any{"users": []string{"user001@example.gov.sg"}} }, tenantScoped: true},
		"removeMember":     {method: "DELETE", path: groupsPath("SHIP", "MOH") + "/nope/members/user001@example.gov.sg", tenantScoped: true},
		"listTenantGroups": {method: "GET", path: "/v1/tenants/SHIP/groups", tenantScoped: true},
		"getMirror":        {method: "GET", path: "/v1/tenants/SHIP/mirror", tenantScoped: true},
		"syncMirror":       {method: "POST", path: "/v1/tenants/SHIP/mirror", tenantScoped: true},
		"getOperation":     {method: "GET", path: "/v1/operations/" + opID, tenantScoped: true},
		"cancelOperation":  {method: "DELETE", path: "/v1/operations/" + opID, tenantScoped: true},
		"retryOperation":   {method: "POST", path: "/v1/operations/" + opID + "/retry", tenantScoped: true},
		"listTenants":      {method: "GET", path: "/v1/tenants"},
		"createTenant":     {method: "POST", path: "/v1/tenants", body: func() any { return map[string]string{"name": uniq("NEW")} }},
		"getTenant":        {method: "GET", path: "/v1/tenants/SHIP", tenantScoped: true},
		"updateTenant":     {method: "PATCH", path: "/v1/tenants/SHIP", body: func() any { return map[string]any{} }, tenantScoped: true},
		"listProjects":     {method: "GET", path: "/v1/tenants/SHIP/projects", tenantScoped: true},
		"createProject":    {method: "POST", path: "/v1/tenants/SHIP/projects", body: func() any { return map[string]string{"name": uniq("P")} }, tenantScoped: true},
		"getProject":       {method: "GET", path: "/v1/tenants/SHIP/projects/MOH", tenantScoped: true},
		"updateProject":    {method: "PATCH", path: "/v1/tenants/SHIP/projects/MOH", body: func() any { return map[string]any{} }, tenantScoped: true},
		"listKeys":         {method: "GET", path: "/v1/keys"},
		"createKey": {method: "POST", path: "/v1/keys", tenantScoped: true, body: func() any {
			return map[string]string{"name": "m", "role": "project", "tenant": "SHIP", "project": "MOH"}
		}},
		"getKey":         {method: "GET", path: "/v1/keys/" + keyID, tenantScoped: true},
		"revokeKey":      {method: "DELETE", path: "/v1/keys/" + keyID, tenantScoped: true},
		"listAudit":      {method: "GET", path: "/v1/audit"},
		"getBackup":      {method: "GET", path: "/v1/backup"},
		"confirmWebhook": {method: "GET", path: "/v1/tenants/SHIP/webhooks/techpass?challengeToken=abc", tenantScoped: true},
		"receiveWebhook": {method: "POST", path: "/v1/tenants/SHIP/webhooks/techpass", body: func() any { return map[string]string{"event": "user-invited"} }, tenantScoped: true},
	}
}

// TestAuthorizationMatrix checks every operation of the spec, for every
// role, against api.Policy: own project, other project, other tenant, wrong
// scope, no credential. An operation without a policy or a sample fails.
func TestAuthorizationMatrix(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 500 * time.Millisecond})
	op := g.create("SHIP/MOH", "queued-for-cancel")
	_, victim := g.issueKey("operator", map[string]any{"name": "victim", "role": "project", "tenant": "SHIP", "project": "MOH"})
	adminShip, _ := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "SHIP"})
	adminOther, _ := g.issueKey("operator", map[string]any{"name": "admin", "role": "tenant-admin", "tenant": "OTHER"})
	readOnly, _ := g.issueKey("operator", map[string]any{"name": "ro", "role": "project", "tenant": "SHIP", "project": "MOH", "scopes": []string{"groups:read"}})
	g.keys["admin SHIP"], g.keys["admin OTHER"], g.keys["SHIP/MOH read-only"] = adminShip, adminOther, readOnly

	samples := matrixSamples(op.Id, victim.Id)
	policy := api.Policy()
	var ids []string
	for _, o := range specOperations(t) {
		ids = append(ids, o)
		if _, ok := policy[o]; !ok {
			t.Errorf("operation %s has no entry in api.Policy", o)
		}
		if _, ok := samples[o]; !ok {
			t.Errorf("operation %s has no sample in the authorization matrix", o)
		}
	}
	sort.Strings(ids)
	type who struct {
		name    string
		allowed func(a api.Access, s matrixSample) bool
	}
	principals := []who{
		{"", func(a api.Access, _ matrixSample) bool { return a.Public }},
		{"operator", func(a api.Access, _ matrixSample) bool { return a.Public || a.Operator }},
		{"admin SHIP", func(a api.Access, _ matrixSample) bool { return a.Public || a.TenantAdmin }},
		{"admin OTHER", func(a api.Access, s matrixSample) bool { return a.Public || (a.TenantAdmin && !s.tenantScoped) }},
		{"SHIP/MOH", func(a api.Access, _ matrixSample) bool { return a.Public || a.Project != "" }},
		{"SHIP/MOH read-only", func(a api.Access, _ matrixSample) bool { return a.Public || a.Project == "groups:read" }},
		{"SHIP/MOE", func(a api.Access, _ matrixSample) bool { return a.Public }},
		{"OTHER/MOH", func(a api.Access, _ matrixSample) bool { return a.Public }},
	}
	for _, id := range ids {
		s, a := samples[id], policy[id]
		for _, p := range principals {
			var body any
			if s.body != nil {
				body = s.body()
			}
			var r response
			if p.name == "" {
				r = g.do(s.method, s.path, "", body)
			} else {
				r = g.do(s.method, s.path, p.name, body)
			}
			label := fmt.Sprintf("%s as %q", id, p.name)
			switch allowed := p.allowed(a, s); {
			case a.Signed:
				if r.status != 401 {
					t.Errorf("%s, unsigned: %d, want 401 whatever the key", label, r.status)
				}
			case allowed && (r.status == 401 || r.status == 403 || (a.HidesOthers && r.status == 404)):
				t.Errorf("%s: %d, want it allowed (%s)", label, r.status, r.body)
			case !allowed && p.name == "" && r.status != 401:
				t.Errorf("%s: %d, want 401", label, r.status)
			case !allowed && p.name != "" && a.HidesOthers && r.status != 404 && r.status != 403:
				t.Errorf("%s: %d, want 404 (or 403 for its own tenant's resource)", label, r.status)
			case !allowed && p.name != "" && !a.HidesOthers && r.status != 403:
				t.Errorf("%s: %d, want 403 (%s)", label, r.status, r.body)
			}
		}
	}
}

// specOperations lists the spec's operationIds.
func specOperations(t *testing.T) []string {
	var ids []string
	for _, item := range apitest.Spec(t).Paths.Map() {
		for _, op := range item.Operations() {
			ids = append(ids, op.OperationID)
		}
	}
	return ids
}

// TestKeysRevokedAndExpired: a revoked key and an expired key get 401 on
// their next request.
func TestKeysRevokedAndExpired(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	key, k := g.issueKey("operator", map[string]any{"name": "soon", "role": "project", "tenant": "SHIP", "project": "MOH",
		"expiresAt": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	g.keys["soon"] = key
	if r := g.do("GET", groupsPath("SHIP", "MOH"), "soon", nil); r.status != 200 {
		t.Fatalf("fresh key: %d", r.status)
	}
	revokable, rk := g.issueKey("operator", map[string]any{"name": "revokable", "role": "project", "tenant": "SHIP", "project": "MOH"})
	g.keys["revokable"] = revokable
	if r := g.do("GET", groupsPath("SHIP", "MOH"), "revokable", nil); r.status != 200 {
		t.Fatalf("fresh key: %d", r.status)
	}
	if r := g.do("DELETE", "/v1/keys/"+rk.Id, "operator", nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH"), "revokable", nil); r.status != 401 {
		t.Errorf("revoked key: %d, want 401", r.status)
	}
	if !testkit.Poll(5*time.Second, 100*time.Millisecond, func() bool { return g.do("GET", groupsPath("SHIP", "MOH"), "soon", nil).status == 401 }) {
		t.Fatal("expired key still works")
	}
	r := g.do("GET", "/v1/keys/"+k.Id, "operator", nil)
	var got api.Key
	r.decode(t, &got)
	if got.State != api.KeyStateExpired {
		t.Errorf("key state %s, want expired", got.State)
	}
}

// TestQuotaRefusedBeforeQueueing: with quotas 3 and 2 in a namespace
// limited to 5, the sixth create is refused before anything is queued.
func TestQuotaRefusedBeforeQueueing(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: time.Second, groupLimit: 5, mutate: func(c *config.Config) {
		for i := range c.Tenants {
			if c.Tenants[i].Name == "SHIP" {
				c.Tenants[i].Projects[0].GroupQuota = 3 // MOH
				c.Tenants[i].Projects[1].GroupQuota = 2 // MOE
			}
		}
	}})
	for i := range 3 {
		g.create("SHIP/MOH", fmt.Sprintf("h%d", i))
	}
	for i := range 2 {
		g.create("SHIP/MOE", fmt.Sprintf("e%d", i))
	}
	for _, who := range []string{"SHIP/MOH", "SHIP/MOE"} {
		tenant, project, _ := strings.Cut(who, "/")
		r := g.do("POST", groupsPath(tenant, project), who, map[string]string{"name": "sixth"})
		if r.status != http.StatusConflict {
			t.Fatalf("%s sixth create: %d %s", who, r.status, r.body)
		}
		if p := r.problem(t); *p.Type != "urn:groupgate:problem:group-quota" {
			t.Errorf("problem %s", *p.Type)
		}
	}
	r := g.do("GET", "/v1/tenants/SHIP/projects/MOH/queue", "SHIP/MOH", nil)
	var qs api.QueueStatus
	r.decode(t, &qs)
	if qs.Tenant.Pending > 5 {
		t.Errorf("refused creates were queued: %s", r.body)
	}
	// Quotas may not add up to more than the limit.
	r = g.do("PATCH", "/v1/tenants/SHIP/projects/MOE", "operator", map[string]int{"groupQuota": 3})
	if r.status != http.StatusConflict {
		t.Errorf("quotas over the limit: %d %s", r.status, r.body)
	}
}

// TestBurstRateLimit: 100 requests in a burst from one key beyond its limit
// get 429 with Retry-After and RateLimit headers; another key is
// unaffected.
func TestBurstRateLimit(t *testing.T) {
	g := startGateway(t, gatewayOptions{mutate: func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 5, Burst: 10}
	}})
	var mu sync.Mutex
	statuses := map[int]int{}
	var limited response
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r := g.do("GET", groupsPath("SHIP", "MOH"), "SHIP/MOH", nil)
			mu.Lock()
			defer mu.Unlock()
			statuses[r.status]++
			if r.status == http.StatusTooManyRequests {
				limited = r
			}
		})
	}
	wg.Wait()
	if statuses[200] < 10 || statuses[200] > 15 || statuses[429] < 85 {
		t.Fatalf("burst of 100 with burst 10: %v", statuses)
	}
	if limited.header.Get("Retry-After") == "" || !strings.Contains(limited.header.Get("RateLimit-Policy"), "q=5") || !strings.Contains(limited.header.Get("RateLimit"), "r=0") {
		t.Errorf("429 headers: %v", limited.header)
	}
	if p := limited.problem(t); p.Status != 429 {
		t.Errorf("problem %+v", p)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOE"), "SHIP/MOE", nil); r.status != 200 || r.header.Get("RateLimit-Policy") == "" {
		t.Errorf("another key: %d %v", r.status, r.header)
	}
}

// TestJWTBearer: a project that registers its identity provider accepts
// the provider's JWTs; a wrong signature, issuer, audience, an expired token
// and alg none get 401.
func TestJWTBearer(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	const iss, aud = "https://idp.moh.example", "groupgate"
	r := g.do("PATCH", "/v1/tenants/SHIP/projects/MOH", "operator", map[string]any{
		"identity": map[string]any{"issuer": iss, "audience": aud, "publicKeys": []string{pemKey}, "scopes": []string{"groups:read"}},
	})
	if r.status != 200 {
		t.Fatalf("register identity: %d %s", r.status, r.body)
	}
	// The same issuer and audience cannot be given to another project.
	r = g.do("PATCH", "/v1/tenants/SHIP/projects/MOE", "operator", map[string]any{
		"identity": map[string]any{"issuer": iss, "audience": aud, "publicKeys": []string{pemKey}},
	})
	if r.status != http.StatusConflict {
		t.Errorf("a second project with the same issuer and audience: %d", r.status)
	}
	sign := func(k *rsa.PrivateKey, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	good := jwt.MapClaims{"iss": iss, "aud": aud, "sub": "svc-billing", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := map[string]struct {
		token string
		want  int
	}{
		"valid":           {sign(key, good), 200},
		"wrong signature": {sign(other, good), 401},
		"wrong issuer":    {sign(key, with("iss", "https://evil.example")), 401},
		"wrong audience":  {sign(key, with("aud", "someone-else")), 401},
		"expired":         {sign(key, with("exp", now.Add(-10*time.Minute).Unix())), 401},
		"alg none":        {none, 401},
	}
	for name, c := range cases {
		r := g.do("GET", groupsPath("SHIP", "MOH"), "Bearer "+c.token, nil)
		if r.status != c.want {
			t.Errorf("%s: %d, want %d (%s)", name, r.status, c.want, r.body)
		}
	}
	// The JWT caller has only the registered scopes, in its own project.
	valid := "Bearer " + sign(key, good)
	if r := g.do("POST", groupsPath("SHIP", "MOH"), valid, map[string]string{"name": "x"}); r.status != 403 {
		t.Errorf("write with a read-only JWT: %d", r.status)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOE"), valid, nil); r.status != 403 {
		t.Errorf("JWT on another project: %d", r.status)
	}
}

// TestAdminCredentialCanary: credentials written through the admin API
// work, and never appear in a response, a log line, the audit log or the
// bbolt file in plain text.
func TestAdminCredentialCanary(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	secret := g.up.secrets["SHIP client secret"]
	apiKey := g.up.secrets["SHIP api key"]
	r := g.do("PATCH", "/v1/tenants/SHIP", "operator", map[string]any{
		"techpass": map[string]any{"clientSecret": map[string]string{"value": secret}, "apiKey": map[string]string{"value": apiKey}},
	})
	if r.status != 200 {
		t.Fatalf("write credentials: %d %s", r.status, r.body)
	}
	var tn api.Tenant
	r.decode(t, &tn)
	if tn.Techpass.ClientSecret.Kind != api.Stored || tn.Techpass.ClientSecret.Fingerprint == nil {
		t.Errorf("credential info: %+v", tn.Techpass.ClientSecret)
	}
	// The stored credentials are used: a create succeeds upstream.
	if op := g.await("SHIP/MOH", g.create("SHIP/MOH", "sealed").Id, 10*time.Second); op.State != api.Succeeded {
		t.Fatalf("create with stored credentials: %s %+v", op.State, op.Error)
	}
	g.do("GET", "/v1/tenants/SHIP", "operator", nil)
	g.do("GET", "/v1/tenants", "operator", nil)
	audit := g.do("GET", "/v1/audit?tenant=SHIP", "operator", nil)
	if audit.status != 200 || !strings.Contains(string(audit.body), "tenant.update") {
		t.Errorf("audit: %d %s", audit.status, audit.body)
	}
	store := g.store
	g.stop()
	raw, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]string{"client secret": secret, "api key": apiKey} {
		for where, text := range map[string]string{"responses": g.bodies.String(), "logs": g.logs.String(), "bbolt file": string(raw)} {
			if strings.Contains(text, v) {
				t.Errorf("%s leaked into %s", what, where)
			}
		}
	}
}

// TestAuditLog: mutating calls and upstream outcomes are recorded; tenant
// admins read their tenant's entries only; projects may not read it.
func TestAuditLog(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	adminShip, _ := g.issueKey("operator", map[string]any{"name": "a", "role": "tenant-admin", "tenant": "SHIP"})
	g.keys["admin SHIP"] = adminShip
	op := g.create("SHIP/MOH", "audited")
	g.await("SHIP/MOH", op.Id, 10*time.Second)
	g.create("OTHER/MOH", "elsewhere")
	g.do("POST", groupsPath("SHIP", "MOE"), "SHIP/MOH", map[string]string{"name": "denied"}) // 403
	var page api.AuditPage
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := g.do("GET", "/v1/audit", "admin SHIP", nil)
		if r.status != 200 {
			t.Fatalf("tenant-admin audit: %d %s", r.status, r.body)
		}
		r.decode(t, &page)
		if strings.Contains(string(r.body), "operation.succeeded") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	actions := map[string]string{}
	for _, e := range page.Entries {
		if e.Tenant == nil || *e.Tenant != "SHIP" {
			t.Errorf("a SHIP admin sees another tenant's entry: %+v", e)
		}
		actions[e.Action+"/"+e.Outcome] = e.Actor
	}
	for _, want := range []string{"group.create/accepted", "operation.succeeded/succeeded", "group.create/denied"} {
		if _, ok := actions[want]; !ok {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
	if r := g.do("GET", "/v1/audit?tenant=OTHER", "admin SHIP", nil); r.status != 403 {
		t.Errorf("a SHIP admin reading OTHER's audit: %d", r.status)
	}
	if r := g.do("GET", "/v1/audit", "SHIP/MOH", nil); r.status != 403 {
		t.Errorf("a project reading the audit log: %d", r.status)
	}
	// Pagination: a page of 1 has a cursor that leads on.
	r := g.do("GET", "/v1/audit?limit=1", "operator", nil)
	var p1 api.AuditPage
	r.decode(t, &p1)
	if len(p1.Entries) != 1 || p1.Next == nil {
		t.Fatalf("page of one: %s", r.body)
	}
	r = g.do("GET", "/v1/audit?limit=1&cursor="+*p1.Next, "operator", nil)
	var p2 api.AuditPage
	r.decode(t, &p2)
	if r.status != 200 || len(p2.Entries) != 1 || p2.Entries[0].Id == p1.Entries[0].Id {
		t.Errorf("second page: %s", r.body)
	}
	if r := g.do("GET", "/v1/audit?cursor=garbage", "operator", nil); r.status != 400 {
		t.Errorf("bad cursor: %d", r.status)
	}
}
