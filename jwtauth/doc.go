// Package jwtauth verifies JWT bearer tokens issued by a project's own
// identity provider.
//
// # Why it exists
//
// groupgate lets downstream project teams manage their TechPass groups. A team
// can call it with a groupgate API key, but many teams already run their
// automation under service accounts of their own identity provider (an Azure
// AD app registration, a Keycloak realm, a CI system's OIDC issuer). Rather
// than hand each of those a long-lived gateway secret, a tenant-admin
// registers the project's provider once — issuer, audience, and a JWKS URL or
// PEM public keys — and the team's service accounts present the short-lived
// JWTs they already obtain. Each team brings its own service accounts; the
// gateway never holds a secret of theirs, and revoking a service account at
// the provider revokes its access here.
//
// # How the server uses it
//
// The package knows nothing about projects, tenants or HTTP. The tenants
// package's Authenticator, given this package by the server,
//
//  1. reads the (untrusted) issuer with [Issuer] to find the candidate
//     providers registered for it,
//  2. calls [Verifier.Verify] with each candidate [Provider] until one
//     accepts the token, and
//  3. maps the verified token to the project whose provider accepted it,
//     with the issuer and [Claims.Subject] as the actor in the audit log.
//
// Because the project is decided by which provider accepted the token, two
// projects must not register the same issuer and audience, otherwise one
// team's tokens would open the other's project: the tenants package's Admin
// refuses such a registration.
//
// # What is checked
//
// A token is accepted only if all of these hold:
//
//   - it is at most [MaxTokenSize] bytes of compact JWS (three base64url
//     segments, strictly encoded) with no "crit" header;
//   - its "alg" is in the provider's allow-list, which can never contain
//     "none" or an HMAC algorithm, and matches the key's type (RS*/PS* need
//     RSA of at least 2048 bits, ES256 a P-256 key, ES384 a P-384 key, EdDSA
//     an Ed25519 key); a JWK that names an "alg" is used for that one only;
//   - the signature verifies under a key of the provider, chosen by "kid"
//     from its JWKS (a token without "kid" is accepted only when the JWKS
//     holds a single key) or tried against each of its PEM keys; keys named
//     inside the token ("jwk", "jku", "x5u", "x5c") are never used;
//   - "exp" is present and in the future, "nbf" and "iat" (when present) are
//     not in the future, all with the verifier's clock skew, and, if
//     [Options.MaxTokenAge] is set, "iat" is present and recent enough;
//   - "iss" equals [Provider.Issuer] exactly and "aud" contains
//     [Provider.Audience];
//   - the subject claim is a non-empty printable string, and every one of
//     [Provider.RequiredClaims] matches.
//
// # Errors
//
// Every rejection wraps [ErrInvalidToken]; the message gives a reason that is
// safe to log (it never contains the token, a signature or key material) but
// is not meant for the caller, who should only learn that the token was
// refused. When the provider's keys could not be fetched the error also wraps
// [ErrKeysUnavailable], so the server can tell an outage at the provider from
// a bad token. A provider that fails [Provider.Validate] gives an error
// wrapping [ErrInvalidProvider] instead.
//
// # JWKS caching
//
// A [Verifier] caches each JWKS URL's keys. It fetches a URL again when the
// keys are older than [Options.JWKSRefresh] (without making the request
// wait when the key it needs is already cached), or at once when a token
// names a kid it does not know, which is how key rotation at the provider is
// picked up. Whatever the reason, a URL is fetched at most once per
// [Options.JWKSMinInterval], so tokens with made-up kids cannot turn the
// gateway against the provider, and concurrent requests share one fetch. If
// a fetch fails, the keys fetched before stay in use.
//
// # Where keys may be fetched from
//
// Whoever registers a provider chooses its JWKS URL, and anyone can make
// the gateway fetch it by presenting a token with the provider's issuer. So
// the URL must be https to a public host ([Provider.Validate] refuses
// loopback, private, link-local, multicast, unspecified and reserved
// addresses, IPv4-mapped ones included, and names like "localhost"), and
// every fetch dials only public addresses, checked on the address actually
// dialled after name resolution, so that a name resolving (or rebound) to
// an internal address is refused as well; redirects are checked the same
// way. No proxy is used. A fetch reads at most [MaxJWKSSize] bytes of body
// and 64 KiB of headers, within [Options.FetchTimeout].
// [Options.AllowLoopback] admits loopback, for tests only.
package jwtauth
