package pgstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pgstore"
)

// TestReplicasByHeartbeat: replicas are listed while their heartbeat
// lasts (database clock); one that departs goes at once, one that stops
// beating when its heartbeat expires.
func TestReplicasByHeartbeat(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	for _, hb := range []struct {
		s    *pgstore.Store
		name string
		ttl  time.Duration
	}{{a, "replica-a", time.Minute}, {b, "replica-b", time.Second}, {b, "replica-c", time.Minute}} {
		if err := hb.s.Heartbeat(ctx, hb.name, hb.ttl); err != nil {
			t.Fatal(err)
		}
	}
	live := func() []string {
		t.Helper()
		rs, err := a.Replicas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	if got := fmt.Sprint(live()); got != "[replica-a replica-b replica-c]" {
		t.Errorf("live replicas %s", got)
	}
	if err := b.Depart(ctx, "replica-c"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(live()); got != "[replica-a replica-b]" {
		t.Errorf("after replica-c departed: %s", got)
	}
	testkit.Eventually(t, 5*time.Second, "replica-b's heartbeat to expire", func() bool {
		time.Sleep(20 * time.Millisecond)
		return fmt.Sprint(live()) == "[replica-a]"
	})
}

// TestAssignSpreadsTenants: the assignment is the same whatever the order
// of the lists, spreads tenants about evenly, and moves only the tenants a
// replica gains or had when it joins or leaves.
func TestAssignSpreadsTenants(t *testing.T) {
	var tenants []string
	for i := range 300 {
		tenants = append(tenants, fmt.Sprintf("T%03d", i))
	}
	three := []string{"replica-a", "replica-b", "replica-c"}
	got := pgstore.Assign(tenants, three)
	reversed := slices.Clone(three)
	slices.Reverse(reversed)
	if fmt.Sprint(pgstore.Assign(tenants, reversed)) != fmt.Sprint(got) {
		t.Error("the assignment depends on the order of the replicas")
	}
	count := map[string]int{}
	for _, tn := range tenants {
		if !slices.Contains(three, got[tn]) {
			t.Fatalf("%s assigned to %q", tn, got[tn])
		}
		count[got[tn]]++
	}
	for _, r := range three {
		if count[r] < 70 || count[r] > 130 {
			t.Errorf("%s leads %d of 300 tenants, want about 100: %v", r, count[r], count)
		}
	}
	four := pgstore.Assign(tenants, append(slices.Clone(three), "replica-d"))
	two := pgstore.Assign(tenants, three[:2])
	for _, tn := range tenants {
		if four[tn] != got[tn] && four[tn] != "replica-d" {
			t.Errorf("replica-d joining moved %s from %s to %s", tn, got[tn], four[tn])
		}
		if two[tn] != got[tn] && got[tn] != "replica-c" {
			t.Errorf("replica-c leaving moved %s from %s to %s", tn, got[tn], two[tn])
		}
	}
	if len(pgstore.Assign(tenants, nil)) != 0 {
		t.Error("tenants assigned to no replicas")
	}
}
