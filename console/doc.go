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
// from the store (Pending), and each of those operations is then read
// through the API's getOperation, so none is shown that the API would hide.
//
// # Sessions
//
// Signing in exchanges an API key for a server-side session: the key is
// checked once (Authenticator.Authenticate) and only its id is kept; the
// browser holds a random, nondescript session id in an HttpOnly,
// SameSite=Strict cookie (Secure whenever the server speaks TLS). Every
// request resumes the key by id against the authentication snapshot the API
// uses (Authenticator.Resume), so a revoked or expired key, or a disabled
// tenant or project, ends its sessions at once. Sessions end after an idle
// period (default 15 minutes; background polling does not count as
// activity) and an absolute lifetime (default 8 hours). A new id is issued
// at every sign-in and any id presented before it is dropped. Every form
// that changes anything carries the session's synchronizer token, checked
// in constant time; the sign-in form carries a token bound to a short-lived
// cookie of its own. Pages carry a Content-Security-Policy without
// 'unsafe-inline' and are never cached; no page shows a secret, except the
// one that shows a newly issued key, once.
//
// Sessions live in memory (MemorySessions): fine for one process, lost on
// restart (users sign in again). Several replicas need a shared Sessions
// implementation, or sticky routing.
package console
