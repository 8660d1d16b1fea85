package server_test

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// TestMembersSourcePagingIgnored: when TechPass ignores the paging
// parameters (here the gateway sends names the simulator does not read, so
// every "page" is the whole list) and the list is exactly one page long, the
// repeated page ends the reading: two requests, not one per page until a
// size limit, and the members are mirrored once each.
func TestMembersSourcePagingIgnored(t *testing.T) {
	g := startGateway(t, gatewayOptions{
		projects: map[string][]string{"SHIP": {"MOH"}},
		mutate: func(c *config.Config) {
			tp := &c.Tenants[0].TechPass
			tp.MemberPageSize = 5
			tp.Routes = map[string]config.RouteConfig{"getGroup": {Params: map[string]string{"page": "pg", "pageSize": "sz"}}}
		},
	})
	users := techpasssim.DemoUsers(5)
	g.createActive("SHIP/MOH", "billing")
	for _, u := range users {
		if err := g.up.sim.AddMemberDirect("SHIP", "SHIP:MOH:billing", u.ID); err != nil {
			t.Fatal(err)
		}
	}
	before := g.up.stats("SHIP").ByRoute[techpass.RouteGetGroup]
	g.reconcile("SHIP", 20*time.Second)
	if n := g.up.stats("SHIP").ByRoute[techpass.RouteGetGroup] - before; n != 2 {
		t.Errorf("getGroup requests = %d, want 2 (the second page repeats the first)", n)
	}
	var members api.MemberList
	g.do("GET", membersPath("SHIP", "MOH", "billing")+"?limit=100", "SHIP/MOH", nil).decode(t, &members)
	if len(members.Members) != 5 {
		t.Errorf("%d members mirrored, want 5", len(members.Members))
	}
}
