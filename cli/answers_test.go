package cli_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate/cli"
	"github.com/groupgate/groupgate/internal/apitest"
)

// TestUnexpectedAnswers: what the real server never answers, but a proxy in
// front of it may. A 2xx without the documented JSON is exit 1, never a
// crash; text from the server cannot drive the terminal. (A fake: the real
// server answers none of this.)
func TestUnexpectedAnswers(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html>login</html>"))
	}))
	defer html.Close()
	g := &gateway{url: html.URL, http: html.Client()}
	env := map[string]string{"GROUPGATE_KEY": "gk_0123456789abcdef0123_unexpectedsecret", "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}
	for _, args := range [][]string{
		{"groups", "list"}, {"groups", "get", "x"}, {"groups", "create", "x", "--wait"}, {"groups", "members", "add", "x", "u"},
		{"operations", "wait", "op_x"}, {"queue"}, {"keys", "issue", "--name", "x"}, {"keys", "list"}, {"tenants", "create", "X"},
		{"projects", "create", "X"}, {"audit"},
	} {
		r := g.run(t, env, args...)
		want(t, r, cli.ExitError, args...)
		if !strings.Contains(r.stderr, "unexpected answer: 200 text/html") || r.stdout != "" {
			t.Errorf("%q: %s", args, r)
		}
	}

	// JSON with a 2xx the contract does not document for the call.
	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNonAuthoritativeInfo)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer odd.Close()
	g = &gateway{url: odd.URL, http: odd.Client()}
	for _, args := range [][]string{{"groups", "get", "x"}, {"groups", "delete", "x"}, {"keys", "issue", "--name", "x"}} {
		r := g.run(t, env, args...)
		want(t, r, cli.ExitError, args...)
		if !strings.Contains(r.stderr, "unexpected answer: 203 application/json") {
			t.Errorf("%q: %s", args, r)
		}
	}

	// Escape sequences, tabs and line breaks in server text are defused.
	evil := "a\x1b[2J\x1b]0;title\x07b\tc\nd\re"
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/groups/x") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"x","fullName":"SHIP:MOH:x","state":"active","description":"` + jsonEscape(evil) + `","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}`))
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Bad` + jsonEscape(evil) + `","status":400,"detail":"` + jsonEscape(evil) + `"}`))
	}))
	defer hostile.Close()
	g = &gateway{url: hostile.URL, http: hostile.Client()}
	r := g.run(t, env, "groups", "get", "x")
	want(t, r, cli.ExitOK, "groups get")
	if !strings.Contains(r.stdout, "ab c d e\n") || strings.ContainsAny(r.stdout, "\x1b\x07\r") {
		t.Errorf("table: %q", r.stdout)
	}
	r = g.run(t, env, "groups", "list")
	want(t, r, cli.ExitError, "groups list")
	if !strings.Contains(r.stderr, "Badab c d e (400): ab c d e") || strings.ContainsAny(r.stderr, "\x1b\x07\r\t") {
		t.Errorf("problem: %q", r.stderr)
	}
}

func jsonEscape(s string) string {
	r := strings.NewReplacer("\x1b", `\u001b`, "\x07", `\u0007`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
	return r.Replace(s)
}

// TestTransportSafety: the credential does not follow a redirect, and goes
// over plain http only to this machine unless --insecure-http says so.
func TestTransportSafety(t *testing.T) {
	const key = "gk_0123456789abcdef0123_redirectsecret"
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), key) {
			leaked.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"groups":[]}`))
	}))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/v1/tenants/SHIP/projects/MOH/groups", http.StatusFound))
	defer redirect.Close()
	env := map[string]string{"GROUPGATE_KEY": key, "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}
	g := &gateway{url: redirect.URL, http: &http.Client{}}
	r := g.run(t, env, "groups", "list")
	want(t, r, cli.ExitError, "a redirect")
	if leaked.Load() || !strings.Contains(r.stderr, "302") || !strings.Contains(r.stderr, "redirects are not followed") {
		t.Errorf("redirect (key sent on: %v): %s", leaked.Load(), r)
	}

	// Plain http to a name that is not this machine: refused, unless
	// --insecure-http. The transport dials the real gateway whatever the
	// name, so that the request can succeed without a network.
	real := startGateway(t, 20*time.Millisecond)
	addr := strings.TrimPrefix(real.url, "http://")
	dial := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	far := &gateway{url: "http://gateway.example.com", http: apitest.NewClient(t, dial), secrets: real.secrets}
	p := real.project()
	r = far.run(t, p, "groups", "list")
	want(t, r, cli.ExitUsage, "plain http")
	if !strings.Contains(r.stderr, "without TLS") || !strings.Contains(r.stderr, "--insecure-http") {
		t.Errorf("plain http: %s", r)
	}
	want(t, far.run(t, p, "groups", "list", "--insecure-http"), cli.ExitOK, "--insecure-http")
}
