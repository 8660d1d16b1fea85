package server

import (
	"context"
	"time"

	"github.com/groupgate/groupgate/metrics"
)

// scrapeState is what the metrics read at scrape time (metrics.State): the
// queue depths from the store, the token counters and credential ages from
// the tenants' runtimes.
type scrapeState struct{ s *Server }

// QueueDepths implements metrics.State.
func (st scrapeState) QueueDepths(ctx context.Context) map[string]map[string]int {
	out := map[string]map[string]int{}
	ts, err := st.s.store.Tenants(ctx)
	if err != nil {
		return out
	}
	for _, t := range ts {
		if d, err := st.s.store.Depth(ctx, t.Name); err == nil {
			out[t.Name] = d.Projects
		}
	}
	return out
}

// Upstreams implements metrics.State.
func (st scrapeState) Upstreams() []metrics.Upstream {
	var out []metrics.Upstream
	for _, rt := range st.s.runtimes.all() {
		h := rt.client.Health()
		ages := map[string]time.Time{}
		for kind, at := range rt.creds.Ages() {
			ages[string(kind)] = at
		}
		out = append(out, metrics.Upstream{Tenant: rt.name(), TokenRequests: h.Requests, TokenFailures: h.Failures, CredentialChanged: ages})
	}
	return out
}
