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

import (
	"bytes"
	_ "embed" // for go:embed
)

//go:embed openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI 3.0 document describing the HTTP API, as
// YAML, exactly as written. Each call returns a fresh copy that the caller
// may modify.
func OpenAPISpec() []byte {
	return append([]byte(nil), openAPISpec...)
}

// PublishedSpec returns the document the server publishes at /openapi.yaml
// (and renders at /docs): OpenAPISpec without the code generator's
// extensions (x-go-*, x-oapi-codegen-*), which name Go types and mean
// nothing to the API's readers. Each is one "key: value" line of
// openapi.yaml; a test holds the published document equal to the written
// one with those keys removed. Each call returns a fresh copy.
func PublishedSpec() []byte {
	out := make([]byte, 0, len(openAPISpec))
	for line := range bytes.Lines(openAPISpec) {
		if codegenExtension(line) {
			continue
		}
		out = append(out, line...)
	}
	return out
}

// codegenExtension reports whether line holds a code generator's extension.
func codegenExtension(line []byte) bool {
	key := bytes.TrimLeft(line, " ")
	key = bytes.TrimPrefix(key, []byte("- "))
	return bytes.HasPrefix(key, []byte("x-go-")) || bytes.HasPrefix(key, []byte("x-oapi-codegen-"))
}
