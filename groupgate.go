// Package groupgate is the root of groupgate, a gateway that lets the
// backends of downstream project teams manage their own identity groups in
// TechPass, GovTech Singapore's Azure-AD-based identity service.
//
// The HTTP API is defined spec-first by openapi.yaml in this directory, which
// is the contract: package api is generated from it, the server publishes it
// at /openapi.yaml and /docs, and end-to-end tests validate every response
// against it (package internal/apitest). This package exists to embed that
// one file so that all of them read the same bytes.
package groupgate

import _ "embed" // for go:embed

//go:embed openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI 3.0 document describing the HTTP API, as
// YAML. Each call returns a fresh copy that the caller may modify.
func OpenAPISpec() []byte {
	return append([]byte(nil), openAPISpec...)
}
