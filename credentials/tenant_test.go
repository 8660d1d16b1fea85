package credentials

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/tenants"
)

type testPair struct{ certPEM, keyPEM []byte }

// newTestPair returns a certificate valid until notAfter and its key as
// PKCS #1.
func newTestPair(t *testing.T, notAfter time.Time) testPair {
	t.Helper()
	c := testkit.NewCert(t, testkit.CertOptions{CommonName: "t", NotAfter: notAfter})
	return testPair{certPEM: c.CertPEM, keyPEM: c.PKCS1KeyPEM(t)}
}

func fileRef(path string) tenants.Credential {
	return tenants.Credential{Kind: tenants.CredentialFile, Ref: path}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func newTestCredentials(t *testing.T, client, key tenants.Credential, getenv func(string) string) (*Tenant, *bytes.Buffer, string) {
	t.Helper()
	dir := t.TempDir()
	apiKeyFile := filepath.Join(dir, "apikey")
	write(t, apiKeyFile, []byte("api-key-1\n"))
	var logs bytes.Buffer
	tc := &Tenant{
		tenant: "SHIP", log: slog.New(slog.NewJSONHandler(&logs, nil)), getenv: getenv, now: time.Now,
		maxAge: 180 * 24 * time.Hour,
		client: &Source{kind: KindClient, ref: client},
		apiKey: &Source{kind: KindAPIKey, ref: fileRef(apiKeyFile)},
	}
	if key.Kind != tenants.CredentialNone {
		tc.key = &Source{kind: KindKey, ref: key}
	}
	if _, err := tc.load(); err != nil {
		t.Fatal(err)
	}
	return tc, &logs, apiKeyFile
}

// TestCredentialRotation: a changed secret or API key is swapped in; an
// unusable one is not (the previous value stays, and the problem is logged
// once and shown); a fixed one clears the problem.
func TestCredentialRotation(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	write(t, secretFile, []byte("secret-1\n"))
	tc, logs, apiKeyFile := newTestCredentials(t, fileRef(secretFile), tenants.Credential{}, nil)
	if s, _ := tc.ClientSecret(); s != "secret-1" {
		t.Fatalf("secret %q", s)
	}
	if c, err := tc.Certificate(); c != nil || err != nil {
		t.Fatalf("a secret is not a certificate: %v %v", c, err)
	}
	write(t, secretFile, []byte("secret-2\n"))
	write(t, apiKeyFile, []byte("api-key-2"))
	changed, err := tc.load()
	if err != nil || len(changed) != 2 {
		t.Fatalf("changed %v, %v", changed, err)
	}
	if s, _ := tc.ClientSecret(); s != "secret-2" {
		t.Errorf("secret %q", s)
	}
	if k, _ := tc.APIKey(); k != "api-key-2" {
		t.Errorf("API key %q", k)
	}
	write(t, secretFile, []byte("  \n"))
	for range 3 {
		tc.Check()
	}
	if s, _ := tc.ClientSecret(); s != "secret-2" {
		t.Errorf("an empty file replaced the secret: %q", s)
	}
	if w := strings.Join(tc.Warnings(), "\n"); !strings.Contains(w, "client credential changed but is unusable") || !strings.Contains(w, secretFile) {
		t.Errorf("warnings %q", w)
	}
	if n := strings.Count(logs.String(), "changed but is unusable"); n != 1 {
		t.Errorf("the problem was logged %d times, want once", n)
	}
	write(t, secretFile, []byte("secret-3"))
	tc.Check()
	if s, _ := tc.ClientSecret(); s != "secret-3" || len(tc.Warnings()) != 0 {
		t.Errorf("after the fix: %q %v", s, tc.Warnings())
	}
	for _, v := range []string{"secret-1", "secret-2", "secret-3", "api-key-1", "api-key-2"} {
		if strings.Contains(logs.String(), v) || strings.Contains(strings.Join(tc.Warnings(), ""), v) {
			t.Errorf("%s leaked", v)
		}
	}
}

// TestCredentialCertificatePair: a certificate and key in two files; a
// half-done rotation (new key, old certificate) keeps the working pair
// until both files agree. A bundle in one file works too, and a secret can
// be rotated to a certificate.
func TestCredentialCertificatePair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	p1, p2 := newTestPair(t, time.Now().Add(time.Hour*24*365)), newTestPair(t, time.Now().Add(time.Hour*24*365))
	write(t, certFile, p1.certPEM)
	write(t, keyFile, p1.keyPEM)
	tc, _, _ := newTestCredentials(t, fileRef(certFile), fileRef(keyFile), nil)
	c1, _ := tc.Certificate()
	if c1 == nil {
		t.Fatal("no certificate")
	}
	if _, err := tc.ClientSecret(); err == nil {
		t.Error("a certificate tenant has no secret")
	}
	write(t, keyFile, p2.keyPEM)
	tc.Check()
	if c, _ := tc.Certificate(); c != c1 {
		t.Error("a mismatched pair replaced the working one")
	}
	if w := strings.Join(tc.Warnings(), "\n"); !strings.Contains(w, "does not belong to the certificate") {
		t.Errorf("warnings %q", w)
	}
	write(t, certFile, p2.certPEM)
	tc.Check()
	if c, _ := tc.Certificate(); c == c1 || c == nil || len(tc.Warnings()) != 0 {
		t.Errorf("after the rotation: %v %v", c, tc.Warnings())
	}

	// One file with both, and a rotation from a secret to it.
	bundle := filepath.Join(dir, "bundle.pem")
	write(t, bundle, []byte("secret-before"))
	tb, _, _ := newTestCredentials(t, fileRef(bundle), tenants.Credential{}, nil)
	if s, _ := tb.ClientSecret(); s != "secret-before" {
		t.Fatalf("secret %q", s)
	}
	write(t, bundle, append(append([]byte{}, p1.certPEM...), p1.keyPEM...))
	tb.Check()
	if c, _ := tb.Certificate(); c == nil || c.Thumbprint() != c1.Thumbprint() {
		t.Errorf("bundle: %v", c)
	}
}

