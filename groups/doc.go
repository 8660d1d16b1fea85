// Package groups holds the rules for project-scoped TechPass groups and the
// service that manages them.
//
// A group managed by this service has a full name <TENANT>:<PROJECT>:<group>
// (for example SHIP:MOH:billing). The tenant and project come from the
// caller's credential and the request path, never from anything the caller
// asserts about itself; this package only builds and checks names, and the
// caller (the HTTP edge) is responsible for having authorized the prefix.
//
// Writes are not sent to TechPass here: they are recorded, together with the
// group's pending state in the local mirror, as operations on the durable
// queue (package queue) and answered at once. The Executor carries them
// out later, one at a time per tenant. Reads are served from the mirror and
// never cost an upstream call.
//
// The mirror and the queue are kept by a Store, which holds records and
// runs transactions (Update over a Tx) and decides nothing; every rule about
// them (what a write checks, what an effect or a reconcile change does to a
// group, revisions, what a user deleted or changed in TechPass means) is in
// this package, in Ledger, the effects' Apply and user_events.go.
//
// Files: the Service in service.go (create, delete, retry, cancel, the
// reads of one group), service_members.go, service_update.go and
// service_lists.go (pages and cursors); stored results in results.go; user identifiers in
// users.go; names in names.go; operation kinds, their payloads and Undo in
// kinds.go; the Executor in executor*.go; the Reconciler in reconcile.go;
// the store contract in store.go and the rules over it in ledger.go,
// effects.go and user_events.go.
package groups
