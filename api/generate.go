// Package api holds the HTTP handlers and types of the contract in openapi.yaml.
//
// openapi.gen.go is generated from ../openapi.yaml by oapi-codegen (models
// and the Echo ServerInterface) and committed; regenerate it with
// `go generate ./api`. A test fails when it is stale.
package api

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
