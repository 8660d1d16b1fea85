package groups_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// newSimClient starts the TechPass simulator with cfg, serving namespace
// SHIP until t ends, and returns it with a TechPass client of SHIP paced at
// cfg.Interval plus a 15 ms guard (which absorbs scheduling jitter under
// -race).
func newSimClient(t *testing.T, cfg techpasssim.Config) (*techpasssim.Simulator, *techpass.Client) {
	t.Helper()
	sim := techpasssim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(sim.StopWebhooks)
	if err := sim.AddNamespace(techpasssim.Namespace{Name: "SHIP", DirectoryID: "dir", ClientID: "cid", ClientSecret: "ship-secret", APIKeys: []string{"ship-key"}}); err != nil {
		t.Fatal(err)
	}
	client, err := techpass.New(techpass.Config{
		Namespace: "SHIP", APIURL: srv.URL, TokenURL: techpass.TokenURL(srv.URL, "dir"), ClientID: "cid",
		ClientSecret: func() (string, error) { return "ship-secret", nil },
		APIKey:       func() (string, error) { return "ship-key", nil },
		Pacer:        pacing.NewGate(cfg.Interval+15*time.Millisecond, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}
