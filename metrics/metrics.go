// Package metrics holds the service's Prometheus series, in a registry of
// its own (no global state), served at /metrics: API requests, upstream
// requests and their start lateness, queue waits, operations, reconcile
// passes and drift, and, read at scrape time through State, queue depths,
// token requests and credential ages. Labels name tenants, projects,
// routes and statuses: never a key, a credential or a group.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
)

// Metrics are the service's series. Create with New; safe for concurrent
// use.
type Metrics struct {
	// Registry holds every series; others may register theirs in it.
	Registry *prometheus.Registry

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	rateLimited      prometheus.Counter
	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	upstreamLateness *prometheus.HistogramVec
	queueWait        *prometheus.HistogramVec
	operations       *prometheus.CounterVec
	reconcilePasses  *prometheus.CounterVec
	drift            *prometheus.CounterVec
	lastPass         *prometheus.GaugeVec
}

// State is what is read from the store and the tenants' runtimes when
// Prometheus scrapes.
type State interface {
	// QueueDepths returns each tenant's pending operations by project.
	// A tenant whose depth cannot be read is left out.
	QueueDepths(ctx context.Context) map[string]map[string]int
	// Upstreams describes the TechPass access of each running tenant.
	Upstreams() []Upstream
}

// Upstream is one running tenant's TechPass access, as scraped.
type Upstream struct {
	Tenant string
	// TokenRequests and TokenFailures count token requests, and those that
	// got no token, since the tenant's client started.
	TokenRequests, TokenFailures int
	// CredentialChanged is when each credential last changed, by kind.
	CredentialChanged map[string]time.Time
}

// New returns the series, with state read at scrape time; now is the
// clock credential ages are measured with.
func New(state State, now func() time.Time) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupgate_http_requests_total", Help: "API requests answered, by route, method and status.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "groupgate_http_request_duration_seconds", Help: "API request latency, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "groupgate_rate_limited_requests_total", Help: "API requests refused by the per-credential rate limit.",
		}),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupgate_upstream_requests_total", Help: "Automation API requests, by tenant, route and HTTP status (0: no answer).",
		}, []string{"tenant", "route", "status"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "groupgate_upstream_request_duration_seconds", Help: "Automation API request latency, by tenant and route.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tenant", "route"}),
		upstreamLateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "groupgate_upstream_start_lateness_seconds",
			Help:    "How long after its planned start (the end of its pacing wait) each Automation API request's headers were written, by tenant: the scheduling and connection jitter that pace_guard must absorb.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0015, .002, .003, .005, .0075, .01, .015, .02, .05, .1, .25, 1},
		}, []string{"tenant"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "groupgate_queue_wait_seconds", Help: "Time from an operation's acceptance to its first upstream start, by tenant and project.",
			Buckets: []float64{.1, .5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600},
		}, []string{"tenant", "project"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupgate_operations_total", Help: "Operations that reached a final state, by tenant, project, kind and state.",
		}, []string{"tenant", "project", "kind", "state"}),
		reconcilePasses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupgate_reconcile_passes_total", Help: "Mirror reconcile passes finished, by tenant.",
		}, []string{"tenant"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupgate_mirror_drift_total", Help: "Changes made outside the gateway that reconcile passes found and applied, by tenant and kind.",
		}, []string{"tenant", "kind"}),
		lastPass: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "groupgate_reconcile_last_pass_timestamp_seconds", Help: "When the tenant's last reconcile pass finished (Unix time): alert when it falls far behind.",
		}, []string{"tenant"}),
	}
	m.Registry.MustRegister(m.httpRequests, m.httpDuration, m.rateLimited, m.upstreamRequests, m.upstreamDuration,
		m.upstreamLateness, m.queueWait, m.operations, m.reconcilePasses, m.drift, m.lastPass, stateCollector{state, now},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware counts and times API requests by route. A 429 that carries a
// RateLimit-Policy header counts as refused by the ingress rate limit.
func (m *Metrics) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route := c.Path()
			if strings.HasPrefix(route, "/docs/") {
				route = "/docs/*"
			}
			if route == "" {
				route = "unmatched"
			}
			status := c.Response().Status
			m.httpRequests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
			m.httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
			if status == http.StatusTooManyRequests && c.Response().Header().Get("RateLimit-Policy") != "" {
				m.rateLimited.Inc()
			}
			return nil
		}
	}
}

