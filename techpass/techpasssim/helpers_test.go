package techpasssim_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// Credentials of the test namespaces. They are long and distinctive so that
// a test can search answers for them.
const (
	testDir     = "7e1d3a52-0b4c-4f1e-9d7a-5c2b8e6f1a90"
	shipClient  = "1f0c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"
	shipSecret  = "ship-secret-Zq8~vW3.xP7_kL2-mN5"
	shipKey     = "ship-api-key-4c1f9e7a2b6d8e0f3a5c"
	dockClient  = "2a1b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	dockSecret  = "dock-secret-Hj4~tR8.yU1_oP6-aS9"
	dockKey     = "dock-api-key-9e8d7c6b5a4f3e2d1c0b"
	certClient  = "3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e"
	certKey     = "cert-api-key-0a1b2c3d4e5f6a7b8c9d"
	ns          = "SHIP"
	defaultTick = time.Second
)

func shipNamespace() techpasssim.Namespace {
	return techpasssim.Namespace{Name: ns, DirectoryID: testDir, ClientID: shipClient, ClientSecret: shipSecret, APIKeys: []string{shipKey}}
}

func dockNamespace() techpasssim.Namespace {
	return techpasssim.Namespace{Name: "DOCK", DirectoryID: testDir, ClientID: dockClient, ClientSecret: dockSecret, APIKeys: []string{dockKey}}
}

// newClock returns a manual clock for Config.Now.
func newClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC))
}

// env is a simulator served over real HTTP, driven by a manual clock unless
// the config brings its own.
type env struct {
	t     testing.TB
	sim   *techpasssim.Simulator
	srv   *httptest.Server
	clock *testkit.Clock
	tick  time.Duration // how far paced advances the clock
}

// newEnv starts a simulator with cfg and the namespaces given (SHIP when
// none is), and stops it when the test ends.
func newEnv(t testing.TB, cfg techpasssim.Config, namespaces ...techpasssim.Namespace) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), tick: cfg.Interval}
	if e.tick == 0 {
		e.tick = defaultTick
	}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	e.sim = techpasssim.New(cfg)
	if len(namespaces) == 0 {
		namespaces = []techpasssim.Namespace{shipNamespace()}
	}
	for _, n := range namespaces {
		if err := e.sim.AddNamespace(n); err != nil {
			t.Fatalf("AddNamespace(%s): %v", n.Name, err)
		}
	}
	e.srv = httptest.NewServer(e.sim.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) tokenURL(dir string) string { return techpasssim.TokenURL(e.srv.URL, dir) }

func (e *env) scope() string { return techpasssim.Scope(e.srv.URL) }

// secretForm is a valid secret token request for client.
func (e *env) secretForm(client, secret string) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {client},
		"client_secret": {secret},
		"scope":         {e.scope()},
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) message() string {
	var b techpass.ErrorBody
	_ = json.Unmarshal(r.body, &b)
	if b.Error != nil {
		return b.Error.Message
	}
	return b.Message
}

// tokenErr is the parts of an Azure AD error answer the tests check.
type tokenErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

func (r response) tokenError(t testing.TB) tokenErr {
	t.Helper()
	var te tokenErr
	if err := json.Unmarshal(r.body, &te); err != nil {
		t.Fatalf("token error body %q: %v", r.body, err)
	}
	return te
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) postForm(target string, form url.Values) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

// token gets an access token with a client secret, failing the test if it
// cannot.
func (e *env) token(client, secret string) string {
	e.t.Helper()
	r := e.postForm(e.tokenURL(testDir), e.secretForm(client, secret))
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tr techpass.TokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		e.t.Fatal(err)
	}
	return tr.AccessToken
}

// api calls the Automation API at path with the API key and bearer token
// given (none when empty) and body encoded as JSON (none when nil).
func (e *env) api(method, path, key, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.do(req)
}

// paced is api after advancing the clock by the interval, as a client
// honouring TechPass's throttle would wait.
func (e *env) paced(method, path, key, token string, body any) response {
	e.t.Helper()
	e.clock.Advance(e.tick)
	return e.api(method, path, key, token, body)
}

// route returns the route of the table named n.
func route(t testing.TB, n techpass.RouteName) techpass.Route {
	t.Helper()
	for _, r := range techpass.Routes() {
		if r.Name == n {
			return r
		}
	}
	t.Fatalf("route %s not in the table", n)
	return techpass.Route{}
}

func groupsPath(t testing.TB, namespace string) string {
	return route(t, techpass.RouteListGroups).Path("namespace", namespace)
}

func groupPath(t testing.TB, namespace, id string) string {
	return route(t, techpass.RouteGetGroup).Path("namespace", namespace, "groupId", id)
}

func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

// wantStatus fails the test unless r has the status and, for error
// statuses, a JSON {"message": msg} body (msg "" skips the message check).
func wantStatus(t testing.TB, r response, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if status >= 400 {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		if msg != "" && r.message() != msg {
			t.Errorf("message = %q, want %q", r.message(), msg)
		}
	}
}

// newCert returns a self-signed certificate and its RSA key.
func newCert(t testing.TB) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	c := testkit.NewCert(t, testkit.CertOptions{CommonName: "groupgate techpass client"})
	return c.Cert, c.RSAKey()
}

func certNamespace(cert *x509.Certificate) techpasssim.Namespace {
	return techpasssim.Namespace{Name: "CERT", DirectoryID: testDir, ClientID: certClient, Certificate: cert, APIKeys: []string{certKey}}
}

// assertionClaims are valid claims for a client assertion by client.
func (e *env) assertionClaims(client string) jwt.MapClaims {
	now := e.clock.Now()
	return jwt.MapClaims{
		"aud": e.tokenURL(testDir),
		"iss": client,
		"sub": client,
		"jti": rand.Text(),
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// sign signs claims with method and key, with the x5t#S256 header of cert
// (when non-nil) plus the extra headers given (a nil value deletes one).
func sign(t testing.TB, method jwt.SigningMethod, key any, cert *x509.Certificate, claims jwt.MapClaims, extra map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if cert != nil {
		s256, _ := techpasssim.Thumbprints(cert)
		tok.Header["x5t#S256"] = s256
	}
	for k, v := range extra {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func (e *env) assertionForm(client, assertion string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {client},
		"client_assertion_type": {techpasssim.AssertionTypeJWTBearer},
		"client_assertion":      {assertion},
		"scope":                 {e.scope()},
	}
}

// newServer serves sim over HTTP until the test ends.
func newServer(t testing.TB, sim *techpasssim.Simulator) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return srv
}
