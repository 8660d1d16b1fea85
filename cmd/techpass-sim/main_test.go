package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// start parses args (plus a loopback listen address), opens the program
// and closes it when the test ends.
func start(t *testing.T, env map[string]string, args ...string) (*Main, *bytes.Buffer) {
	t.Helper()
	m := NewMain()
	var stdout, stderr bytes.Buffer
	m.Stdout, m.Stderr = &stdout, &stderr
	m.Getenv = func(k string) string { return env[k] }
	if err := m.ParseFlags(append([]string{"-listen", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m, &stdout
}

func getToken(t *testing.T, m *Main, form url.Values) string {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	form.Set("client_id", m.ClientID)
	form.Set("scope", techpasssim.Scope(m.BaseURL()))
	resp, err := http.PostForm(techpasssim.TokenURL(m.BaseURL(), m.DirectoryID), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr techpass.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

func listGroups(t *testing.T, m *Main, key, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, m.BaseURL()+"/iam/namespace/"+m.Namespace+"/groups", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func readCredential(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestGeneratedCredentials(t *testing.T) {
	dir := t.TempDir()
	m, stdout := start(t, nil, "-credentials-dir", dir, "-namespace", "DOCK", "-interval", "20ms")
	secret := readCredential(t, filepath.Join(dir, "client-secret"))
	key := readCredential(t, filepath.Join(dir, "api-key"))
	if len(secret) < 32 || len(key) < 20 {
		t.Errorf("generated secret/key too short: %d/%d characters", len(secret), len(key))
	}

	out := stdout.String()
	for _, want := range []string{m.BaseURL(), techpasssim.TokenURL(m.BaseURL(), m.DirectoryID), filepath.Join(dir, "client-secret"), filepath.Join(dir, "api-key")} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) || strings.Contains(out, key) {
		t.Errorf("banner prints a credential:\n%s", out)
	}

	tok := getToken(t, m, url.Values{"client_secret": {secret}})
	if got := listGroups(t, m, key, tok); got != http.StatusOK {
		t.Errorf("list groups: %d, want 200", got)
	}
	st, err := techpasssim.FetchStats(context.Background(), m.BaseURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Namespaces["DOCK"]; s.Requests != 1 || s.TokenRequests != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// TestDemoUsers: -users seeds the directory with techpasssim.DemoUsers,
// which the Automation API's user lookup and the admin list show.
func TestDemoUsers(t *testing.T) {
	dir := t.TempDir()
	m, stdout := start(t, nil, "-credentials-dir", dir, "-users", "3", "-interval", "20ms")
	if !strings.Contains(stdout.String(), "user003@example.gov.sg") {
		t.Errorf("banner does not name the demo users:\n%s", stdout)
	}
	resp, err := http.Get(m.BaseURL() + "/_sim/users")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Users []techpass.User }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Users) != 3 || list.Users[0] != techpasssim.DemoUsers(1)[0] {
		t.Fatalf("users = %+v (%v), want DemoUsers(3)", list.Users, err)
	}

	tok := getToken(t, m, url.Values{"client_secret": {readCredential(t, filepath.Join(dir, "client-secret"))}})
	req, err := http.NewRequest(http.MethodGet, m.BaseURL()+"/iam/users/USER002@example.gov.sg", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", readCredential(t, filepath.Join(dir, "api-key")))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var u techpass.User
	err = json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || u != techpasssim.DemoUsers(2)[1] {
		t.Errorf("lookup: %d %+v %v", resp.StatusCode, u, err)
	}

	m2, _ := start(t, nil, "-credentials-dir", t.TempDir(), "-users", "0")
	resp, err = http.Get(m2.BaseURL() + "/_sim/users")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Users) != 0 {
		t.Errorf("-users 0: %+v %v", list.Users, err)
	}
}

func TestTemporaryCredentialsRemovedOnClose(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	m := NewMain()
	m.Stdout, m.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
	m.Getenv = func(string) string { return "" }
	if err := m.ParseFlags([]string{"-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	secretFile := m.secretFile
	readCredential(t, secretFile)
	base := m.BaseURL()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(secretFile)); !os.IsNotExist(err) {
		t.Errorf("credentials directory still there after Close: %v", err)
	}
	if _, err := http.Get(base + "/_sim/stats"); err == nil {
		t.Error("still serving after Close")
	}
}

func TestCredentialsFromFilesAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	keyFile := filepath.Join(dir, "keys")
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(secretFile, []byte("secret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte("key-one\n\nkey-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pair := testkit.NewCert(t, testkit.CertOptions{CommonName: "techpass-sim test", NotAfter: time.Now().Add(time.Hour)})
	pair.WriteFiles(t, certFile, "")
	key := pair.RSAKey()

	t.Run("files", func(t *testing.T) {
		m, stdout := start(t, map[string]string{envClientSecret: "ignored", envAPIKey: "ignored"},
			"-client-secret-file", secretFile, "-api-key-file", keyFile, "-cert-file", certFile)
		if strings.Contains(stdout.String(), "generated") {
			t.Errorf("credentials generated although given:\n%s", stdout)
		}
		tok := getToken(t, m, url.Values{"client_secret": {"secret-from-file"}})
		if got := listGroups(t, m, "key-two", tok); got != http.StatusOK {
			t.Errorf("second key of the file: %d, want 200", got)
		}

		// The certificate signs client assertions too.
		cert := readCertFile(t, certFile)
		s256, _ := techpasssim.Thumbprints(cert)
		now := time.Now()
		a := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims{
			"aud": techpasssim.TokenURL(m.BaseURL(), m.DirectoryID), "iss": m.ClientID, "sub": m.ClientID,
			"jti": rand.Text(), "exp": now.Add(time.Minute).Unix(),
		})
		a.Header["x5t#S256"] = s256
		signed, err := a.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		getToken(t, m, url.Values{"client_assertion": {signed}, "client_assertion_type": {techpasssim.AssertionTypeJWTBearer}})
	})
	t.Run("environment", func(t *testing.T) {
		m, _ := start(t, map[string]string{envClientSecret: "secret-from-env", envAPIKey: "key-from-env"}, "-credentials-dir", t.TempDir())
		tok := getToken(t, m, url.Values{"client_secret": {"secret-from-env"}})
		if got := listGroups(t, m, "key-from-env", tok); got != http.StatusOK {
			t.Errorf("list groups: %d, want 200", got)
		}
	})
}

func TestFlagErrors(t *testing.T) {
	m := NewMain()
	m.Stderr = &bytes.Buffer{}
	err := m.ParseFlags([]string{"-interval", "-1s", "-group-limit", "0", "-token-lifetime", "10ms", "-api-url", "nope",
		"-users", "-1", "-member-page-size", "0"})
	if err == nil {
		t.Fatal("invalid flags accepted")
	}
	for _, want := range []string{"-interval", "-group-limit", "-token-lifetime", "API URL", "-users", "-member-page-size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	m = NewMain()
	m.Stdout, m.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
	m.Getenv = func(string) string { return "" }
	if err := m.ParseFlags([]string{"-client-secret-file", filepath.Join(t.TempDir(), "missing")}); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err == nil {
		_ = m.Close()
		t.Error("Open with a missing secret file succeeded")
	}
}

func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := readCertificate(path)
	if err != nil || cert == nil {
		t.Fatalf("readCertificate: %v", err)
	}
	return cert
}

// TestRoutesFile: -routes serves a corrected table (the old path is gone,
// the new one answers), and a bad file is refused with its problems.
func TestRoutesFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "routes.json")
	if err := os.WriteFile(good, []byte(`{"listGroups": {"path": "/iam/v2/namespace/{namespace}/groups", "params": {"includeOnTechBiz": "withTechBiz"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _ := start(t, nil, "-routes", good, "-api-key-file", writeKey(t, dir, "key-1"))
	token := getToken(t, m, url.Values{"client_secret": {readCredential(t, m.secretFile)}})
	if got := listGroups(t, m, "key-1", token); got != http.StatusNotFound {
		t.Errorf("the built-in path answers %d, want 404", got)
	}
	req, _ := http.NewRequest(http.MethodGet, m.BaseURL()+"/iam/v2/namespace/"+m.Namespace+"/groups?withTechBiz=true", nil)
	req.Header.Set("x-api-key", "key-1")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the corrected path answers %d", resp.StatusCode)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"getGroups": {}, "getGroup": {"method": "FETCH"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := NewMain()
	m2.Stderr = &bytes.Buffer{}
	err = m2.ParseFlags([]string{"-routes", bad})
	if err == nil || !strings.Contains(err.Error(), `unknown route "getGroups"`) || !strings.Contains(err.Error(), `method "FETCH"`) {
		t.Errorf("bad routes file: %v", err)
	}
}

func writeKey(t *testing.T, dir, key string) string {
	t.Helper()
	p := filepath.Join(dir, "api-keys")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
