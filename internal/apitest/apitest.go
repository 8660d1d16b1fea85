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

// NewClient returns an *http.Client whose transport validates every
// exchange against openapi.yaml with kin-openapi's openapi3filter and reports
// mismatches via tb.Errorf:
//   - the route (method and path) must be in the contract;
//   - the request (path, query and header parameters, content type, body
//     schema) must conform, unless the test marks it with BadInput because it
//     sends bad input on purpose;
//   - the response (status, headers, content type, body schema) must conform.
//
// Every exchange is also recorded (operation id and status) for Exercised
// and Missing.
//
// Requests are sent with base, or http.DefaultTransport if base is nil. A
// response is returned to the caller whether or not it conforms, with its
// body intact. The client is safe for concurrent use if base is.
func NewClient(tb testing.TB, base http.RoundTripper) *http.Client {
	tb.Helper()
	return &http.Client{Transport: NewTransport(tb, base)}
}

// NewTransport is NewClient's transport, for clients built otherwise (a
// reverse proxy, a generated client's options).
func NewTransport(tb testing.TB, base http.RoundTripper) http.RoundTripper {
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
	return &transport{tb: tb, router: router, base: base}
}

// badInputKey marks a request context whose request is deliberately invalid.
type badInputKey struct{}

// BadInput returns req marked as deliberately not conforming to the
// contract (a malformed body, an out-of-range parameter, a wrong content
// type): the client does not validate it, only the answer. Use it only where
// the test means to send bad input.
func BadInput(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), badInputKey{}, true))
}

func isBadInput(req *http.Request) bool {
	v, _ := req.Context().Value(badInputKey{}).(bool)
	return v
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

// CloseIdleConnections closes base's idle connections, so that
// (*http.Client).CloseIdleConnections works through the validating client.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	route, pathParams, routeErr := t.router.FindRoute(req)
	if routeErr != nil {
		t.tb.Errorf("apitest: %s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, routeErr)
	}
	if routeErr == nil && !isBadInput(req) {
		if err := t.validateRequest(req, route, pathParams); err != nil {
			return nil, err
		}
	}

	resp, err := t.base.RoundTrip(req)
	if err != nil || routeErr != nil {
		return resp, err
	}
	record(route.Operation.OperationID, resp.StatusCode)

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

// validateRequest reports a request that does not conform to the contract.
// It reads the body and puts it back for sending.
func (t *transport) validateRequest(req *http.Request, route *routers.Route, pathParams map[string]string) error {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return fmt.Errorf("apitest: read request body: %w", err)
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	// Validate a copy, so the validator's reading of the body does not
	// consume what is sent.
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	input := &openapi3filter.RequestValidationInput{
		Request:    check,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:              true,
			AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
		},
	}
	if err := openapi3filter.ValidateRequest(req.Context(), input); err != nil {
		t.tb.Errorf("apitest: the request %s %s (%s) does not match openapi.yaml (mark it with apitest.BadInput if that is the point): %v\nbody: %s",
			req.Method, req.URL.Path, route.Operation.OperationID, err, quote(body))
	}
	return nil
}

// quote returns body for an error message, truncated.
func quote(body []byte) string {
	if len(body) > maxBodyInError {
		return fmt.Sprintf("%q… (%d bytes)", body[:maxBodyInError], len(body))
	}
	return fmt.Sprintf("%q", body)
}
