package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/apitest"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/tenants"
)

// TestConfigPrecedence: defaults < file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	_, k := tenants.NewKey()
	file := filepath.Join(dir, "groupgate.yaml")
	testkit.WriteFile(t, file, `
listen: 127.0.0.1:7000
allow_http: true
store_path: `+filepath.Join(dir, "file.db")+`
log_level: warn
interval: 250ms
tenants:
  - name: ship
    group_limit: 80
    projects:
      - name: moh
        keys:
          - id: `+k.ID+`
            hash: `+tenants.HashString(k.Hash)+`
`)
	env := map[string]string{"GROUPGATE_CONFIG": file, "GROUPGATE_LOG_LEVEL": "debug", "GROUPGATE_LISTEN": "127.0.0.1:7001"}
	m := server.NewMain(&bytes.Buffer{}, &bytes.Buffer{}, func(k string) string { return env[k] })
	if err := m.ParseFlags([]string{"-listen", "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.Listen != "127.0.0.1:7002" || c.LogLevel != "debug" || time.Duration(c.Interval) != 250*time.Millisecond || c.StorePath != filepath.Join(dir, "file.db") {
		t.Errorf("precedence broken: %+v", c)
	}
	if c.Tenants[0].Name != "SHIP" || c.Tenants[0].Projects[0].Name != "MOH" || c.Tenants[0].GroupLimit != 80 {
		t.Errorf("names must be upper-cased and the limit kept: %+v", c.Tenants[0])
	}
	if c.PaceGuard != config.DefaultConfig().PaceGuard {
		t.Errorf("unset values keep their defaults")
	}
}

// TestDemoMode is what `make run` does: -demo adds SHIP/MOH on the
// built-in simulator, and the printed curl lines work when pasted into a
// shell.
func TestDemoMode(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	dir := t.TempDir()
	out := &syncBuffer{}
	m := server.NewMain(out, &syncBuffer{}, func(string) string { return "" })
	if err := m.ParseFlags([]string{"-demo", "-listen", "127.0.0.1:0", "-store", filepath.Join(dir, "g.db")}); err != nil {
		t.Fatal(err)
	}
	if len(m.Config.Tenants) != 1 || m.Config.Tenants[0].Name != "SHIP" || !m.Config.Tenants[0].TechPass.UsesSimulator() {
		t.Fatalf("demo tenant: %+v", m.Config.Tenants)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var lines []string
	deadline := time.Now().Add(10 * time.Second)
	for len(lines) < 2 {
		lines = lines[:0]
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "curl ") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no curl lines printed:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sh := func(line string) string {
		cmd := exec.Command("sh", "-c", strings.Replace(line, "curl ", curl+" -w '\\n%{http_code}' ", 1))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, b)
		}
		return string(b)
	}
	if got := sh(lines[0]); !strings.HasSuffix(got, "\n202") || !strings.Contains(got, `"state":"queued"`) {
		t.Fatalf("create line answered:\n%s", got)
	}
	for {
		got := sh(lines[1])
		if strings.Contains(got, `"fullName":"SHIP:MOH:billing"`) && strings.Contains(got, `"state":"active"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list line never showed the active group:\n%s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "/docs") {
		t.Errorf("the banner should point at the docs page")
	}
}

// TestTLS: HTTPS from a certificate file, reloaded when the file changes;
// plain HTTP only when allowed.
func TestTLS(t *testing.T) {
	c := config.DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.StorePath = filepath.Join(t.TempDir(), "g.db")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "allow_http") {
		t.Fatalf("plain HTTP without allow_http: %v", err)
	}
	dir := t.TempDir()
	c.TLS = config.TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	writeCert := func(cn string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cert := testkit.NewCert(t, testkit.CertOptions{CommonName: cn, Key: key,
			NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}})
		// WriteFiles writes the key first: a reader never sees a
		// certificate without its key.
		cert.WriteFiles(t, c.TLS.CertFile, c.TLS.KeyFile)
	}
	writeCert("first")
	srv, err := server.New(c, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s", srv.URL())
	}
	insecure := apitest.NewClient(t, &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}})
	peer := func() string {
		resp, err := insecure.Get(srv.URL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Error("no HSTS over TLS")
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := peer(); got != "first" {
		t.Fatalf("certificate %q", got)
	}
	// Go's TLS listener answers plain HTTP itself, outside the contract:
	// not through the validating client.
	if resp, err := http.Get("http://" + srv.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP answered %d on a TLS listener", resp.StatusCode)
		}
	}
	writeCert("second")
	renewed := testkit.Poll(30*time.Second, 200*time.Millisecond, func() bool {
		if peer() == "second" {
			return true
		}
		insecure.CloseIdleConnections()
		return false
	})
	if !renewed {
		t.Fatal("the renewed certificate was not picked up")
	}
}
