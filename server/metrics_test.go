package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/server"
)

// scrape reads /metrics as the operator and parses it.
func (g *gateway) scrape() map[string]*dto.MetricFamily {
	g.t.Helper()
	r := g.do("GET", "/metrics", "operator", nil)
	if r.status != http.StatusOK {
		g.t.Fatalf("metrics: %d %s", r.status, r.body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(r.body)))
	if err != nil {
		g.t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// scrapeSettled scrapes until groupgate_operations_total with labels counts
// want operations (or 5s pass), and returns that scrape. An operation is
// counted just after its final state is committed, so a client that polled
// it final may scrape a moment before it is counted.
func (g *gateway) scrapeSettled(labels map[string]string, want float64) map[string]*dto.MetricFamily {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f := g.scrape()
		if v, _ := value(f, "groupgate_operations_total", labels); v >= want || time.Now().After(deadline) {
			return f
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// value returns the value of the series of family name with labels (a
// subset), summed over matching series; found is false when none matches.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, found bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		ok := true
		for k, want := range labels {
			has := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == want {
					has = true
				}
			}
			ok = ok && has
		}
		if !ok {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return v, found
}

// TestMetrics: after an end-to-end run the series show what happened, and
// they move as more happens.
func TestMetrics(t *testing.T) {
	g := startGateway(t, gatewayOptions{interval: 300 * time.Millisecond, mutate: func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 1000, Burst: 1000}
	}})
	if r := g.do("GET", "/metrics", "SHIP/MOH", nil); r.status != http.StatusForbidden {
		t.Errorf("a project reading metrics: %d", r.status)
	}
	if r := g.do("GET", "/metrics", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous metrics: %d", r.status)
	}
	var ops []api.Operation
	for i := range 3 {
		ops = append(ops, g.create("SHIP/MOH", fmt.Sprintf("m%d", i)))
	}
	// While they wait, the queue depth shows them.
	if d, _ := value(g.scrape(), "groupgate_queue_depth", map[string]string{"tenant": "SHIP", "project": "MOH"}); d < 2 {
		t.Errorf("queue depth %v while 3 operations wait, want >= 2", d)
	}
	for _, op := range ops {
		g.await("SHIP/MOH", op.Id, 10*time.Second)
	}
	f := g.scrapeSettled(map[string]string{"tenant": "SHIP", "project": "MOH", "state": "succeeded"}, 3)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"groupgate_upstream_requests_total", map[string]string{"tenant": "SHIP", "route": "createGroup", "status": "201"}, 3},
		{"groupgate_upstream_request_duration_seconds", map[string]string{"tenant": "SHIP", "route": "createGroup"}, 3},
		{"groupgate_operations_total", map[string]string{"tenant": "SHIP", "project": "MOH", "kind": "group.create", "state": "succeeded"}, 3},
		{"groupgate_queue_wait_seconds", map[string]string{"tenant": "SHIP", "project": "MOH"}, 3},
		{"groupgate_http_requests_total", map[string]string{"route": "/v1/tenants/:tenant/projects/:project/groups", "method": "POST", "status": "202"}, 3},
		{"groupgate_token_requests_total", map[string]string{"tenant": "SHIP"}, 1},
		{"groupgate_token_failures_total", map[string]string{"tenant": "SHIP"}, 0},
	}
	for _, c := range checks {
		if got, found := value(f, c.name, c.labels); !found || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, found, c.want)
		}
	}
	if age, found := value(f, "groupgate_credential_age_seconds", map[string]string{"tenant": "SHIP"}); !found || age < 0 {
		t.Errorf("credential age: %v %v", age, found)
	}
	if d, _ := value(f, "groupgate_queue_depth", map[string]string{"tenant": "SHIP", "project": "MOH"}); d != 0 {
		t.Errorf("queue depth after the run: %v", d)
	}
	// A 403 and a 404 are counted by status.
	g.do("GET", groupsPath("SHIP", "MOE"), "SHIP/MOH", nil)
	g.do("GET", groupsPath("SHIP", "MOH")+"/nope", "SHIP/MOH", nil)
	f = g.scrape()
	if v, _ := value(f, "groupgate_http_requests_total", map[string]string{"status": "403"}); v < 2 { // the 403 above and the project's /metrics
		t.Errorf("403s counted: %v", v)
	}
	if v, _ := value(f, "groupgate_http_requests_total", map[string]string{"route": "/v1/tenants/:tenant/projects/:project/groups/:group", "status": "404"}); v != 1 {
		t.Errorf("404 counted: %v", v)
	}
	// Failures upstream show by status.
	if err := g.up.sim.SetClientSecret("OTHER", "revoked"); err != nil {
		t.Fatal(err)
	}
	g.await("OTHER/MOH", g.create("OTHER/MOH", "doomed").Id, 20*time.Second)
	f = g.scrapeSettled(map[string]string{"tenant": "OTHER", "state": "failed"}, 1)
	if v, _ := value(f, "groupgate_operations_total", map[string]string{"tenant": "OTHER", "state": "failed"}); v != 1 {
		t.Errorf("failed operations: %v", v)
	}
	if v, _ := value(f, "groupgate_token_failures_total", map[string]string{"tenant": "OTHER"}); v < 1 {
		t.Errorf("token failures: %v", v)
	}
	for _, leak := range g.up.secrets {
		if strings.Contains(g.bodies.String(), leak) {
			t.Error("a credential leaked into a response")
		}
	}
}

// TestRateLimitedMetric: requests refused by the rate limit are counted.
func TestRateLimitedMetric(t *testing.T) {
	g := startGateway(t, gatewayOptions{mutate: func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 1, Burst: 2}
	}})
	for range 5 {
		g.do("GET", groupsPath("SHIP", "MOH"), "SHIP/MOH", nil)
	}
	if v, _ := value(g.scrape(), "groupgate_rate_limited_requests_total", nil); v < 3 {
		t.Errorf("rate-limited requests %v, want >= 3", v)
	}
}

// TestMetricsListen: metrics_listen serves the same series without a
// credential on its own address.
func TestMetricsListen(t *testing.T) {
	var srv *server.Server
	g := startGateway(t, gatewayOptions{mutate: func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" }})
	srv = g.srv
	if srv.MetricsURL() == "" {
		t.Fatal("no metrics listener")
	}
	g.create("SHIP/MOH", "counted")
	resp, err := g.http.Get(srv.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `groupgate_http_requests_total{method="POST"`) {
		t.Fatalf("metrics listener: %d\n%.500s", resp.StatusCode, body)
	}
}
