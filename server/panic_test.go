package server

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
)

// TestPanicIsAProblem runs the real server with one more route that
// panics: the caller gets a 500 problem saying only "internal error", and
// the server keeps serving.
func TestPanicIsAProblem(t *testing.T) {
	srv := startWithPanic(t, http.MethodGet, "/panic")

	for _, path := range []string{"/panic", "/healthz"} {
		resp, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/healthz" {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("after the panic: %d %s", resp.StatusCode, body)
			}
			continue
		}
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(body, &p) != nil || p.Status != 500 || p.Detail != "internal error" || strings.Contains(string(body), "secret") {
			t.Fatalf("panic answered %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// startWithPanic runs the real server (tenant SHIP, project MOH, on the
// built-in simulator) with one more route, method path, whose handler
// panics.
func startWithPanic(t *testing.T, method, path string) *Server {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowHTTP = true
	cfg.StorePath = filepath.Join(t.TempDir(), "groupgate.db")
	cfg.Tenants = []config.TenantConfig{{Name: "SHIP", Projects: []config.ProjectConfig{{Name: "MOH"}}}}
	srv, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.http.Handler.(*echo.Echo).Add(method, path, func(echo.Context) error { panic("secret internals") })
	testkit.Serve(t, srv.Run)
	return srv
}
