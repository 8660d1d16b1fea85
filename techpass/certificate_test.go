package techpass_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/pacing"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// newTestCert returns a self-signed certificate with its RSA key.
func newTestCert(t testing.TB) testkit.Cert {
	t.Helper()
	return testkit.NewCert(t, testkit.CertOptions{CommonName: "groupgate test client"})
}

func TestParseCertificate(t *testing.T) {
	a, b := newTestCert(t), newTestCert(t)
	pkcs1 := a.PKCS1KeyPEM(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})

	ok := []struct {
		name          string
		certPEM, keyP []byte
	}{
		{"PKCS#8", a.CertPEM, a.KeyPEM},
		{"PKCS#1", a.CertPEM, pkcs1},
		{"chain, leaf second", append(append([]byte{}, b.CertPEM...), a.CertPEM...), a.KeyPEM},
		{"key after other PEM blocks", a.CertPEM, append([]byte("-----BEGIN PARAMETERS-----\nAAAA\n-----END PARAMETERS-----\n"), a.KeyPEM...)},
	}
	for _, tt := range ok {
		c, err := techpass.ParseCertificate(tt.certPEM, tt.keyP)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		s256, _ := techpasssim.Thumbprints(a.Cert)
		if c.Thumbprint() != s256 || !c.NotAfter().Equal(a.Cert.NotAfter) || !c.Certificate().Equal(a.Cert) {
			t.Errorf("%s: wrong certificate picked: %v", tt.name, c)
		}
	}
	bad := []struct {
		name          string
		certPEM, keyP []byte
		want          string
	}{
		{"key of another certificate", a.CertPEM, b.KeyPEM, "does not belong"},
		{"no certificate", a.KeyPEM, a.KeyPEM, "no PEM CERTIFICATE"},
		{"no key", a.CertPEM, a.CertPEM, "no PEM private key"},
		{"not PEM", []byte("hello"), []byte("world"), "no PEM private key"},
		{"EC key", a.CertPEM, ecPEM, "not RSA"},
		{"encrypted key", a.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"corrupt key", a.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "does not parse"},
		{"corrupt certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), a.KeyPEM, "does not parse"},
	}
	for _, tt := range bad {
		_, err := techpass.ParseCertificate(tt.certPEM, tt.keyP)
		if !errors.Is(err, techpass.ErrCertificate) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrCertificate mentioning %q", tt.name, err, tt.want)
		}
	}
}

