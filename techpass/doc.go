// Package techpass talks to TechPass, GovTech's Azure-AD-based identity
// service: the OAuth2 client-credentials token endpoint and the Automation
// API.
//
// It exists so that exactly one place in the service holds TechPass
// credentials (client secret or certificate key, namespace API key, access
// tokens). Nothing outside this package ever receives one, so nothing outside
// it can leak one: errors returned from here carry the upstream status and a
// sanitized reason, never a request or response body verbatim.
//
// The client authenticates with a client secret or, as TechPass recommends,
// a certificate client assertion (Certificate.BuildAssertion). It keeps one
// access token per tenant in memory, renews it ahead of expiry
// (RenewalPolicy), keeps using it while a renewal fails and retries with
// backoff, and reports the state of its token lifecycle through Health, so
// an operator sees a refused credential without reading logs. Every call is
// paced by the tenant's Pacer, which a 429's Retry-After holds.
//
// Every Automation API path the service uses lives in one table, Routes.
// Only some are published by TechPass; the others are assumptions, marked as
// such, and the simulator in package techpasssim serves exactly this table so
// that correcting an assumption is a one-line change in one place.
package techpass
