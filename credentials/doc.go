// Package credentials loads the tenants' upstream (TechPass) credentials and
// keeps them current. A tenant's client credential (a client secret or a
// certificate bundle) and its namespace API key are read from files a secret
// manager mounts, from environment variables, or from values sealed in the
// store. They are loaded when the tenant's runtime is built (a missing or
// unusable one stops it), then checked every credentials.check_interval and
// at SIGHUP (Watch): a changed credential is read, validated, and swapped
// in, while in-flight calls finish with the values they already hold. A
// changed credential that is unusable (empty, a key that does not match its
// certificate, a half-written PEM) is not swapped in: the previous value
// stays in use and the problem is logged, until a later check sees a usable
// one. A rotation tells the TechPass client, which renews its token with the
// new credential at the next call (at once, on SIGHUP).
//
// The client credential is a certificate bundle when it holds PEM (a
// certificate, and its RSA private key unless a key file is configured):
// then the client authenticates with certificate client assertions, as
// TechPass recommends. Anything else is a client secret. So rotating from a
// secret to a certificate needs no restart either.
//
// Webhook secrets are read through the same Source, at each delivery.
//
// Only this package and package techpass ever hold an upstream credential
// value: logs and /readyz name credentials by kind, source and age, never by
// value.
package credentials