// TestCertificateNeverPrintsItsKey: every way of printing a Certificate
// shows the thumbprint only.
func TestCertificateNeverPrintsItsKey(t *testing.T) {
	a := newTestCert(t)
	c, err := techpass.ParseCertificate(a.CertPEM, a.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "cert", c)
	d := a.RSAKey().D.String()
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(*c), logs.String()} {
		if strings.Contains(out, d[:20]) || strings.Contains(out, "PRIVATE") {
			t.Errorf("key material printed: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(c), c.Thumbprint()) {
		t.Errorf("String() = %q, want the thumbprint", c)
	}
}

// recorder captures every client assertion sent through it.
type recorder struct {
	mu         sync.Mutex
	assertions []string
	next       http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && strings.HasSuffix(req.URL.Path, "/token") {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		if f, err := url.ParseQuery(string(b)); err == nil && f.Get("client_assertion") != "" {
			r.mu.Lock()
			r.assertions = append(r.assertions, f.Get("client_assertion"))
			r.mu.Unlock()
			if f.Has("client_secret") {
				return nil, errors.New("a secret was sent with an assertion")
			}
		}
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.assertions...)
}

type certFixture struct {
	sim    *techpasssim.Simulator
	srv    *httptest.Server
	cert   testkit.Cert
	rec    *recorder
	client *techpass.Client
}

func newCertFixture(t *testing.T, alg string) *certFixture {
	t.Helper()
	tc := newTestCert(t)
	sim := techpasssim.New(techpasssim.Config{Interval: 20 * time.Millisecond, Seed: 3})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	if err := sim.AddNamespace(techpasssim.Namespace{Name: "SHIP", DirectoryID: "dir", ClientID: "cid", Certificate: tc.Cert, APIKeys: []string{"key-one"}}); err != nil {
		t.Fatal(err)
	}
	cert, err := techpass.ParseCertificate(tc.CertPEM, tc.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: http.DefaultTransport}
	c, err := techpass.New(techpass.Config{
		Namespace: "SHIP", APIURL: srv.URL, TokenURL: techpass.TokenURL(srv.URL, "dir"), ClientID: "cid",
		ClientCertificate: func() (*techpass.Certificate, error) { return cert, nil },
		AssertionAlg:      alg,
		APIKey:            func() (string, error) { return "key-one", nil },
		Pacer:             pacing.NewGate(25*time.Millisecond, nil),
		HTTPClient:        &http.Client{Transport: rec, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &certFixture{sim: sim, srv: srv, cert: tc, rec: rec, client: c}
}

// TestClientCertificateAssertion: the client authenticates with a
// certificate client assertion that verifies against the certificate, with
// the headers and claims Azure AD requires; each token request carries a
// new one; and the simulator refuses a replayed or forged assertion.
func TestClientCertificateAssertion(t *testing.T) {
	for _, alg := range []string{"", techpass.AlgRS256, techpass.AlgPS256} {
		t.Run("alg="+alg, func(t *testing.T) {
			f := newCertFixture(t, alg)
			ctx := context.Background()
			if _, err := f.client.CreateGroup(ctx, "SHIP:MOH:billing", ""); err != nil {
				t.Fatal(err)
			}
			if err := f.client.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			got := f.rec.all()
			if len(got) != 2 {
				t.Fatalf("%d assertions sent, want 2", len(got))
			}
			wantAlg := alg
			if wantAlg == "" {
				wantAlg = techpass.AlgRS256
			}
			tokenURL := techpass.TokenURL(f.srv.URL, "dir")
			s256, s1 := techpasssim.Thumbprints(f.cert.Cert)
			jtis := map[string]bool{}
			for _, a := range got {
				var claims jwt.MapClaims
				tok, err := jwt.NewParser(jwt.WithValidMethods([]string{wantAlg}), jwt.WithAudience(tokenURL),
					jwt.WithIssuer("cid"), jwt.WithSubject("cid"), jwt.WithExpirationRequired(), jwt.WithIssuedAt()).
					ParseWithClaims(a, &claims, func(*jwt.Token) (any, error) { return &f.cert.RSAKey().PublicKey, nil })
				if err != nil {
					t.Fatalf("the assertion does not verify: %v", err)
				}
				if tok.Header["x5t#S256"] != s256 || tok.Header["x5t"] != s1 || tok.Header["kid"] != s256 || tok.Header["typ"] != "JWT" {
					t.Errorf("header %v, want x5t#S256 %s, x5t %s and kid %s", tok.Header, s256, s1, s256)
				}
				if aud, _ := claims["aud"].(string); aud != tokenURL {
					t.Errorf("aud %v, want the token URL as a string", claims["aud"])
				}
				exp, _ := claims.GetExpirationTime()
				iat, _ := claims.GetIssuedAt()
				nbf, _ := claims.GetNotBefore()
				if exp.Sub(iat.Time) != techpass.AssertionLifetime || nbf == nil || !nbf.Equal(iat.Time) {
					t.Errorf("exp %v iat %v nbf %v: want a %v life", exp, iat, nbf, techpass.AssertionLifetime)
				}
				// Back-dated for the token endpoint's clock skew, within the life.
				if ago := time.Since(iat.Time); ago < techpass.AssertionSkew-time.Second || ago > techpass.AssertionSkew+5*time.Second {
					t.Errorf("iat %v is %v before now, want about %v", iat, ago, techpass.AssertionSkew)
				}
				jti, _ := claims["jti"].(string)
				if len(jti) < 16 || jtis[jti] {
					t.Errorf("jti %q must be long and unique", jti)
				}
				jtis[jti] = true
			}

			// Presented again, the captured assertion is refused (jti replay).
			form := url.Values{
				"grant_type": {"client_credentials"}, "client_id": {"cid"}, "scope": {techpasssim.Scope(f.srv.URL)},
				"client_assertion_type": {techpass.AssertionTypeJWTBearer}, "client_assertion": {got[0]},
			}
			if status, body := postForm(t, tokenURL, form); status != http.StatusUnauthorized || !strings.Contains(body, "already used") {
				t.Errorf("replayed assertion: %d %s", status, body)
			}
			// The same claims and thumbprints signed by another key: refused.
			var claims jwt.MapClaims
			if _, _, err := jwt.NewParser().ParseUnverified(got[1], &claims); err != nil {
				t.Fatal(err)
			}
			claims["jti"] = rand.Text()
			forged := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			forged.Header["x5t#S256"], forged.Header["x5t"] = s256, s1
			signed, err := forged.SignedString(newTestCert(t).RSAKey())
			if err != nil {
				t.Fatal(err)
			}
			form.Set("client_assertion", signed)
			if status, body := postForm(t, tokenURL, form); status != http.StatusUnauthorized || !strings.Contains(body, "invalid signature") {
				t.Errorf("forged assertion: %d %s", status, body)
			}
			st := f.sim.Stats().Namespaces["SHIP"]
			if st.TokenRequests != 4 || st.TokenFailures != 2 || st.Violations != 0 {
				t.Errorf("stats %+v", st.Counters)
			}
			if h := f.client.Health(); h.State != techpass.TokenOK {
				t.Errorf("health %+v", h)
			}
		})
	}
}

func postForm(t *testing.T, target string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClientCertificateRefused: a certificate the directory does not know
// becomes the refused state, with the error code only.
func TestClientCertificateRefused(t *testing.T) {
	f := newCertFixture(t, "")
	if err := f.sim.SetCertificate("SHIP", newTestCert(t).Cert); err != nil { // revokes ours
		t.Fatal(err)
	}
	_, err := f.client.ListGroups(context.Background())
	var te *techpass.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_client" || te.AADSTS != "AADSTS700027" {
		t.Fatalf("got %v", err)
	}
	h := f.client.Health()
	if h.State != techpass.TokenRefused || !strings.HasPrefix(h.Problem(), "token endpoint: invalid_client (AADSTS700027, HTTP 401) since ") {
		t.Errorf("health %+v: %s", h, h.Problem())
	}
	for _, a := range f.rec.all() {
		if strings.Contains(err.Error(), a) || strings.Contains(h.Problem(), a) {
			t.Error("the assertion leaked into an error")
		}
	}
	// The retry waits for the backoff rather than hammering the endpoint.
	if retry, after, _ := techpass.Temporary(err); !retry || after <= 0 {
		t.Errorf("Temporary = %v, %v; want a retry after the backoff", retry, after)
	}
	if _, err := f.client.ListGroups(context.Background()); err == nil {
		t.Fatal("still refused")
	}
	if n := f.sim.Stats().Namespaces["SHIP"].TokenRequests; n != 1 {
		t.Errorf("%d token requests within the backoff, want 1", n)
	}
}

func TestClientCredentialConfig(t *testing.T) {
	secret := func() (string, error) { return "s", nil }
	cert := func() (*techpass.Certificate, error) { return nil, errors.New("none") }
	base := techpass.Config{Namespace: "SHIP", APIURL: "http://x", TokenURL: "http://x/t", ClientID: "c", APIKey: secret}
	if _, err := techpass.New(base); err == nil || !strings.Contains(err.Error(), "client secret or certificate") {
		t.Errorf("no credential: %v", err)
	}
	badAlg := base
	badAlg.ClientCertificate, badAlg.AssertionAlg = cert, "HS256"
	if _, err := techpass.New(badAlg); err == nil {
		t.Error("HS256 accepted")
	}
	badShare := base
	badShare.ClientSecret, badShare.Renewal = secret, techpass.RenewalPolicy{Share: 2}
	if _, err := techpass.New(badShare); err == nil {
		t.Error("a renewal share of 2 accepted")
	}
	// A certificate that cannot be loaded is a credential error: no token
	// request is sent, and it is retried (rotation fixes it).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s", r.URL)
	}))
	defer srv.Close()
	noCert := base
	noCert.APIURL, noCert.TokenURL, noCert.ClientCertificate = srv.URL, srv.URL+"/t", cert
	c, err := techpass.New(noCert)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListGroups(context.Background())
	var ce *techpass.CredentialError
	if !errors.As(err, &ce) || ce.What != "client certificate" {
		t.Fatalf("got %v", err)
	}
	if h := c.Health(); h.State != techpass.CredentialUnusable || !strings.Contains(h.Problem(), "client credential: client certificate unusable") {
		t.Errorf("health %+v %q", h, h.Problem())
	}
}

// TestClientThrottleHoldsThePacer: a 429's Retry-After holds the tenant's
// gate, so no other request starts before it.
func TestClientThrottleHoldsThePacer(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	gate := pacing.NewGate(25*time.Millisecond, nil)
	c, err := techpass.New(techpass.Config{
		Namespace: "SHIP", APIURL: f.srv.URL, TokenURL: techpass.TokenURL(f.srv.URL, "dir"), ClientID: "cid",
		ClientSecret: func() (string, error) { return "s3cret-one", nil },
		APIKey:       func() (string, error) { return "key-one", nil },
		Pacer:        gate,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.SetFaults(techpasssim.Faults{ThrottleRate: 1, RetryAfter: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	_, err = c.ListGroups(context.Background())
	if retry, after, throttled := techpass.Temporary(err); !retry || !throttled || after != 2*time.Second {
		t.Fatalf("429: %v %v %v (%v)", retry, after, throttled, err)
	}
	if next := gate.NextStart(); next.Sub(before) < 2*time.Second {
		t.Errorf("the gate opens %v after the call started, want at least the 2 s Retry-After", next.Sub(before))
	}
}

// TestClientSwitchesCredentialKind: with both sources set, a nil
// certificate means the secret is used; once a certificate appears, the
// next token request is an assertion, without a new client.
func TestClientSwitchesCredentialKind(t *testing.T) {
	tc := newTestCert(t)
	sim := techpasssim.New(techpasssim.Config{Interval: 20 * time.Millisecond})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	if err := sim.AddNamespace(techpasssim.Namespace{Name: "SHIP", DirectoryID: "dir", ClientID: "cid",
		ClientSecret: "s3cret", Certificate: tc.Cert, APIKeys: []string{"key-one"}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var current *techpass.Certificate
	c, err := techpass.New(techpass.Config{
		Namespace: "SHIP", APIURL: srv.URL, TokenURL: techpass.TokenURL(srv.URL, "dir"), ClientID: "cid",
		ClientSecret: func() (string, error) { return "s3cret", nil },
		ClientCertificate: func() (*techpass.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			return current, nil
		},
		APIKey: func() (string, error) { return "key-one", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.ReceivedAssertions()); n != 0 {
		t.Fatalf("%d assertions sent while no certificate is loaded", n)
	}
	cert, err := techpass.ParseCertificate(tc.CertPEM, tc.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	current = cert
	mu.Unlock()
	c.CredentialsChanged()
	if _, err := c.ListGroups(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.ReceivedAssertions()); n != 1 {
		t.Errorf("%d assertions, want 1 after the switch", n)
	}
	if st := sim.Stats().Namespaces["SHIP"]; st.TokenRequests != 2 || st.TokenFailures != 0 {
		t.Errorf("stats %+v", st.Counters)
	}
}
