package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
)

// TestStaleIdentityProviderIsReported: an identity provider registered
// when its JWKS URL was allowed (here: on loopback, under
// allow_loopback_jwks; before the upgrade: any http or private address)
// no longer validates after a restart without that allowance. The gateway
// warns about it at start-up and /readyz carries a notice naming the
// project and the problem (not the URL), until the provider is fixed.
func TestStaleIdentityProviderIsReported(t *testing.T) {
	const jwks = "http://127.0.0.1:9/private/jwks.json"
	old := startGateway(t, gatewayOptions{mutate: func(c *config.Config) { c.AllowLoopbackJWKS = true }})
	if r := old.registerJWKS("https://idp.moh.example", jwks); r.status != http.StatusOK {
		t.Fatalf("register a loopback JWKS URL with allow_loopback_jwks: %d %s", r.status, r.body)
	}
	if rd := readiness(t, old); rd.Checks["identity"] != (api.Check{}) {
		t.Fatalf("a valid provider gave a readiness notice: %+v", rd.Checks["identity"])
	}
	old.stop()

	g := startGateway(t, gatewayOptions{store: old.store, up: old.up})
	logs := g.logs.String()
	if !strings.Contains(logs, "stored identity provider no longer valid") || !strings.Contains(logs, `"project":"MOH"`) ||
		!strings.Contains(logs, "loopback") {
		t.Errorf("no start-up warning naming the project and the problem:\n%s", logs)
	}
	// Ready (once the tenants' upstream checks pass), with the notice.
	var rd api.Readiness
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if rd = readiness(t, g); rd.Status == api.Ready {
			break
		}
	}
	chk := rd.Checks["identity"]
	if rd.Status != api.Ready || chk.Status != api.CheckStatusOk || chk.Detail == nil ||
		!strings.Contains(*chk.Detail, "SHIP/MOH") || !strings.Contains(*chk.Detail, "loopback") {
		t.Fatalf("readyz: %s, identity check %+v; want ready with a notice naming SHIP/MOH and the problem", rd.Status, chk)
	}
	if strings.Contains(*chk.Detail, "private/jwks") || strings.Contains(logs, "private/jwks") {
		t.Errorf("the notice or the log quotes the JWKS URL: %q", *chk.Detail)
	}

	// Fixed through the admin API: the notice goes.
	if r := g.registerJWKS("https://idp.moh.example", "https://idp.moh.example/jwks.json"); r.status != http.StatusOK {
		t.Fatalf("fix the provider: %d %s", r.status, r.body)
	}
	if rd := readiness(t, g); rd.Checks["identity"] != (api.Check{}) {
		t.Errorf("after the fix, readyz still has an identity check: %+v", rd.Checks["identity"])
	}
}