// TestCredentialAge: a credential older than max_age, and a certificate
// close to its expiry, are flagged in the warnings and logged once.
func TestCredentialAge(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "bundle.pem")
	p := newTestPair(t, time.Now().Add(10*24*time.Hour))
	write(t, certFile, append(append([]byte{}, p.certPEM...), p.keyPEM...))
	old := time.Now().Add(-200 * 24 * time.Hour)
	if err := os.Chtimes(certFile, old, old); err != nil {
		t.Fatal(err)
	}
	tc, logs, _ := newTestCredentials(t, fileRef(certFile), tenants.Credential{}, nil)
	tc.Check()
	tc.Check()
	w := strings.Join(tc.Warnings(), "\n")
	if !strings.Contains(w, "client credential (file "+certFile+") is 200 days old, over credentials.max_age (180 days)") {
		t.Errorf("warnings %q", w)
	}
	if !strings.Contains(w, "expires on "+p2date(10)) {
		t.Errorf("warnings %q: want the near expiry", w)
	}
	if n := strings.Count(logs.String(), "older than credentials.max_age"); n != 1 {
		t.Errorf("age logged %d times, want once", n)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(w, "PRIVATE KEY") {
		t.Error("key material leaked")
	}
}

func p2date(days int) string {
	return time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC().Format(time.DateOnly)
}

// TestCredentialFromEnvironment: a variable is read at each check and
// dated by when this process first saw its value.
func TestCredentialFromEnvironment(t *testing.T) {
	env := map[string]string{"SHIP_SECRET": "env-secret-1"}
	tc, _, _ := newTestCredentials(t, tenants.Credential{Kind: tenants.CredentialEnv, Ref: "SHIP_SECRET"}, tenants.Credential{}, func(k string) string { return env[k] })
	if s, _ := tc.ClientSecret(); s != "env-secret-1" {
		t.Fatalf("secret %q", s)
	}
	env["SHIP_SECRET"] = "env-secret-2"
	if changed, _ := tc.load(); len(changed) != 1 {
		t.Errorf("changed %v", changed)
	}
	if s, _ := tc.ClientSecret(); s != "env-secret-2" {
		t.Errorf("secret %q", s)
	}
	delete(env, "SHIP_SECRET")
	if _, err := tc.load(); err == nil || strings.Contains(err.Error(), "env-secret") {
		t.Errorf("an unset variable: %v", err)
	}
}
