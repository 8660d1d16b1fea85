package console

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/groupgate/groupgate/tenants"
)

// principalKey holds the principal of a console session in the context of
// an in-process API request. Only inProcess.RoundTrip puts it there, and
// only this process can put a value in a request's context, so a request
// from the network never carries one.
type principalKey struct{}

// callerKey holds, in a page request's context, whom the console's API
// requests for that page act as (see viewer.ctx).
type callerKey struct{}

// caller is whom an API request acts as and the page request it serves.
type caller struct {
	p         tenants.Principal
	requestID string
}

// requestIDKey holds the page request's X-Request-Id.
type requestIDKey struct{}

// PrincipalFrom returns the session principal of one of the console's
// in-process API requests. The API's authentication uses it in place of a
// bearer key.
func PrincipalFrom(ctx context.Context) (tenants.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(tenants.Principal)
	return p, ok && p.Role != ""
}

// inProcess is an http.RoundTripper that serves requests with h in this
// process, never over the network, as the caller in the request's context
// (a request without one is sent without a principal, and the API refuses
// it), with the page request's X-Request-Id.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if c, ok := req.Context().Value(callerKey{}).(caller); ok {
		req = req.WithContext(context.WithValue(req.Context(), principalKey{}, c.p))
		if c.requestID != "" {
			req.Header.Set("X-Request-Id", c.requestID)
		}
	}
	w := &recorder{header: http.Header{}}
	// Served requests own their body; the handler may read it.
	t.h.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()),
		Request: req,
	}, nil
}

// recorder collects a handler's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// Flush lets handlers that flush work in process.
func (r *recorder) Flush() {}
