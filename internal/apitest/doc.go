// Package apitest checks the service against its contract, openapi.yaml, in
// end-to-end tests.
//
// NewClient returns an *http.Client whose every response is validated against
// the contract: status code, headers, content type and body schema. Tests
// that drive the real server through it need no assertions of their own to
// catch a handler that drifts from openapi.yaml, and the contract is exercised
// by every test rather than by a separate suite that can fall behind.
//
// Requests are validated too (parameters, content type, body), except those
// a test marks with BadInput because it sends bad input on purpose; the route
// itself (method and path) must always be in the contract.
//
// Every exchange is recorded by operation id and status, process-wide, so a
// package can prove with Missing that its tests exercised every status the
// contract documents for every operation.
//
// kin-openapi decodes response bodies with a process-wide registry of body
// decoders. NewClient registers, once per process, plain-string decoders for
// application/yaml and text/html, which the contract describes as strings
// (the default application/yaml decoder would parse the document). Only test
// binaries import this package, so production code is unaffected.
package apitest
