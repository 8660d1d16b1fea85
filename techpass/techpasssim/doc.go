// Package techpasssim is a faithful, in-process simulator of TechPass: the
// Azure AD v2 token endpoint that issues client-credentials tokens, and the
// Automation API behind its AWS API Gateway.
//
// It exists because no test or local run can reach TechPass, yet the rules
// TechPass imposes on its clients are exactly what the service must get
// right: keep credentials secret, send the namespace API key and a valid
// bearer token, never exceed one request per second per namespace, never
// overlap requests, honour Retry-After, and never create a group twice. The
// simulator enforces each of those rules the way the real service is known
// (or assumed, see package techpass) to enforce them, and records every
// breach in Stats, so a test can prove the client behaved rather than merely
// that it got an answer.
//
// The simulator serves exactly the routes of techpass.Routes, or the table
// an operator corrected (Config.Routes, from techpass.ResolveRoutes), so the
// route table stays the single place where an assumption about the
// Automation API is written down. Faults (server errors, throttling with Retry-After, a
// latency distribution, a token outage or an outage window, short token
// lifetimes) can be set at start or at run time, with a fixed seed to
// exercise retries deterministically; SetClientSecret, SetCertificate and
// SetAPIKeys rotate (and so revoke) credentials as a tenant does.
//
// Users live in one directory shared by every namespace, as TechPass's users
// do (Config.Users, AddUser, DemoUsers); groups hold members by object id.
// The user lookup's path names no namespace: it counts for the namespace
// whose API key it carries. What happens outside the Automation API (the
// TechPass portal, a dynamic group's membership rule) is done with the
// Direct methods (CreateGroupDirect, AddMemberDirect, ...), which are not
// requests: they are neither rate limited nor counted. Member lists are
// paginated, Config.MemberPageSize members a page, ordered by object id,
// with an opaque cursor naming the last member of the previous page. Get
// Group embeds the members ("users") and owners (SetOwners): the full list
// by default, or a page given the page and pageSize parameters. Groups
// marked as managed by TechBiz (SetTechBiz) are listed only with
// includeOnTechBiz=true and cannot be changed through the API (403).
// Some answers use TechPass's documented error shape
// {"error":{"code","message","traceId"}} (an unknown user or group, a
// TechBiz group), the rest AWS API Gateway's {"message"}. The token endpoint
// accepts assertions by any registered certificate (AddCertificate, for a
// rollover), chosen by kid with Config.KeyByKID, and refuses one whose nbf or
// iat is in its future with AADSTS700024.
//
// Everything the simulator knows about TechPass that is not published is an
// assumption; assumptions are marked "assumed" in the comments next to the
// code that makes them.
//
// Simulator.Handler serves:
//
//	POST /{directoryID}/oauth2/v2.0/token      Azure AD v2 client-credentials token endpoint
//	every route of techpass.Routes             the Automation API (x-api-key, throttle, bearer, faults)
//	GET  /_sim/stats                           Stats as JSON (read it with FetchStats)
//	POST /_sim/stats/reset                     ResetStats
//	GET  /_sim/faults, PUT /_sim/faults        CurrentFaults / SetFaults, durations as "250ms"
//	GET  /_sim/namespaces/{namespace}/groups   the namespace's groups, uncounted
//	POST /_sim/namespaces/{namespace}/groups   CreateGroupDirect: {"name","description","dynamic","techBiz"}
//	DELETE /_sim/namespaces/{namespace}/groups/{name}                    DeleteGroupDirect
//	GET, POST /_sim/namespaces/{namespace}/groups/{name}/members         Members / AddMemberDirect {"userId"}
//	DELETE /_sim/namespaces/{namespace}/groups/{name}/members/{userId}   RemoveMemberDirect
//	PUT /_sim/namespaces/{namespace}/groups/{name}/owners                SetOwners {"userIds"}
//	GET, POST /_sim/users                      Users / AddUser {"id","email","displayName"}
//	DELETE /_sim/users/{id}, PATCH /_sim/users/{id}   DeleteUser / UpdateUser {"email","displayName"}, each sending a webhook
//	POST /_sim/namespaces/{namespace}/events   SendEvent: any {"event":...} to the namespace's webhook
//	GET  /_sim/namespaces/{namespace}/webhook  WebhookStats (see SetWebhook)
//
// and a JSON 404 {"message":"Not Found"} for everything else. Served on
// Simulator.Listener, it measures the interval from when requests reached
// its socket, as TechPass's edge would, not from when its handlers ran. The /_sim/
// endpoints are for tests running in another process and for people running
// the standalone binary cmd/techpass-sim; they need no credentials, are not
// rate limited and do not count as requests.
package techpasssim
