// Package tenants knows who may call the service and what each caller may
// do: tenants (TechPass namespaces), the projects inside them, the API keys
// issued to operators, tenant-admins and projects, and the identity
// providers whose JWTs a project accepts. Admin holds the rules for changing
// them, Store keeps them, and Authenticator turns a presented credential
// into a Principal.
//
// Keys look like gk_<keyid>_<secret>, with 256 random bits of secret. Only a
// SHA-256 hash of the whole key is kept (a slow hash adds nothing for keys of
// that entropy); a presented key is found by its id and compared in constant
// time. The tenant and project a caller may act in come from its credential,
// never from the request: RequireProject, RequireTenantAdmin,
// RequireOperator and RequireIssue check what the request names against the
// Principal.
package tenants
