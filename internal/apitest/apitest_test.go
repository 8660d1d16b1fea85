package apitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/apitest"
)

// recordingTB is a testing.TB whose Errorf records the message instead of
// failing the test, so that the tests below can check what NewClient reports.
// Everything else (Helper, Fatalf, Cleanup, ...) goes to the real test.
type recordingTB struct {
	testing.TB

	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

const (
	groupPath = "/v1/tenants/SHIP/projects/MOH/groups/billing"
	listPath  = "/v1/tenants/SHIP/projects/MOH/groups"
	opPath    = "/v1/operations/op_7k2m4q6s5u2w4y6a3c5e7g2j4l"

	groupJSON = `{"name":"billing","fullName":"SHIP:MOH:billing","description":"","state":"active",` +
		`"createdAt":"2026-03-02T09:15:00Z","updatedAt":"2026-03-02T09:15:03Z"}`
	operationJSON = `{"id":"op_7k2m4q6s5u2w4y6a3c5e7g2j4l","kind":"group.create","state":"queued",` +
		`"tenant":"SHIP","project":"MOH","group":"billing","fullName":"SHIP:MOH:billing","attempts":0,` +
		`"createdAt":"2026-03-02T09:15:00Z","updatedAt":"2026-03-02T09:15:00Z"}`
	problemJSON = `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"a valid project API key is required"}`
)

// reply is what the fake server answers.
type reply struct {
	status  int
	header  map[string]string
	body    string
	ctype   string
	noCType bool
}

func (r reply) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	for k, v := range r.header {
		w.Header().Set(k, v)
	}
	if !r.noCType {
		ctype := r.ctype
		if ctype == "" {
			ctype = "application/json"
		}
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.body)
}

