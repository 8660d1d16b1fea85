// Package techpass talks to TechPass, GovTech's Azure-AD-based identity
// service: the OAuth2 client-credentials token endpoint and the Automation
// API.
//
// It and package credentials are the only places in the service that hold
// TechPass credentials. Package credentials reads the client secret or
// certificate key and the namespace API key (from files, variables or values
// sealed in the store) and hands them to the client through the functions in
// Config; access tokens exist only here. Nothing else receives one, so
// nothing else can leak one: errors returned from here carry the upstream
// status and a sanitized reason, never a request or response body verbatim.
//
// The client authenticates with a client secret or, as TechPass recommends,
// a certificate client assertion (Certificate.BuildAssertion). It keeps one
// access token per tenant in memory, renews it ahead of expiry
// (RenewalPolicy), keeps using it while a renewal fails and retries with
// backoff, and reports the state of its token lifecycle through Health, so
// an operator sees a refused credential without reading logs. Every call is
// paced by the tenant's Pacer, which a 429's Retry-After holds.
//
// Every Automation API path the service uses lives in one table, Routes,
// each route marked published (with its source: the release notes or the
// tenant guide) or assumed. An operator corrects a route's method, path or
// query parameter names per tenant (ResolveRoutes, checked by CheckRoutes),
// and the client and the simulator in package techpasssim take the
// resolved table, so correcting an assumption needs no release.
//
// Members and owners are read through Get Group (the published route), or
// through the assumed members route when configured. Error answers are read
// in both shapes TechPass's gateway uses; only a sanitized message, a
// numeric code and a checked trace id are kept.
package techpass
