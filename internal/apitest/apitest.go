package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/groupgate/groupgate"
)

// maxBodyInError bounds how much of a response body an error message quotes.
const maxBodyInError = 2048

// Spec returns the contract, parsed from the embedded openapi.yaml and
// validated. Each call returns a new document that the caller may modify. It
// stops the test if the contract does not load or validate.
func Spec(tb testing.TB) *openapi3.T {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(groupgate.OpenAPISpec())
	if err != nil {
		tb.Fatalf("apitest: load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("apitest: openapi.yaml is invalid: %v", err)
	}
	return doc
}

// NewClient returns an *http.Client whose transport validates every response
// (status, headers, content type, body schema) against openapi.yaml with
// kin-openapi's openapi3filter and reports mismatches via tb.Errorf. Requests
// are not validated (tests deliberately send bad input), but the route must
// exist in the spec: a request to an undocumented path is a test failure.
//
// Requests are sent with base, or http.DefaultTransport if base is nil. A
// response is returned to the caller whether or not it conforms, with its
// body intact. The client is safe for concurrent use if base is.
func NewClient(tb testing.TB, base http.RoundTripper) *http.Client {
	tb.Helper()
	registerBodyDecoders()

	doc := Spec(tb)
	// Match any scheme, host and port: the server under test listens on an
	// address chosen at run time.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		tb.Fatalf("apitest: build router: %v", err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: &transport{tb: tb, router: router, base: base}}
}

var registerOnce sync.Once

// registerBodyDecoders makes kin-openapi decode the contract's non-JSON
// bodies as the strings the contract says they are. application/problem+json
// needs nothing: kin-openapi decodes it as JSON already.
func registerBodyDecoders() {
	registerOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	})
}

// transport validates responses from base against router's document.
type transport struct {
	tb     testing.TB
	router routers.Router
	base   http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	route, pathParams, routeErr := t.router.FindRoute(req)
	if routeErr != nil {
		t.tb.Errorf("apitest: %s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, routeErr)
	}

	resp, err := t.base.RoundTrip(req)
	if err != nil || routeErr != nil {
		return resp, err
	}

	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("apitest: read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // an undocumented status is a mismatch
		MultiError:            true, // report every mismatch, not the first
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		// The message names the schema and quotes the body; dumping both
		// again for every mismatch buries the reasons.
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: pathParams,
			Route:      route,
			Options:    opts,
		},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), input); err != nil {
		t.tb.Errorf("apitest: %s %s (%s) answered %d, which does not match openapi.yaml: %v\nbody: %s",
			req.Method, req.URL.Path, route.Operation.OperationID, resp.StatusCode, err, quote(body))
	}
	return resp, nil
}

// quote returns body for an error message, truncated.
func quote(body []byte) string {
	if len(body) > maxBodyInError {
		return fmt.Sprintf("%q… (%d bytes)", body[:maxBodyInError], len(body))
	}
	return fmt.Sprintf("%q", body)
}