// ObserveUpstream returns the TechPass client's hook for one tenant.
func (m *Metrics) ObserveUpstream(tenant string) func(techpass.RouteName, int, time.Duration) {
	return func(route techpass.RouteName, status int, d time.Duration) {
		m.upstreamRequests.WithLabelValues(tenant, string(route), strconv.Itoa(status)).Inc()
		m.upstreamDuration.WithLabelValues(tenant, string(route)).Observe(d.Seconds())
	}
}

// Lateness returns the tenant gate's hook for how late its requests start.
func (m *Metrics) Lateness(tenant string) func(time.Duration) {
	h := m.upstreamLateness.WithLabelValues(tenant)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// Started observes how long an operation waited for its first start.
func (m *Metrics) Started(op queue.Operation) {
	if op.Attempts == 1 {
		m.queueWait.WithLabelValues(op.Tenant, op.Project).Observe(op.StartedAt.Sub(op.CreatedAt).Seconds())
	}
}

// Settled counts an operation's final state.
func (m *Metrics) Settled(op queue.Operation) {
	m.operations.WithLabelValues(op.Tenant, op.Project, op.Kind, string(op.State)).Inc()
}

// stateCollector reports, at scrape time, what State reads from the store
// and the tenants' clients: queue depths, token requests and failures, and
// credential ages.
type stateCollector struct {
	state State
	now   func() time.Time
}

var (
	queueDepthDesc = prometheus.NewDesc("groupgate_queue_depth",
		"Operations pending (queued or running), by tenant and project.", []string{"tenant", "project"}, nil)
	tokenRequestsDesc = prometheus.NewDesc("groupgate_token_requests_total",
		"Token endpoint requests (renewals) by tenant since the tenant's client started.", []string{"tenant"}, nil)
	tokenFailuresDesc = prometheus.NewDesc("groupgate_token_failures_total",
		"Token endpoint requests that got no token, by tenant.", []string{"tenant"}, nil)
	credentialAgeDesc = prometheus.NewDesc("groupgate_credential_age_seconds",
		"Age of each TechPass credential (since its file changed or its value was set), by tenant and credential.", []string{"tenant", "credential"}, nil)
)

// Describe implements prometheus.Collector.
func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- tokenRequestsDesc
	ch <- tokenFailuresDesc
	ch <- credentialAgeDesc
}

// Collect implements prometheus.Collector.
func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for tenant, projects := range c.state.QueueDepths(ctx) {
		for p, n := range projects {
			ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n), tenant, p)
		}
	}
	now := c.now()
	for _, u := range c.state.Upstreams() {
		ch <- prometheus.MustNewConstMetric(tokenRequestsDesc, prometheus.CounterValue, float64(u.TokenRequests), u.Tenant)
		ch <- prometheus.MustNewConstMetric(tokenFailuresDesc, prometheus.CounterValue, float64(u.TokenFailures), u.Tenant)
		for kind, changed := range u.CredentialChanged {
			ch <- prometheus.MustNewConstMetric(credentialAgeDesc, prometheus.GaugeValue, now.Sub(changed).Seconds(), u.Tenant, kind)
		}
	}
}

// Passed records a finished reconcile pass of tenant.
func (m *Metrics) Passed(tenant string, p groups.Pass) {
	m.reconcilePasses.WithLabelValues(tenant).Inc()
	m.lastPass.WithLabelValues(tenant).Set(float64(p.Finished.UnixNano()) / 1e9)
}

// Drift counts a change made outside the gateway that a reconcile pass or
// a webhook found and applied to the mirror of tenant.
func (m *Metrics) Drift(tenant, kind string) {
	m.drift.WithLabelValues(tenant, kind).Inc()
}
