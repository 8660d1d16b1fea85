package techpasssim_test

import (
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/techpass/techpasssim"
)

func TestAssertionAccepted(t *testing.T) {
	cert, key := newCert(t)
	s256, s1 := techpasssim.Thumbprints(cert)
	tests := []struct {
		name    string
		method  jwt.SigningMethod
		headers map[string]any
	}{
		{"RS256 with x5t#S256", jwt.SigningMethodRS256, nil},
		{"PS256 with x5t#S256", jwt.SigningMethodPS256, nil},
		{"RS256 with x5t only", jwt.SigningMethodRS256, map[string]any{"x5t#S256": nil, "x5t": s1}},
		{"PS256 with both thumbprints", jwt.SigningMethodPS256, map[string]any{"x5t": s1}},
		{"padded thumbprint", jwt.SigningMethodRS256, map[string]any{"x5t#S256": s256 + "="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, techpasssim.Config{}, certNamespace(cert))
			a := sign(t, tt.method, key, cert, e.assertionClaims(certClient), tt.headers)
			r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a))
			wantStatus(t, r, http.StatusOK, "")
			if len(e.sim.IssuedTokens()) != 1 {
				t.Error("no token recorded")
			}
		})
	}
}

func TestAssertionRefused(t *testing.T) {
	cert, key := newCert(t)
	otherCert, otherKey := newCert(t)
	_, s1 := techpasssim.Thumbprints(cert)
	pubDER := cert.RawSubjectPublicKeyInfo

	type build func(e *env) string
	withClaims := func(change func(e *env, c jwt.MapClaims)) build {
		return func(e *env) string {
			c := e.assertionClaims(certClient)
			change(e, c)
			return sign(t, jwt.SigningMethodRS256, key, cert, c, nil)
		}
	}
	tests := []struct {
		name  string
		build build
		form  func(f map[string][]string)
		prep  func(e *env)
	}{
		{name: "forged signature", build: func(e *env) string {
			// Signed by another key, but claiming the registered certificate.
			return sign(t, jwt.SigningMethodRS256, otherKey, cert, e.assertionClaims(certClient), nil)
		}},
		{name: "another certificate", build: func(e *env) string {
			return sign(t, jwt.SigningMethodRS256, otherKey, otherCert, e.assertionClaims(certClient), nil)
		}},
		{name: "no thumbprint", build: func(e *env) string {
			return sign(t, jwt.SigningMethodRS256, key, nil, e.assertionClaims(certClient), nil)
		}},
		{name: "x5t of another certificate", build: func(e *env) string {
			_, other1 := techpasssim.Thumbprints(otherCert)
			return sign(t, jwt.SigningMethodRS256, key, cert, e.assertionClaims(certClient), map[string]any{"x5t": other1})
		}},
		{name: "thumbprint not a string", build: func(e *env) string {
			return sign(t, jwt.SigningMethodRS256, key, nil, e.assertionClaims(certClient), map[string]any{"x5t": 42})
		}},
		{name: "alg none", build: func(e *env) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, cert, e.assertionClaims(certClient), map[string]any{"x5t": s1})
		}},
		{name: "HS256 keyed with the public key", build: func(e *env) string {
			return sign(t, jwt.SigningMethodHS256, pubDER, cert, e.assertionClaims(certClient), nil)
		}},
		{name: "RS384", build: func(e *env) string {
			return sign(t, jwt.SigningMethodRS384, key, cert, e.assertionClaims(certClient), nil)
		}},
		{name: "wrong aud", build: withClaims(func(e *env, c jwt.MapClaims) {
			c["aud"] = "https://login.microsoftonline.com/" + testDir + "/oauth2/v2.0/token"
		})},
		{name: "aud of another directory", build: withClaims(func(e *env, c jwt.MapClaims) { c["aud"] = e.tokenURL("other") })},
		{name: "two audiences", build: withClaims(func(e *env, c jwt.MapClaims) { c["aud"] = []string{e.tokenURL(testDir), "x"} })},
		{name: "no aud", build: withClaims(func(e *env, c jwt.MapClaims) { delete(c, "aud") })},
		{name: "iss of another client", build: withClaims(func(e *env, c jwt.MapClaims) { c["iss"] = shipClient })},
		{name: "sub of another client", build: withClaims(func(e *env, c jwt.MapClaims) { c["sub"] = shipClient })},
		{name: "expired", build: withClaims(func(e *env, c jwt.MapClaims) { c["exp"] = e.clock.Now().Add(-time.Second).Unix() })},
		{name: "expires now", build: withClaims(func(e *env, c jwt.MapClaims) { c["exp"] = e.clock.Now().Unix() })},
		{name: "no exp", build: withClaims(func(e *env, c jwt.MapClaims) { delete(c, "exp") })},
		{name: "lifetime over 10 minutes", build: withClaims(func(e *env, c jwt.MapClaims) {
			c["exp"] = e.clock.Now().Add(10*time.Minute + 2*time.Second).Unix()
		})},
		{name: "no jti", build: withClaims(func(e *env, c jwt.MapClaims) { delete(c, "jti") })},
		{name: "exp not a number", build: withClaims(func(e *env, c jwt.MapClaims) { c["exp"] = "tomorrow" })},
		{name: "not a JWT", build: func(*env) string { return "definitely-not-a-jwt-but-long-enough" }},
		{name: "expired by the clock", build: func(e *env) string {
			a := sign(t, jwt.SigningMethodRS256, key, cert, e.assertionClaims(certClient), nil)
			e.clock.Advance(5 * time.Minute)
			return a
		}},
		{name: "replayed jti", build: func(e *env) string {
			a := sign(t, jwt.SigningMethodRS256, key, cert, e.assertionClaims(certClient), nil)
			wantStatus(t, e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a)), http.StatusOK, "")
			return a
		}},
		{name: "replayed jti in a new assertion", build: func(e *env) string {
			c := e.assertionClaims(certClient)
			wantStatus(t, e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, sign(t, jwt.SigningMethodRS256, key, cert, c, nil))), http.StatusOK, "")
			e.clock.Advance(time.Second)
			c["exp"] = e.clock.Now().Add(time.Minute).Unix()
			return sign(t, jwt.SigningMethodPS256, key, cert, c, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, techpasssim.Config{}, certNamespace(cert))
			a := tt.build(e)
			r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a))
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", r.status, r.body)
			}
			te := r.tokenError(t)
			if te.Error != "invalid_client" || !slices.Equal(te.Codes, []int{700027}) {
				t.Errorf("error = %s %v, want invalid_client [700027]", te.Error, te.Codes)
			}
			if strings.Contains(string(r.body), a) {
				t.Errorf("error body echoes the assertion: %s", r.body)
			}
		})
	}
}

