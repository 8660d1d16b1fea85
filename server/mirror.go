package server

import (
	"context"
	"sync"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
)

// reconcilers holds each running tenant's mirror reconciler and answers the
// mirror endpoints (api.Mirrors). The zero value is ready; safe for
// concurrent use.
type reconcilers struct {
	mu    sync.Mutex
	byTen map[string]*groups.Reconciler
	queue *dispatch.Dispatchers[groups.Effect]
}

// put registers tenant's reconciler; q wakes its dispatcher on request.
func (r *reconcilers) put(tenant string, rec *groups.Reconciler, q *dispatch.Dispatchers[groups.Effect]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byTen == nil {
		r.byTen = map[string]*groups.Reconciler{}
	}
	r.byTen[tenant], r.queue = rec, q
}

func (r *reconcilers) remove(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byTen, tenant)
}

func (r *reconcilers) get(tenant string) (*groups.Reconciler, *dispatch.Dispatchers[groups.Effect]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byTen[tenant], r.queue
}

// Status implements api.Mirrors.
func (r *reconcilers) Status(tenant string) (groups.Status, bool) {
	rec, _ := r.get(tenant)
	if rec == nil {
		return groups.Status{}, false
	}
	return rec.Status(), true
}

// Request implements api.Mirrors: the pass starts in the next free slot.
func (r *reconcilers) Request(tenant string) bool {
	rec, q := r.get(tenant)
	if rec == nil {
		return false
	}
	rec.Request()
	q.Wake(tenant)
	return true
}

// recordDrift audits a difference a reconcile pass found between the mirror
// and TechPass: a change made outside the gateway.
func (s *Server) recordDrift(ctx context.Context, d groups.Drift) {
	e := audit.Entry{
		Actor: audit.System, Role: audit.System, Tenant: d.Group.Tenant, Project: d.Group.Project,
		Action: "drift." + d.Kind, Target: d.Group.String(), Outcome: audit.Succeeded,
		Detail: "changed outside the gateway; the mirror now follows TechPass",
	}
	switch d.Kind {
	case "member.appeared":
		e.Detail = "member " + d.User.Email + " (" + d.User.ID + ") added outside the gateway"
	case "member.vanished":
		e.Detail = "member " + d.User.Email + " (" + d.User.ID + ") removed outside the gateway"
	}
	s.metrics.drift.WithLabelValues(d.Group.Tenant, d.Kind).Inc()
	s.audit.Record(ctx, e)
}