func TestNewClient(t *testing.T) {
	location := map[string]string{"Location": "/v1/operations/op_7k2m4q6s5u2w4y6a3c5e7g2j4l"}
	etag := map[string]string{"ETag": `"r1"`}
	tests := []struct {
		name         string
		method, path string
		body         string
		// bad marks the request with BadInput.
		bad   bool
		reply reply
		// wantErr is a substring of the single error expected; empty means
		// the exchange must conform.
		wantErr string
	}{
		{
			name: "conforming group", method: http.MethodGet, path: groupPath,
			reply: reply{status: 200, header: etag, body: groupJSON},
		},
		{
			name: "group without its ETag", method: http.MethodGet, path: groupPath,
			reply:   reply{status: 200, body: groupJSON},
			wantErr: "ETag",
		},
		{
			name: "content type with parameters", method: http.MethodGet, path: groupPath,
			reply: reply{status: 200, header: etag, body: groupJSON, ctype: "application/json; charset=UTF-8"},
		},
		{
			name: "conforming list", method: http.MethodGet, path: listPath,
			reply: reply{status: 200, body: `{"groups":[` + groupJSON + `]}`},
		},
		{
			name: "conforming accepted create", method: http.MethodPost, path: listPath, body: `{"name":"billing"}`,
			reply: reply{status: 202, header: location, body: operationJSON},
		},
		{
			name: "conforming problem", method: http.MethodGet, path: opPath,
			reply: reply{status: 401, header: map[string]string{"WWW-Authenticate": `Bearer realm="groupgate"`},
				ctype: "application/problem+json", body: problemJSON},
		},
		{
			// A request marked BadInput is not validated: a bad tenant
			// still routes, and a documented 400 answer conforms.
			name: "marked bad input is not checked", method: http.MethodPost, path: "/v1/tenants/x/projects/MOH/groups", body: `{`, bad: true,
			reply: reply{status: 400, ctype: "application/problem+json",
				body: `{"title":"Bad Request","status":400,"detail":"the request body is not valid JSON"}`},
		},
		{
			name: "unmarked bad body", method: http.MethodPost, path: listPath, body: `{"name":"billing","colour":"red"}`,
			reply:   reply{status: 202, header: location, body: operationJSON},
			wantErr: "the request POST",
		},
		{
			name: "unmarked bad path parameter", method: http.MethodGet, path: "/v1/tenants/x/projects/MOH/groups",
			reply:   reply{status: 200, body: `{"groups":[]}`},
			wantErr: `parameter "tenant"`,
		},
		{
			name: "unmarked bad query parameter", method: http.MethodGet, path: listPath + "?limit=0",
			reply:   reply{status: 200, body: `{"groups":[]}`},
			wantErr: `parameter "limit"`,
		},
		{
			name: "spec as yaml", method: http.MethodGet, path: "/openapi.yaml",
			reply: reply{status: 200, ctype: "application/yaml", body: string(groupgate.OpenAPISpec())},
		},
		{
			name: "docs as html", method: http.MethodGet, path: "/docs",
			reply: reply{status: 200, ctype: "text/html; charset=utf-8", body: "<!DOCTYPE html><title>docs</title>"},
		},
		{
			name: "not ready", method: http.MethodGet, path: "/readyz",
			reply: reply{status: 503, body: `{"status":"unavailable","checks":{"store":{"status":"failing","detail":"closed"}}}`},
		},
		{
			name: "group without fullName", method: http.MethodGet, path: groupPath,
			reply:   reply{status: 200, header: etag, body: `{"name":"billing","description":"","state":"active","createdAt":"2026-03-02T09:15:00Z","updatedAt":"2026-03-02T09:15:03Z"}`},
			wantErr: "fullName",
		},
		{
			name: "group with unknown state", method: http.MethodGet, path: groupPath,
			reply:   reply{status: 200, header: etag, body: strings.Replace(groupJSON, `"active"`, `"gone"`, 1)},
			wantErr: "state",
		},
		{
			name: "group with bad timestamp", method: http.MethodGet, path: groupPath,
			reply:   reply{status: 200, body: strings.Replace(groupJSON, `2026-03-02T09:15:00Z`, `yesterday`, 1)},
			wantErr: "createdAt",
		},
		{
			name: "accepted without an operation", method: http.MethodPost, path: listPath, body: `{"name":"billing"}`,
			reply:   reply{status: 202, header: location, body: `{}`},
			wantErr: "does not match openapi.yaml",
		},
		{
			name: "accepted without Location", method: http.MethodDelete, path: groupPath,
			reply:   reply{status: 202, body: strings.Replace(operationJSON, "group.create", "group.delete", 1)},
			wantErr: "Location",
		},
		{
			name: "accepted without a body", method: http.MethodPost, path: listPath, body: `{"name":"billing"}`,
			reply:   reply{status: 202, header: location, noCType: true},
			wantErr: "does not match openapi.yaml",
		},
		{
			name: "undocumented status", method: http.MethodGet, path: groupPath,
			reply:   reply{status: http.StatusTeapot, ctype: "application/problem+json", body: `{"title":"I'm a teapot","status":418}`},
			wantErr: "status is not supported",
		},
		{
			name: "problem as plain json", method: http.MethodGet, path: groupPath,
			reply:   reply{status: 404, body: `{"title":"Not Found","status":404}`},
			wantErr: "application/json",
		},
		{
			name: "unauthorized without WWW-Authenticate", method: http.MethodGet, path: groupPath,
			reply:   reply{status: 401, ctype: "application/problem+json", body: problemJSON},
			wantErr: "WWW-Authenticate",
		},
		{
			name: "undocumented path", method: http.MethodGet, path: "/v1/nowhere",
			reply:   reply{status: 404, ctype: "application/problem+json", body: `{"title":"Not Found","status":404}`},
			wantErr: "is not in openapi.yaml",
		},
		{
			name: "undocumented method", method: http.MethodPut, path: groupPath,
			reply:   reply{status: 405, ctype: "application/problem+json", body: `{"title":"Method Not Allowed","status":405}`},
			wantErr: "is not in openapi.yaml",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.reply)
			defer srv.Close()

			rec := &recordingTB{TB: t}
			client := apitest.NewClient(rec, srv.Client().Transport)

			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.bad {
				req = apitest.BadInput(req)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()

			// The caller still gets the response, body intact.
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.reply.status || string(body) != tt.reply.body {
				t.Errorf("response = %d %q, want %d %q", resp.StatusCode, body, tt.reply.status, tt.reply.body)
			}

			errs := rec.errors()
			switch {
			case tt.wantErr == "" && len(errs) > 0:
				t.Errorf("conforming exchange reported:\n%s", strings.Join(errs, "\n"))
			case tt.wantErr != "" && len(errs) != 1:
				t.Errorf("got %d errors, want 1 containing %q:\n%s", len(errs), tt.wantErr, strings.Join(errs, "\n"))
			case tt.wantErr != "" && !strings.Contains(errs[0], tt.wantErr):
				t.Errorf("error does not mention %q:\n%s", tt.wantErr, errs[0])
			}
		})
	}
}

