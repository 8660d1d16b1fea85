// Package queue holds the durable queue that every upstream (TechPass
// Automation API) call of a tenant goes through: the operation model, the
// store contract, the queue's rules over that contract, its limits and the
// order it is served in. It runs nothing: package dispatch takes operations
// off the queue and package pacing spaces the requests they make.
//
//   - The model: an Operation moves through its States (Queued and Running
//     are pending; Succeeded, Failed and Cancelled are final) and fails with
//     a caller-facing Failure. Its Kind, Payload, Progress and Result belong
//     to the domain that executes it (package groups); they are opaque here.
//     NewID makes ids that sort in time order.
//   - The store contract: Store is what the dispatchers need of a backend,
//     method by method (groups.Ledger provides it over groups.Store). Tx is a tenant's queue records inside one
//     store transaction, data primitives that decide nothing; the rules over
//     them (EnqueueIn with its checks CheckEnqueue and CheckIdempotency,
//     QueueIn, RecordIn, SettleIn, RequeueIn) are written once here for
//     every backend. Store is generic over the domain's effect type, so a
//     store is only ever handed effects it can apply. Package queuetest is
//     its conformance suite.
//   - Limits and order: Limits bound a tenant's and a project's pending
//     operations (Depth counts them; a full queue is a *QueueFullError with
//     a RetryAfter estimate). Each project's queue keeps submission order;
//     the projects with work take turns (NextProject, round robin), so a
//     project that floods the queue waits its turn like the others, and
//     Position estimates an operation's place under that rule.
//
// An operation is persisted before the client is answered and stays in the
// store until its outcome is committed, so a crash only delays work.
//
// Time is passed in (an operation's times, the now arguments) so the order
// and the estimates are tested on fixed timelines.
package queue
