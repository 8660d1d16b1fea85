package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/groupgate/groupgate/metrics"
)

// fakeState is a State with fixed answers.
type fakeState struct {
	depths    map[string]map[string]int
	upstreams []metrics.Upstream
}

func (f fakeState) QueueDepths(context.Context) map[string]map[string]int { return f.depths }
func (f fakeState) Upstreams() []metrics.Upstream                         { return f.upstreams }

// TestStateAtScrape: queue depths, token counters and credential ages are
// read from State when the registry is gathered, labelled by tenant (and
// project or credential kind), ages measured with the given clock.
func TestStateAtScrape(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := metrics.New(fakeState{
		depths: map[string]map[string]int{"SHIP": {"MOH": 3, "MOE": 1}},
		upstreams: []metrics.Upstream{{Tenant: "SHIP", TokenRequests: 4, TokenFailures: 1,
			CredentialChanged: map[string]time.Time{"API key": now.Add(-time.Hour)}}},
	}, func() time.Time { return now })
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			for _, l := range s.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = s.GetGauge().GetValue() + s.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"groupgate_queue_depth project=MOH tenant=SHIP":                   3,
		"groupgate_queue_depth project=MOE tenant=SHIP":                   1,
		"groupgate_token_requests_total tenant=SHIP":                      4,
		"groupgate_token_failures_total tenant=SHIP":                      1,
		"groupgate_credential_age_seconds credential=API key tenant=SHIP": 3600,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}
