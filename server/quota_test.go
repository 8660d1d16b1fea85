package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/pgtest"
)

// quotaRefused is the problem type of a create over the project's quota.
const quotaRefused = "urn:groupgate:problem:group-quota"

// createIn sends a create of name in SHIP/MOH through g and reports
// whether it was accepted (202) or refused for the quota (409
// group-quota); any other answer fails the test.
func createIn(t *testing.T, g *gateway, name string) (accepted bool) {
	t.Helper()
	r := g.do("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": name})
	switch {
	case r.status == http.StatusAccepted:
		return true
	case r.status == http.StatusConflict && *r.problem(t).Type == quotaRefused:
		return false
	}
	t.Fatalf("create %s: %d %s, want 202 or 409 %s", name, r.status, r.body, quotaRefused)
	return false
}

// setQuota sets SHIP/MOH's group quota through g.
func setQuota(t *testing.T, g *gateway, quota int) {
	t.Helper()
	if r := g.do("PATCH", "/v1/tenants/SHIP/projects/MOH", "operator", map[string]int{"groupQuota": quota}); r.status != http.StatusOK {
		t.Fatalf("set the quota to %d: %d %s", quota, r.status, r.body)
	}
}

// TestQuotaChangeAppliesToNextCreate: a project's quota changed through the
// admin API applies to the very next create (the quota is read from the
// authenticator's snapshot, which the change reloads).
func TestQuotaChangeAppliesToNextCreate(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: time.Hour})
	setQuota(t, g, 1)
	if !createIn(t, g, "first") {
		t.Fatal("the first create under a quota of 1 was refused")
	}
	if createIn(t, g, "second") {
		t.Fatal("a second create under a quota of 1 was accepted")
	}
	setQuota(t, g, 2)
	if !createIn(t, g, "second") {
		t.Fatal("the create right after the quota was raised to 2 was refused")
	}
}

// TestReplicasQuotaChangeBound: a quota lowered through replica A applies
// on B within postgres.auth_cache_ttl of the change, with B polling only
// (no signal to hurry it).
func TestReplicasQuotaChangeBound(t *testing.T) {
	const ttl = 300 * time.Millisecond
	a := startGateway(t, gatewayOptions{postgres: pgtest.DSN(t), interval: time.Hour})
	b := a.replicaWith(func(c *config.Config) {
		c.Postgres.AuthCacheTTL = config.Duration(ttl)
		c.Postgres.PollOnly = true
	})
	if !createIn(t, b, "first") {
		t.Fatal("a create through B was refused")
	}
	setQuota(t, a, 1)
	changed := time.Now()
	for i := 0; ; i++ {
		sent := time.Now()
		if !createIn(t, b, fmt.Sprintf("later-%d", i)) {
			t.Logf("B applied the quota %v after it was lowered through A (bound %v)", sent.Sub(changed).Round(time.Millisecond), ttl)
			return
		}
		if sent.Sub(changed) > ttl {
			t.Fatalf("B accepted a create %v after the quota was lowered through A: the bound is %v", sent.Sub(changed), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
