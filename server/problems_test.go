package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/apitest"
)

// rawExchange writes a request as given on a new connection and reads the
// answer, so that requests no HTTP client would send can be tried.
func (g *gateway) rawExchange(request string) (*http.Response, []byte) {
	g.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		g.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		g.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp, body
}

// checkProblem checks an answer is an application/problem+json document
// valid under openapi.yaml's Problem schema, with the status given.
func checkProblem(t *testing.T, what string, status int, header http.Header, body []byte) {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json; body %q", what, ct, body)
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: body %q: %v", what, body, err)
		return
	}
	if err := apitest.Spec(t).Components.Schemas["Problem"].Value.VisitJSON(v); err != nil {
		t.Errorf("%s: body %s is not a Problem: %v", what, body, err)
	}
	if got := v.(map[string]any)["status"]; got != float64(status) {
		t.Errorf("%s: problem status %v, want %d", what, got, status)
	}
	if header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: no security headers on the error", what)
	}
}

// TestErrorsAreProblems checks that every error the server can shape is an
// application/problem+json document, and the one net/http writes itself (a
// request it cannot parse) is what the README says.
func TestErrorsAreProblems(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	key := g.keys["SHIP/MOH"]
	get := func(path string, headers string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key + "\r\n" + headers + "Connection: close\r\n\r\n"
	}
	big := func(n int) string { return "X-Filler: " + strings.Repeat("a", n) + "\r\n" }
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"unknown route", get("/v1/nowhere", ""), http.StatusNotFound},
		{"unknown file of the docs page", get("/docs/nowhere.js", ""), http.StatusNotFound},
		{"method not allowed", "PUT /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", http.StatusMethodNotAllowed},
		{"body over the limit", "POST " + groupsPath("SHIP", "MOH") + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
			"\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n{", http.StatusRequestEntityTooLarge},
		{"headers just over the documented 32 KiB", get(groupsPath("SHIP", "MOH"), big(32<<10)), http.StatusRequestHeaderFieldsTooLarge},
		{"headers over 32 KiB in many fields", get(groupsPath("SHIP", "MOH"), strings.Repeat(big(1000), 40)), http.StatusRequestHeaderFieldsTooLarge},
		{"headers over 32 KiB on an unknown route", get("/nowhere", big(40<<10)), http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		resp, body := g.rawExchange(tt.request)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d; body %q", tt.name, resp.StatusCode, tt.status, body)
			continue
		}
		checkProblem(t, tt.name, tt.status, resp.Header, body)
	}

	// Just under the limit is served.
	resp, body := g.rawExchange(get(groupsPath("SHIP", "MOH"), big(30<<10)))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("headers under 32 KiB: %d %s", resp.StatusCode, body)
	}
	// What net/http refuses before any handler runs is plain text, as the
	// README says: a header with a control byte, headers far over the limit.
	for name, req := range map[string]string{
		"control byte in a header": get("/healthz", "X-Bad: a\x01b\r\n"),
		"headers over 64 KiB":      get("/healthz", big(80<<10)),
	} {
		resp, body := g.rawExchange(req)
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: %d %q", name, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type %q; the README documents net/http's text/plain here", name, ct)
		}
	}
	if got := fmt.Sprint(g.logs.String()); strings.Contains(got, strings.Repeat("a", 100)) {
		t.Error("the oversized header reached the log")
	}
}
