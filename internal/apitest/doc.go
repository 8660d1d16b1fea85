// Package apitest checks the service against its contract, openapi.yaml, in
// end-to-end tests.
//
// NewClient returns an *http.Client whose every response is validated against
// the contract: status code, headers, content type and body schema. Tests
// that drive the real server through it need no assertions of their own to
// catch a handler that drifts from openapi.yaml, and the contract is exercised
// by every test rather than by a separate suite that can fall behind.
//
// Requests are deliberately not validated, so tests can send bad input and
// check the answer; but the route itself (method and path) must be in the
// contract.
//
// kin-openapi decodes response bodies with a process-wide registry of body
// decoders. NewClient registers, once per process, plain-string decoders for
// application/yaml and text/html, which the contract describes as strings
// (the default application/yaml decoder would parse the document). Only test
// binaries import this package, so production code is unaffected.
package apitest
