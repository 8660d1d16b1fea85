// Package throttle is the durable, serialized queue that every upstream
// (TechPass Automation API) call of a tenant goes through.
//
// TechPass allows each tenant one request per second and requires requests to
// be synchronous: no new request before the previous one is done. The limit
// belongs to the tenant's credentials, so it is shared by every project of
// the tenant. This package enforces it in two layers:
//
//   - A Dispatcher per tenant takes queued Operations from the Store one at a
//     time, in queue order, and hands each to a Handler. An operation is
//     persisted before the client is answered and stays in the store until
//     its outcome is committed, so a crash only delays work: a dispatcher
//     starts by putting its tenant's interrupted operations back
//     (Store.RequeueRunning), and handlers make a replay harmless. The
//     queue's records and the rules over them (QueueTx, EnqueueIn,
//     SettleIn, RequeueIn) are written once for every backend; Outcome and
//     Store are generic over the domain's effect type, so a store is only
//     ever handed effects it can apply.
//   - A Gate per tenant, which the upstream client acquires around every
//     single HTTP request (retries and token-refresh replays included), keeps
//     at least the interval between the starts of two requests and never lets
//     two be in flight.
//
// Time is passed in (Now fields and Delay's arguments) so the pacing and
// retry arithmetic is tested on fixed timelines.
package throttle
