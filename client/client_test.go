package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/groupgate/groupgate/client"
	"github.com/groupgate/groupgate/internal/gentest"
)

const (
	specPath   = "../openapi.yaml"
	configPath = "oapi-codegen.yaml"
)

// TestGeneratedCodeIsCurrent fails if client.gen.go differs from what
// oapi-codegen (the version in go.mod) generates from openapi.yaml now.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	gentest.CheckCurrent(t, configPath, specPath, "../go.mod")
}

// fakeGateway answers every request with status, content type and body, and
// records the Authorization header it was sent.
func fakeGateway(t *testing.T, status int, ctype, body string) (*httptest.Server, *string) {
	t.Helper()
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &auth
}

func TestWithBearer(t *testing.T) {
	srv, auth := fakeGateway(t, http.StatusOK, "application/json", `{"groups":[]}`)
	c, err := client.NewClientWithResponses(srv.URL, client.WithBearer("gk_abc_secret"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.ListGroupsWithResponse(t.Context(), "SHIP", "MOH", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *auth != "Bearer gk_abc_secret" {
		t.Errorf("Authorization %q, want Bearer gk_abc_secret", *auth)
	}
	if resp.JSON200 == nil || client.IsProblem(resp) || client.ProblemOf(resp) != nil {
		t.Errorf("a 200 list: JSON200 %v, IsProblem %v", resp.JSON200, client.IsProblem(resp))
	}
}

func TestProblemOf(t *testing.T) {
	const forbidden = `{"type":"about:blank","title":"Forbidden","status":403,"detail":"this key belongs to SHIP/MOH"}`
	cases := []struct {
		name          string
		status        int
		ctype, body   string
		want          string // the problem's Error(), or "" for none
		documentedFor bool   // whether listGroups documents the status
	}{
		{"documented status", 403, "application/problem+json", forbidden, "403 Forbidden: this key belongs to SHIP/MOH", true},
		{"media type parameters", 403, "application/problem+json; charset=utf-8", forbidden, "403 Forbidden: this key belongs to SHIP/MOH", true},
		{"undocumented status", 413, "application/problem+json", `{"title":"Request Entity Too Large","status":413}`, "413 Request Entity Too Large", false},
		{"plain JSON error", 403, "application/json", forbidden, "", true},
		{"not JSON", 502, "application/problem+json", `<html>bad gateway</html>`, "", false},
		{"success", 200, "application/json", `{"groups":[]}`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fakeGateway(t, tc.status, tc.ctype, tc.body)
			c, err := client.NewClientWithResponses(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.ListGroupsWithResponse(t.Context(), "SHIP", "MOH", nil)
			if err != nil {
				t.Fatal(err)
			}
			p := client.ProblemOf(resp)
			if got := client.IsProblem(resp); got != (tc.ctype != "application/json" && tc.status >= 400) {
				t.Errorf("IsProblem = %v", got)
			}
			switch {
			case tc.want == "" && p != nil:
				t.Fatalf("ProblemOf = %+v, want nil", p)
			case tc.want == "":
				return
			case p == nil:
				t.Fatalf("ProblemOf = nil, want %q", tc.want)
			}
			if p.Error() != tc.want {
				t.Errorf("Error() = %q, want %q", p.Error(), tc.want)
			}
			// It agrees with the field generated for a documented status.
			if tc.documentedFor && (resp.ApplicationproblemJSON403 == nil || resp.ApplicationproblemJSON403.Error() != tc.want) {
				t.Errorf("ApplicationproblemJSON403 = %+v", resp.ApplicationproblemJSON403)
			}
			var target *client.Problem
			if err := fmt.Errorf("list groups: %w", p); !errors.As(err, &target) || target.Status != int32(tc.status) {
				t.Errorf("errors.As on a wrapped problem: %v", target)
			}
		})
	}
}
