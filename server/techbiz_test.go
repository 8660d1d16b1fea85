package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestTechBizListRefused: when TechPass refuses the TechBiz list (400), a
// group that vanished is settled as deleted and the pass completes, rather
// than every pass stopping there.
func TestTechBizListRefused(t *testing.T) {
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}},
		sim:      func(c *techpasssim.Config) { c.RefuseTechBizList = true },
	})
	g.createActive("SHIP/MOH", "doomed")
	if err := g.up.sim.DeleteGroupDirect("SHIP", "SHIP:MOH:doomed"); err != nil {
		t.Fatal(err)
	}
	g.reconcile("SHIP", 20*time.Second)
	if names := groupNames(g.list("SHIP/MOH")); slices.Contains(names, "doomed") {
		t.Errorf("the vanished group is still mirrored: %v", names)
	}
	if d := g.auditActions("SHIP", "drift.group.vanished"); len(d) != 1 {
		t.Errorf("drift.group.vanished entries = %d, want 1", len(d))
	}
}
