package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestResilienceRetryWindow: transient faults are retried for a time, not a
// handful of tries. With the default retry settings (their delays scaled
// down to a 10 ms interval), 20% server errors, 5% throttling and a token
// endpoint outage shorter than the token's life, 300 operations over three
// tenants all succeed: none is failed by a run of bad luck, as about one
// create in a thousand was when a bound of 6 counted failures (and an
// unclear create's adoption check spent them too) was the limit.
func TestResilienceRetryWindow(t *testing.T) {
	const interval = 10 * time.Millisecond
	tenants := []string{"SHIP/MOH", "OTHER/MOH", "THIRD/MOH"}
	g := startGateway(t, gatewayOptions{
		interval:   interval,
		groupLimit: 100,
		projects:   map[string][]string{"SHIP": {"MOH"}, "OTHER": {"MOH"}, "THIRD": {"MOH"}},
		mutate: func(c *config.Config) {
			c.Retry = config.DefaultConfig().Retry
			c.Retry.BaseDelay, c.Retry.MaxDelay = config.Duration(interval), config.Duration(10*interval)
		},
	})
	// Short-lived tokens: renewed with 2 s left, used until 3.6 s.
	const lifetime = 4 * time.Second
	if err := g.up.sim.SetFaults(techpasssim.Faults{TokenLifetime: lifetime}); err != nil {
		t.Fatal(err)
	}
	for _, who := range tenants {
		if op := g.await(who, g.create(who, "warm").Id, 10*time.Second); op.State != api.Succeeded {
			t.Fatalf("warm-up of %s: %+v", who, op)
		}
	}
	// Every token was issued within the warm-up, just now: the outage covers
	// their renewal point and ends before they expire.
	const outage = 2800 * time.Millisecond
	if err := g.up.sim.SetFaults(techpasssim.Faults{
		ServerErrorRate: 0.20, ThrottleRate: 0.05, TokenLifetime: lifetime, TokenOutageUntil: time.Now().Add(outage),
	}); err != nil {
		t.Fatal(err)
	}
	const perTenant = 50 // creates, then as many deletes: 300 operations in all
	maxAttempts := 0
	for _, op := range g.createThenDelete(tenants, "r", perTenant, 90*time.Second) {
		maxAttempts = max(maxAttempts, int(op.Attempts))
	}
	t.Logf("most attempts of one operation: %d", maxAttempts)
	tokenFailures := 0
	for _, who := range tenants {
		ns, _, _ := strings.Cut(who, "/")
		st := g.up.stats(ns)
		t.Logf("%s: %d requests, %d server errors, %d throttled, %d token requests, %d token failures",
			ns, st.Requests, st.ServerErrors, st.Throttled, st.TokenRequests, st.TokenFailures)
		// Violations are not checked here: on a loaded machine the
		// simulator's own arrival stamps lag now and then (see
		// docs/benchmarks.md), and pacing has tests of its own. A violation's
		// 429 is one more transient fault, retried like the others.
		if st.MaxInFlight != 1 || st.Unauthorized != 0 {
			t.Errorf("%s: max in flight %d, %d unauthorized; want 1, 0 (%d violations)", ns, st.MaxInFlight, st.Unauthorized, st.Violations)
		}
		if st.ServerErrors == 0 || st.Throttled == 0 {
			t.Errorf("%s: the faults were not injected: %+v", ns, st.Counters)
		}
		tokenFailures += st.TokenFailures
		for name, n := range st.CreatesByName {
			if n != 1 {
				t.Errorf("%s: %s created %d times", ns, name, n)
			}
		}
	}
	// A tenant whose requests were held by a 429's Retry-After through the
	// part of the outage past its renewal point met no refused renewal; the
	// others did.
	if tokenFailures == 0 {
		t.Error("no token renewal met the outage: the test proves nothing of it")
	}
	g.stop()
	assertNoLeaks(t, g)
}
