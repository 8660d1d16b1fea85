package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate/pgstore"
)

// useLeases makes the dispatchers run each tenant only while this replica
// holds its lease, on PostgreSQL (pgstore.Leading: heartbeats, the spread
// of tenants over the live replicas, fenced writes, the durable pacing
// record). On bbolt every dispatcher runs (one process).
func (s *Server) useLeases() error {
	if s.store.pg == nil {
		return nil
	}
	l, err := s.store.pg.NewLeading(pgstore.LeadingConfig{Replica: replicaName(), TTL: time.Duration(s.cfg.Postgres.LeaseTTL), Poll: leasePoll(time.Duration(s.cfg.Postgres.LeaseTTL)), Logger: s.logger})
	if err != nil {
		return err
	}
	s.queue.UseLeases(l)
	s.leading = l
	return nil
}

// replicaName names this replica among those sharing the database: the
// host name (a pod's name) and a random suffix, unique across restarts
// and processes on one host.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "groupgate"
	}
	return fmt.Sprintf("%s-%s", host, rand.Text()[:8])
}

// depart tells the other replicas this one is leaving, so they take the
// leases its dispatchers release at once.
func (s *Server) depart() {
	if s.leading == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.leading.Depart(ctx); err != nil {
		s.logger.Warn("depart from the replicas", "err", err)
	}
}

// leaseCollector exports, at scrape time, which replica leads which
// tenant and how many times each tenant's lease changed hands, read from
// the store's lease table (pgstore.Store.Leases), so every replica reports
// the same figures. Registered on PostgreSQL only.
type leaseCollector struct {
	pg        *pgstore.Store
	leader    *prometheus.Desc
	handovers *prometheus.Desc
}

func newLeaseCollector(pg *pgstore.Store) *leaseCollector {
	return &leaseCollector{
		pg: pg,
		leader: prometheus.NewDesc("groupgate_tenant_leader",
			"1 for the replica whose lease makes it the tenant's dispatcher (no series while no lease is live).",
			[]string{"tenant", "replica"}, nil),
		handovers: prometheus.NewDesc("groupgate_lease_handovers_total",
			"Times the tenant's dispatcher lease was taken anew after its first holder (a handover, a lapse or a release retaken).",
			[]string{"tenant"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.leader
	ch <- c.handovers
}

// Collect implements prometheus.Collector. A store that does not answer
// within 2 s leaves the series out of this scrape.
func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ls, err := c.pg.Leases(ctx)
	if err != nil {
		return
	}
	for _, l := range ls {
		if l.Live {
			ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, 1, l.Tenant, l.Holder)
		}
		ch <- prometheus.MustNewConstMetric(c.handovers, prometheus.CounterValue, float64(max(l.Epoch-1, 0)), l.Tenant)
	}
}

// leasePoll is how often a replica looks for a lease to take: 0 (the
// default, 500 ms) unless a short lease_ttl asks for a fifth of it.
func leasePoll(ttl time.Duration) time.Duration {
	if ttl > 0 && ttl/5 < 500*time.Millisecond {
		return ttl / 5
	}
	return 0
}