// TestNewClientDefaultTransport checks that a nil base uses
// http.DefaultTransport.
func TestNewClientDefaultTransport(t *testing.T) {
	srv := httptest.NewServer(reply{status: 200, body: `{"status":"ok"}`})
	defer srv.Close()

	rec := &recordingTB{TB: t}
	resp, err := apitest.NewClient(rec, nil).Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if errs := rec.errors(); len(errs) > 0 {
		t.Errorf("conforming exchange reported:\n%s", strings.Join(errs, "\n"))
	}
}

func TestSpec(t *testing.T) {
	a, b := apitest.Spec(t), apitest.Spec(t)
	if a == b {
		t.Fatal("Spec returned the same document twice; callers may modify it")
	}
	if a.Info.Title != "groupgate: TechPass group gateway" {
		t.Errorf("title = %q", a.Info.Title)
	}
}

// TestOpenAPISpecReturnsCopy checks that callers of groupgate.OpenAPISpec
// cannot change what later callers see.
func TestOpenAPISpecReturnsCopy(t *testing.T) {
	a := groupgate.OpenAPISpec()
	want := string(a)
	a[0] = '#'
	if got := string(groupgate.OpenAPISpec()); got != want {
		t.Fatal("modifying the result of OpenAPISpec changed the embedded document")
	}
}

// TestRequestBodyIsSent checks that validating a request leaves its body
// intact for the server.
func TestRequestBodyIsSent(t *testing.T) {
	const body = `{"name":"billing","description":"Billing team"}`
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		reply{status: 202, header: map[string]string{"Location": "/v1/operations/op_7k2m4q6s5u2w4y6a3c5e7g2j4l"}, body: operationJSON}.ServeHTTP(w, r)
	}))
	defer srv.Close()
	rec := &recordingTB{TB: t}
	resp, err := apitest.NewClient(rec, nil).Post(srv.URL+listPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got != body {
		t.Errorf("server got %q, want %q", got, body)
	}
	if errs := rec.errors(); len(errs) > 0 {
		t.Errorf("conforming exchange reported:\n%s", strings.Join(errs, "\n"))
	}
}

// TestMissing checks that Missing counts documented statuses from the
// contract and keeps its exemptions honest.
func TestMissing(t *testing.T) {
	doc := apitest.Spec(t)
	srv := httptest.NewServer(reply{status: 200, body: `{"status":"ok"}`})
	defer srv.Close()
	resp, err := apitest.NewClient(t, nil).Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if !apitest.Exercised("getHealth", 200) {
		t.Fatal("getHealth 200 not recorded")
	}
	missing := apitest.Missing(doc, map[string]string{
		"getReadiness 503": "reason",
		"getHealth 200":    "reason",
		"getHealth 418":    "reason",
	})
	has := func(s string) bool {
		for _, m := range missing {
			if m == s {
				return true
			}
		}
		return false
	}
	for _, want := range []string{
		"getBackup 403",
		"getHealth 200 is exempt but was exercised: drop the exemption",
		"getHealth 418 is exempt but openapi.yaml does not document it",
	} {
		if !has(want) {
			t.Errorf("Missing does not list %q", want)
		}
	}
	for _, not := range []string{"getReadiness 503", "getHealth 200"} {
		if has(not) {
			t.Errorf("Missing lists %q", not)
		}
	}
}