func TestAssertionFormErrors(t *testing.T) {
	cert, key := newCert(t)
	t.Run("wrong assertion type", func(t *testing.T) {
		e := newEnv(t, techpasssim.Config{}, certNamespace(cert))
		a := sign(t, jwt.SigningMethodRS256, key, cert, e.assertionClaims(certClient), nil)
		f := e.assertionForm(certClient, a)
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		r := e.postForm(e.tokenURL(testDir), f)
		if r.status != http.StatusBadRequest || r.tokenError(t).Error != "invalid_request" {
			t.Errorf("status %d %s, want 400 invalid_request", r.status, r.body)
		}
		if strings.Contains(string(r.body), a) {
			t.Errorf("error body echoes the assertion: %s", r.body)
		}
		// The refused request did not consume the assertion's jti.
		wantStatus(t, e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a)), http.StatusOK, "")
	})
	t.Run("assertion for a client without certificate", func(t *testing.T) {
		e := newEnv(t, techpasssim.Config{})
		a := sign(t, jwt.SigningMethodRS256, key, cert, e.assertionClaims(shipClient), nil)
		r := e.postForm(e.tokenURL(testDir), e.assertionForm(shipClient, a))
		if r.status != http.StatusUnauthorized || r.tokenError(t).Error != "invalid_client" {
			t.Errorf("status %d %s, want 401 invalid_client", r.status, r.body)
		}
	})
}

// TestAssertionRollover: with two certificates registered (a rollover in
// progress), an assertion by either is accepted; with KeyByKID the key is
// chosen by the kid header alone, and a kid naming no registered
// certificate, or none, is refused.
func TestAssertionRollover(t *testing.T) {
	oldCert, oldKey := newCert(t)
	nextCert, nextKey := newCert(t)
	stranger, strangerKey := newCert(t)
	for _, byKID := range []bool{false, true} {
		e := newEnv(t, techpasssim.Config{KeyByKID: byKID}, certNamespace(oldCert))
		if err := e.sim.AddCertificate("CERT", nextCert); err != nil {
			t.Fatal(err)
		}
		for i, c := range []struct {
			cert *x509.Certificate
			key  any
		}{{oldCert, oldKey}, {nextCert, nextKey}} {
			kid, _ := techpasssim.Thumbprints(c.cert)
			a := sign(t, jwt.SigningMethodRS256, c.key, c.cert, e.assertionClaims(certClient), map[string]any{"kid": kid})
			wantStatus(t, e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a)), http.StatusOK, "")
			if byKID {
				// By kid alone: the thumbprint headers are not needed.
				a := sign(t, jwt.SigningMethodRS256, c.key, nil, e.assertionClaims(certClient), map[string]any{"kid": kid})
				if r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a)); r.status != http.StatusOK {
					t.Errorf("certificate %d by kid only: %d %s", i, r.status, r.body)
				}
			}
		}
		kid, _ := techpasssim.Thumbprints(stranger)
		a := sign(t, jwt.SigningMethodRS256, strangerKey, stranger, e.assertionClaims(certClient), map[string]any{"kid": kid})
		if r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a)); r.status != http.StatusUnauthorized {
			t.Errorf("by kid %v: an unregistered certificate: %d", byKID, r.status)
		}
		if byKID {
			a := sign(t, jwt.SigningMethodRS256, oldKey, oldCert, e.assertionClaims(certClient), nil)
			if r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, a)); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "kid") {
				t.Errorf("no kid: %d %s", r.status, r.body)
			}
		}
	}
}

// TestAssertionNotYetValid: an nbf or iat in the token endpoint's future is
// refused with AADSTS700024 (not within its valid time range).
func TestAssertionNotYetValid(t *testing.T) {
	cert, key := newCert(t)
	for _, claim := range []string{"nbf", "iat"} {
		e := newEnv(t, techpasssim.Config{}, certNamespace(cert))
		c := e.assertionClaims(certClient)
		c[claim] = e.clock.Now().Add(time.Minute).Unix()
		r := e.postForm(e.tokenURL(testDir), e.assertionForm(certClient, sign(t, jwt.SigningMethodRS256, key, cert, c, nil)))
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s in the future: status %d, want 400", claim, r.status)
		}
		if te := r.tokenError(t); te.Error != "invalid_client" || !slices.Equal(te.Codes, []int{techpasssim.AADSTSNotYetValid}) {
			t.Errorf("%s in the future: %s %v", claim, te.Error, te.Codes)
		}
	}
}
