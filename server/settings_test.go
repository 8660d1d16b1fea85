package server

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
)

// TestResolveSettings: a tenant's limits come from one resolved value: the
// interval and group limit from its stored record, the pace guard from the
// configuration, the queue limits from the configuration's defaults unless
// its entry overrides them; route corrections and a separate key file apply
// only to a tenant with its own upstream.
func TestResolveSettings(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.PaceGuard = config.Duration(7 * time.Millisecond)
	cfg.MaxQueue, cfg.MaxProjectQueue = 500, 50
	own := config.TechPassConfig{
		APIURL: "https://api.techpass.gov.sg", ClientCertificateFile: "/run/tls.crt", ClientKeyFile: "/run/tls.key",
		MembersSource: techpass.MembersFromListRoute, MemberPageSize: 100, ClientAssertionAlg: techpass.AlgPS256,
		Routes: map[string]config.RouteConfig{"getGroup": {Method: "GET"}},
	}
	cfg.Tenants = []config.TenantConfig{
		{Name: "SHIP", MaxQueue: 20, TechPass: own},
		{Name: "SIM", MaxProjectQueue: 5, TechPass: config.TechPassConfig{ClientCertificateFile: "/run/tls.crt", ClientKeyFile: "/run/tls.key"}},
	}
	cert := tenants.Credential{Kind: tenants.CredentialFile, Ref: "/run/tls.crt"}
	record := func(name, apiURL string) tenants.Tenant {
		return tenants.Tenant{Name: name, Interval: 250 * time.Millisecond, GroupLimit: 80,
			TechPass: tenants.TechPass{APIURL: apiURL, ClientSecret: cert}}
	}

	ship, err := resolveSettings(cfg, record("SHIP", own.APIURL))
	if err != nil {
		t.Fatal(err)
	}
	if ship.Interval != 250*time.Millisecond || ship.PaceGuard != 7*time.Millisecond || ship.GroupLimit != 80 ||
		ship.Queue != (queue.Limits{Tenant: 20, Project: 50}) {
		t.Errorf("SHIP limits: interval %v, guard %v, group limit %d, queue %+v", ship.Interval, ship.PaceGuard, ship.GroupLimit, ship.Queue)
	}
	if ship.KeyFile != "/run/tls.key" || ship.MembersSource != techpass.MembersFromListRoute || ship.MemberPageSize != 100 || ship.AssertionAlg != techpass.AlgPS256 {
		t.Errorf("SHIP upstream settings: %+v", ship)
	}
	overridden := false
	for _, r := range ship.Routes {
		overridden = overridden || r.Overridden
	}
	if !overridden {
		t.Error("SHIP's route correction was not applied")
	}

	sim, err := resolveSettings(cfg, record("SIM", ""))
	if err != nil {
		t.Fatal(err)
	}
	if sim.Queue != (queue.Limits{Tenant: 500, Project: 5}) || sim.KeyFile != "" {
		t.Errorf("SIM on the simulator: queue %+v, key file %q", sim.Queue, sim.KeyFile)
	}
	for _, r := range sim.Routes {
		if r.Overridden {
			t.Errorf("route %s corrected for a tenant on the simulator", r.Name)
		}
	}

	// A tenant the configuration does not name (created through the admin
	// API) takes the defaults.
	other, err := resolveSettings(cfg, record("OTHER", ""))
	if err != nil {
		t.Fatal(err)
	}
	if other.Queue != (queue.Limits{Tenant: 500, Project: 50}) || other.GroupLimit != 80 || other.MembersSource != "" {
		t.Errorf("OTHER: %+v", other)
	}
}
