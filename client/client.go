package client

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
)

// ProblemMediaType is the media type of every error the gateway answers
// (RFC 9457).
const ProblemMediaType = "application/problem+json"

// WithBearer returns a ClientOption that sends key, an API key
// (gk_<keyid>_<secret>) or a JWT, as the bearer credential on every request.
func WithBearer(key string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+key)
		return nil
	})
}

// Response is what every generated *Response type (CreateGroupResponse,
// GetOperationResponse, ...) provides.
type Response interface {
	StatusCode() int
	ContentType() string
	GetBody() []byte
}

// IsProblem reports whether resp is an error answer in the gateway's problem
// format: a 4xx or 5xx status with an application/problem+json body.
func IsProblem(resp Response) bool {
	if resp.StatusCode() < 400 {
		return false
	}
	mt, _, err := mime.ParseMediaType(resp.ContentType())
	return err == nil && mt == ProblemMediaType
}

// ProblemOf returns the problem the gateway answered instead of a result, or
// nil if resp is not a problem (see IsProblem) or its body is not one. resp
// must not be a nil pointer.
//
// For the statuses an operation documents, the generated
// ApplicationproblemJSONnnn field holds the same value. ProblemOf decodes the
// body instead, so that it also covers answers no single operation
// documents: an unknown route (404), a wrong method (405), a body over the
// size limit (413) or a server that is shutting down (503).
func ProblemOf(resp Response) *Problem {
	if !IsProblem(resp) {
		return nil
	}
	var p Problem
	if err := json.Unmarshal(resp.GetBody(), &p); err != nil || p.Status == 0 {
		return nil
	}
	return &p
}

// Error formats the problem as "status title: detail", so that a *Problem
// can be returned as an error and recovered with errors.As.
func (p *Problem) Error() string {
	s := strconv.Itoa(int(p.Status)) + " " + p.Title
	if p.Detail != nil && *p.Detail != "" {
		s += ": " + *p.Detail
	}
	return s
}
