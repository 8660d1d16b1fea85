package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/groupgate/groupgate/api"
)

// TestMetricUpstreamStartLateness: every Automation API request's lateness
// (headers written after its planned start) is observed, per tenant and
// with no other label, and the series moves with each request.
func TestMetricUpstreamStartLateness(t *testing.T) {
	const name = "groupgate_upstream_start_lateness_seconds"
	g := startGateway(t, gatewayOptions{interval: 50 * time.Millisecond})
	run := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			if op := g.await("SHIP/MOH", g.create("SHIP/MOH", fmt.Sprintf("%s%d", prefix, i)).Id, 10*time.Second); op.State != api.Succeeded {
				t.Fatalf("create: %+v", op)
			}
		}
	}
	check := func(when string) float64 {
		t.Helper()
		fams := g.scrape()
		f := fams[name]
		if f == nil {
			t.Fatalf("%s: no %s series", when, name)
		}
		count, _ := value(fams, name, map[string]string{"tenant": "SHIP"})
		if want := g.up.stats("SHIP").Requests; int(count) != want {
			t.Errorf("%s: %v observations for SHIP, want one per upstream request (%d)", when, count, want)
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "tenant" {
				t.Errorf("%s: labels %v, want the tenant only", when, m.GetLabel())
			}
			if h := m.GetHistogram(); h.GetSampleCount() > 0 && (h.GetSampleSum() < 0 || h.GetSampleSum() > float64(h.GetSampleCount())) {
				t.Errorf("%s: %d observations sum to %vs", when, h.GetSampleCount(), h.GetSampleSum())
			}
		}
		return count
	}
	run("a", 2)
	before := check("after two creates")
	if before < 2 {
		t.Fatalf("after two creates: %v observations", before)
	}
	run("b", 3)
	if after := check("after three more"); after < before+3 {
		t.Errorf("the series did not move: %v, then %v", before, after)
	}
}
