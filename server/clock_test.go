package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
)

// TestHousekeepingFollowsTheServersClock: expired Idempotency-Keys are
// purged by the server's clock (server.Options.Now), not the machine's: a
// key remembered for 24h is purged at the start of a server whose clock is
// 25h ahead.
func TestHousekeepingFollowsTheServersClock(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	r := g.doWith("POST", groupsPath("SHIP", "MOH"), "SHIP/MOH", map[string]string{"name": "billing"}, map[string]string{"Idempotency-Key": "create-billing"})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	g.stop()
	if strings.Contains(g.logs.String(), "purged expired idempotency keys") {
		t.Fatalf("a key was purged before its time:\n%s", g.logs)
	}

	later := func() time.Time { return time.Now().Add(25 * time.Hour) }
	g2 := startGateway(t, gatewayOptions{store: g.store, up: g.up, now: later})
	if !testkit.Poll(10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(g2.logs.String(), "purged expired idempotency keys")
	}) {
		t.Fatalf("the key, expired by the server's clock, was not purged at start:\n%s", g2.logs)
	}
}
