// Package tenants knows who may call the service: tenants (TechPass
// namespaces), the projects inside them, and the API keys issued to
// projects.
//
// Keys look like gk_<keyid>_<secret>, with 256 random bits of secret. Only a
// SHA-256 hash of the whole key is kept (a slow hash adds nothing for keys of
// that entropy); a presented key is found by its id and compared in constant
// time. The tenant and project a caller may act in come from its key, never
// from the request: Authorize checks the path against the key.
package tenants
