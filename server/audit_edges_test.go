package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/config"
)

// TestRefusedWritesAreAudited sends writes that are answered before their
// handler runs, or by no handler at all: a body over the limit (413),
// headers over the limit (431) and a handler that panics (500). Each one is
// in the audit log with its request id, as failed.
func TestRefusedWritesAreAudited(t *testing.T) {
	// The same route as createTenant (audited as tenant.create), with a
	// handler that panics.
	srv := startWithPanic(t, http.MethodPost, "/v1/tenants")

	post := func(path, id, headers, body string, length int) string {
		return "POST " + path + " HTTP/1.1\r\nHost: gw\r\nX-Request-Id: " + id + "\r\nContent-Type: application/json\r\n" +
			headers + "Content-Length: " + strconv.Itoa(length) + "\r\nConnection: close\r\n\r\n" + body
	}
	tests := []struct {
		id, request string
		status      int
		action      string
	}{
		{"edge-413", post("/v1/tenants/SHIP/projects", "edge-413", "", "{", 2_000_000), http.StatusRequestEntityTooLarge, "project.create"},
		{"edge-431", post("/v1/tenants/SHIP/projects", "edge-431", "X-Filler: "+strings.Repeat("a", 33<<10)+"\r\n", "{}", 2),
			http.StatusRequestHeaderFieldsTooLarge, "project.create"},
		{"edge-panic", post("/v1/tenants", "edge-panic", "", "{}", 2), http.StatusInternalServerError, "tenant.create"},
	}
	for _, tt := range tests {
		if got := rawStatus(t, srv.URL(), tt.request); got != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.id, got, tt.status)
		}
	}
	page, err := srv.audit.Query(context.Background(), audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	byRequest := map[string]audit.Entry{}
	for _, e := range page.Entries {
		byRequest[e.RequestID] = e
	}
	for _, tt := range tests {
		e, ok := byRequest[tt.id]
		if !ok {
			t.Errorf("%s: no audit entry", tt.id)
			continue
		}
		if e.Action != tt.action || e.Status != tt.status || e.Outcome != audit.Failed || e.Actor != "anonymous" {
			t.Errorf("%s: audit entry %+v, want action %s, status %d, failed, anonymous", tt.id, e, tt.action, tt.status)
		}
		if strings.Contains(e.Detail, "secret") {
			t.Errorf("%s: the panic's value reached the audit entry: %q", tt.id, e.Detail)
		}
	}
}

// TestAuditSurvivesAnUnrecoveredPanic checks auditCalls on its own: a
// panic no recover middleware turned into an error still leaves a failed
// entry, and goes on panicking.
func TestAuditSurvivesAnUnrecoveredPanic(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowHTTP = true
	cfg.StorePath = filepath.Join(t.TempDir(), "groupgate.db")
	srv, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := echo.New()
	e.Use(srv.auditCalls(map[string]string{"POST /v1/tenants/:tenant": "thing.test"}))
	e.POST("/v1/tenants/:tenant", func(echo.Context) error { panic("boom") })
	req := httptest.NewRequest(http.MethodPost, "/v1/tenants/ship", nil)
	req.Header.Set(echo.HeaderXRequestID, "unrecovered")
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the handler's panic to go on", v)
			}
		}()
		e.ServeHTTP(httptest.NewRecorder(), req)
	}()
	page, err := srv.audit.Query(context.Background(), audit.Query{Filter: audit.Filter{Action: "thing.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].Outcome != audit.Failed || page.Entries[0].Status != http.StatusInternalServerError ||
		page.Entries[0].Tenant != "SHIP" {
		t.Fatalf("audit entries %+v, want one failed with status 500 for tenant SHIP", page.Entries)
	}
}

// rawStatus sends request as it is over a new connection to base and
// returns the answer's status.
func rawStatus(t *testing.T, base, request string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
