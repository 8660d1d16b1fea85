// Package client is a typed Go client for the groupgate REST API, for the
// backends of project teams and for platform tooling.
//
// client.gen.go is generated from ../openapi.yaml by oapi-codegen (models and
// the client) and committed, so the client always matches the contract the
// server is tested against; regenerate it with `go generate ./client`. A test
// fails when it is stale. client.go adds a few hand-written helpers.
//
// A backend creates one client per credential and reuses it; it is safe for
// concurrent use:
//
//	c, err := client.NewClientWithResponses("https://groupgate.example.gov.sg",
//		client.WithBearer(os.Getenv("GROUPGATE_KEY")))
//	if err != nil { ... }
//	resp, err := c.CreateGroupWithResponse(ctx, "SHIP", "MOH",
//		&client.CreateGroupParams{Prefer: ptr("wait=10")},
//		client.CreateGroupRequest{Name: "billing"})
//	if err != nil { ... } // the request was not answered
//	switch {
//	case resp.JSON201 != nil: // created within the wait
//	case resp.JSON202 != nil: // queued: poll GetOperationWithResponse(ctx, resp.JSON202.Id, ...)
//	default: // the gateway's RFC 9457 problem: 403, 409, 422, 429, ...
//		if p := client.ProblemOf(resp); p != nil {
//			return p // a *client.Problem is an error
//		}
//		return fmt.Errorf("create group: unexpected %s", resp.Status())
//	}
//
// Every *Response type has a field per documented outcome: JSON200, JSON201,
// ... for results and ApplicationproblemJSON400, ... for problems, plus the
// declared headers (Headers202.Location, Headers429.RetryAfter, ...). Writes
// are answered with an Operation to poll until its State is succeeded, failed
// or cancelled; an Idempotency-Key (CreateGroupParams.IdempotencyKeyParam)
// makes retrying a write safe.
//
// WithBearer sends an API key or a JWT of the project's registered identity
// provider; pass client.WithHTTPClient to set timeouts or a proxy.
package client

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
