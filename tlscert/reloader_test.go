package tlscert

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
)

// TestReload: a changed pair is served after the next check; a pair that
// does not load (a half-written certificate) leaves the previous one in use
// and is logged.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	testkit.NewCert(t, testkit.CertOptions{CommonName: "first"}).WriteFiles(t, certFile, keyFile)
	var logs testkit.Buffer
	r, err := NewReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := r.TLSConfig().GetCertificate(nil)
		if err != nil || c == nil || c.Leaf == nil {
			t.Fatalf("GetCertificate: %v, %v", c, err)
		}
		return c.Leaf.Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("served %q", cn)
	}
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nhalf"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.checked = time.Time{} // the next handshake checks the files
	if cn := served(); cn != "first" {
		t.Errorf("a broken pair replaced the working one: %q", cn)
	}
	if !strings.Contains(logs.String(), "the previous one stays in use") {
		t.Errorf("the broken pair was not logged: %s", logs.String())
	}
	testkit.NewCert(t, testkit.CertOptions{CommonName: "second"}).WriteFiles(t, certFile, keyFile)
	if cn := served(); cn != "first" {
		t.Errorf("files checked again before checkEvery: %q", cn)
	}
	r.checked = time.Time{}
	if cn := served(); cn != "second" {
		t.Errorf("the renewed pair was not loaded: %q", cn)
	}
}
