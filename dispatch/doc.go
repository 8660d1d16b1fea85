// Package dispatch runs the tenants' queues (package queue): one Dispatcher
// per tenant carries the tenant's operations out one at a time.
//
// A Dispatcher picks the next operation in the queue's order
// (queue.NextProject), marks it running, hands it to the domain's Handler,
// and commits the Outcome with the effects the handler returns, through the
// queue.Store, in one transaction. A retryable outcome is tried again after
// a backoff or the upstream's Retry-After, keeping its place at the head of
// its project, until RetryPolicy gives it up (a retry window, not a count of
// tries). Failures the dispatcher decides itself are worded by the domain
// (Endings): this package knows neither HTTP nor the upstream. A dispatcher
// starts by putting its tenant's interrupted operations back
// (Store.RequeueRunning), and handlers make a replay harmless. Background
// work (the mirror's refresh) runs only in upstream slots that no queued
// operation wants.
//
// Several replicas may share one store: Leases decide which one runs each
// tenant's dispatcher. Dispatchers runs a tenant's dispatcher only while
// its replica leads the tenant (Leases.Lead): on each lead it requeues the
// tenant's running operations, runs under the lead's context (which ends
// before the lease could lapse, cutting a call in flight off at once),
// writes through the store fenced by the lead's epoch (Fencing: a deposed
// leader's writes fail with queue.ErrFenced and change nothing, and it
// stops), and gives the gate the lead's pacing record (RecordedLead), so the
// tenant's budget survives a handover. LocalLeases, the default, leads
// every tenant at once with nothing to fence: one process, as on bbolt.
//
// Dispatchers is the registry of every tenant's dispatcher: it adds,
// replaces, removes and runs them, wakes one when work is enqueued, and
// answers questions about their queues (limits, pace, position and start
// estimates). Settled tells requests held until their operation finishes
// (Prefer: wait) when it has.
//
// The requests themselves are paced by the upstream client through the
// tenant's pacing.Gate; a dispatcher reads the gate only to sleep until the
// next slot and to estimate start times.
//
// Time is passed in (Config.Now, RetryPolicy's arguments) so the retry
// arithmetic is tested on fixed timelines.
package dispatch
