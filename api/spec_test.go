package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/gentest"
)

const (
	specPath    = "../openapi.yaml"
	configPath  = "oapi-codegen.yaml"
	problemJSON = "application/problem+json"
	problemRef  = "#/components/schemas/Problem"
)

// loadSpec parses and validates the embedded contract, failing the test if it
// is not a valid OpenAPI document.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(groupgate.OpenAPISpec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	// The defaults validate every example and default against its schema and
	// every pattern against Go's regexp syntax.
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestSpecIsValid(t *testing.T) {
	doc := loadSpec(t)
	if got, want := doc.OpenAPI, "3.0.3"; got != want {
		t.Errorf("openapi version = %q, want %q", got, want)
	}
	if _, ok := doc.Components.SecuritySchemes["projectKey"]; !ok {
		t.Error("security scheme projectKey is missing")
	}
}

// TestGeneratedCodeIsCurrent fails if openapi.gen.go differs from what
// oapi-codegen (the version in go.mod) generates from openapi.yaml now.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	gentest.CheckCurrent(t, configPath, specPath, "../go.mod")
}

// operation is one operation of the contract with its location.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

func (o operation) String() string {
	return fmt.Sprintf("%s %s (%s)", o.method, o.path, o.op.OperationID)
}

func operations(doc *openapi3.T) []operation {
	var ops []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		methods := make([]string, 0)
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			ops = append(ops, operation{method: m, path: path, op: item.GetOperation(m)})
		}
	}
	return ops
}

// TestSpecConventions checks the rules every operation of the contract
// follows, so that a new operation cannot quietly break them.
func TestSpecConventions(t *testing.T) {
	doc := loadSpec(t)
	tags := map[string]bool{"groups": true, "members": true, "operations": true, "service": true, "admin": true, "webhooks": true}

	ops := operations(doc)
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	for _, o := range ops {
		t.Run(o.op.OperationID, func(t *testing.T) {
			op := o.op
			if op.OperationID == "" || op.Summary == "" || op.Description == "" {
				t.Errorf("%s: needs an operationId, a summary and a description", o)
			}
			if len(op.Tags) != 1 || !tags[op.Tags[0]] {
				t.Errorf("%s: tags = %v, want exactly one of groups, members, operations, service, admin, webhooks", o, op.Tags)
			}

			secured := isSecured(doc, op)
			takesInput := len(op.Parameters) > 0 || len(doc.Paths.Value(o.path).Parameters) > 0 || op.RequestBody != nil
			has4xx := false
			for code, ref := range op.Responses.Map() {
				status, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q: only explicit status codes are documented", o, code)
					continue
				}
				resp := ref.Value
				if status >= 400 && status < 500 || status == http.StatusInternalServerError {
					checkProblem(t, o, code, resp)
					if status < 500 {
						has4xx = true
					}
				}
				if status == http.StatusAccepted {
					checkHeader(t, o, code, resp, "Location")
				}
				for mediaType, mt := range resp.Content {
					if !hasExample(mt) {
						t.Errorf("%s: response %s %s has neither an example nor a schema example", o, code, mediaType)
					}
				}
			}

			// An operation that takes no parameters, no body and no
			// credential (the service endpoints) has no client error to
			// report; everything else must document at least one.
			if (secured || takesInput) && !has4xx {
				t.Errorf("%s: documents no 4xx problem+json response", o)
			}
			if secured {
				ref := op.Responses.Status(http.StatusUnauthorized)
				if ref == nil {
					t.Errorf("%s: requires a credential but documents no 401", o)
				} else {
					checkHeader(t, o, "401", ref.Value, "WWW-Authenticate")
				}
			}
		})
	}
}

// isSecured reports whether op requires a credential, taking the document's
// default security requirement into account.
func isSecured(doc *openapi3.T, op *openapi3.Operation) bool {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	for _, req := range reqs {
		if len(req) == 0 {
			return false // an empty requirement means anonymous access is allowed
		}
	}
	return len(reqs) > 0
}

// checkProblem checks that an error response is RFC 9457 problem+json and
// nothing else.
func checkProblem(t *testing.T, o operation, code string, resp *openapi3.Response) {
	t.Helper()
	if len(resp.Content) != 1 || resp.Content[problemJSON] == nil {
		t.Errorf("%s: response %s must have exactly the content type %s, has %v", o, code, problemJSON, mediaTypes(resp.Content))
		return
	}
	schema := resp.Content[problemJSON].Schema
	if schema == nil || schema.Ref != problemRef {
		t.Errorf("%s: response %s: schema must be %s", o, code, problemRef)
	}
}

func checkHeader(t *testing.T, o operation, code string, resp *openapi3.Response, name string) {
	t.Helper()
	h := resp.Headers[name]
	if h == nil || h.Value == nil || !h.Value.Required {
		t.Errorf("%s: response %s must have the required header %s", o, code, name)
	}
}

func hasExample(mt *openapi3.MediaType) bool {
	if mt.Example != nil || len(mt.Examples) > 0 {
		return true
	}
	return mt.Schema != nil && mt.Schema.Value != nil && mt.Schema.Value.Example != nil
}

func mediaTypes(c openapi3.Content) []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
