// Package pacing keeps a tenant's upstream requests to the upstream's pace.
//
// TechPass allows each tenant one request per second and requires requests
// to be synchronous: no new request before the previous one is done. The
// limit belongs to the tenant's credentials, so it is shared by every
// project of the tenant. A Gate per tenant, which the upstream client
// acquires around every single HTTP request (retries and token-refresh
// replays included), keeps at least the interval between the starts of two
// requests, never lets two be in flight, and holds every request while the
// upstream asks for a pause (Retry-After).
//
// With several replicas a Gate is attached, while its replica leads the
// tenant, to a Record shared by them all (Gate.Attach): the start of every
// request is recorded durably before it is sent, with its end and any
// hold, and a new leader waits for what the record holds. A gate with no
// record costs nothing more.
//
// Delay is the gate's arithmetic with time passed in, tested on fixed
// timelines.
package pacing
