// Package console is groupgate's web console at /console: server-rendered
// pages (html/template, with templates and assets embedded in the binary,
// nothing from elsewhere, so it works offline) for operators, tenant-admins
// and project keys.
//
// # One policy
//
// The console holds no authorization of its own. Every read and write it
// makes is an API request, served in process by the API's own handler
// (Config.API) with the generated client, carrying the session's principal
// in the request's context (PrincipalFrom) instead of a key. The request
// runs through the same middleware (authentication, rate limit, audit log,
// access log) and the same handler checks (api.Policy, tenants.Require*) as
// one from curl, so a page shows and changes exactly what the API would let
// the key behind the session see and change; refusals come back as the
// API's problem documents and are shown as such. The one thing the API has
// no operation for, enumerating the operations pending in a queue, comes
// from the store (Pending), and only after the API let the caller read that
// queue (getQueue for the project): the first 20 ids are then each read
// through the API's getOperation, so none is shown that the API would hide,
// and a queue the caller may not read tells nothing, not even its size. A
// tenant's queue page shows its projects' queues as getQueue gives them.
// Credential ages come from the server's credential loader
// (Config.CredentialAges), for tenants the API let the caller read.
//
// # Sessions
//
// Signing in exchanges an API key for a server-side session: the key is
// checked once (Authenticator.Authenticate) and only its id is kept; the
// browser holds a random, nondescript session id in an HttpOnly,
// SameSite=Strict, Secure __Host- cookie (Config.Secure: off only for a
// console reached over plain HTTP, the local demo). Only keys of the shape
// groupgate issues are checked, and failed sign-ins are limited per client
// address and per key id. Every request resumes the key by id against the
// authentication snapshot the API uses (Authenticator.Resume; a page's own
// polls use Peek, which records no use of the key), so a revoked or expired
// key, or a disabled tenant or project, ends its sessions at once; a store
// that cannot be read answers 503 and keeps the session. Sessions end after an idle
// period (default 15 minutes; background polling does not count as
// activity) and an absolute lifetime (default 8 hours). A new id is issued
// at every sign-in and any id presented before it is dropped. Every form
// that changes anything carries the session's synchronizer token, checked
// in constant time; the sign-in form carries a token bound to a short-lived
// cookie of its own. Pages carry a Content-Security-Policy without
// 'unsafe-inline' and are never cached; no page shows a secret, except the
// one that shows a newly issued key, once: issuing redirects to it, and the
// key is forgotten as it is shown (a reload shows it no more and issues no
// other).
//
// Sessions live in memory (MemorySessions, at most MaxSessionsPerKey per
// key and MaxSessions in all, the oldest ending first; Console.Run sweeps
// expired ones): fine for one process, lost on restart (users sign in
// again). Several replicas need a shared Sessions
// implementation, or sticky routing.
package console
