package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/fakedns"
)

// registerJWKS gives project SHIP/MOH an identity provider with jwksUrl
// and returns the response.
func (g *gateway) registerJWKS(issuer, jwksURL string) response {
	g.t.Helper()
	return g.do("PATCH", "/v1/tenants/SHIP/projects/MOH", "operator", map[string]any{
		"identity": map[string]any{"issuer": issuer, "audience": "groupgate", "jwksUrl": jwksURL},
	})
}

// bearerJWT signs a token for issuer with key (kid k1).
func bearerJWT(t *testing.T, key *rsa.PrivateKey, issuer string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": issuer, "aud": "groupgate", "sub": "svc",
		"exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// TestJWKSURLRefusedAtRegistration: a jwksUrl on loopback, a private,
// link-local, CGNAT or otherwise internal address is refused with a 422
// naming identity.jwksUrl, and nothing is registered.
func TestJWKSURLRefusedAtRegistration(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, u := range []string{
		"http://127.0.0.1:8080/keys", "https://127.0.0.1:9000/anything", "https://localhost/keys", "https://[::1]/keys",
		"https://[::ffff:127.0.0.1]/keys", "https://10.0.0.5/keys", "https://192.168.1.1/keys", "https://172.20.0.1/keys",
		"https://169.254.169.254/latest/meta-data/", "https://100.64.0.1/keys", "https://[fd00::1]/keys",
		"https://[fe80::1]/keys", "https://0.0.0.0/keys", "https://224.0.0.1/keys", "https://2130706433/keys",
		"http://idp.moh.example/keys",
	} {
		r := g.registerJWKS("https://idp.moh.example", u)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s, want 422", u, r.status, r.body)
			continue
		}
		p := r.problem(t)
		if p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Field != "identity.jwksUrl" {
			t.Errorf("%s: problem %s does not name identity.jwksUrl", u, r.body)
		}
	}
	var pr api.Project
	g.do("GET", "/v1/tenants/SHIP/projects/MOH", "operator", nil).decode(t, &pr)
	if pr.Identity != nil {
		t.Errorf("a refused identity was registered: %+v", pr.Identity)
	}
}

// TestJWKSDialRefusedAfterResolution: a public-looking jwksUrl passes
// registration, but its name resolves to loopback; a token naming its
// issuer makes the gateway try to fetch it, and the dial is refused before
// any connection is made. With allow_loopback_jwks, the same name is
// dialled (so the refusal is the policy's).
func TestJWKSDialRefusedAfterResolution(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	resolver := fakedns.Resolver(map[string][]netip.Addr{"jwks.moh.example": {netip.MustParseAddr("127.0.0.1")}})
	url := "https://jwks.moh.example:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/keys"
	key, _ := rsa.GenerateKey(rand.Reader, 2048)

	for _, allow := range []bool{false, true} {
		g := startGateway(t, gatewayOptions{resolver: resolver, mutate: func(c *config.Config) { c.AllowLoopbackJWKS = allow }})
		if r := g.registerJWKS("https://idp.moh.example", url); r.status != http.StatusOK {
			t.Fatalf("register %s: %d %s", url, r.status, r.body)
		}
		before := accepted.Load()
		if r := g.do("GET", groupsPath("SHIP", "MOH"), bearerJWT(t, key, "https://idp.moh.example"), nil); r.status != http.StatusUnauthorized {
			t.Fatalf("token with unfetchable keys: %d %s", r.status, r.body)
		}
		switch n := accepted.Load() - before; {
		case !allow && n != 0:
			t.Errorf("the gateway connected %d times to a name resolving to loopback", n)
		case allow && n == 0:
			t.Errorf("with allow_loopback_jwks the gateway did not dial: the test proves nothing")
		}
		g.stop()
	}
}

// TestJWKSOnLoopbackWhenAllowed: with allow_loopback_jwks (as tests and
// local development use), a provider publishing keys on loopback over http
// works end to end.
func TestJWKSOnLoopbackWhenAllowed(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig", "n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(jwks.Close)
	g := startGateway(t, gatewayOptions{mutate: func(c *config.Config) { c.AllowLoopbackJWKS = true }})
	if r := g.registerJWKS("https://idp.moh.example", jwks.URL+"/keys"); r.status != http.StatusOK {
		t.Fatalf("register a loopback JWKS with allow_loopback_jwks: %d %s", r.status, r.body)
	}
	if r := g.do("GET", groupsPath("SHIP", "MOH"), bearerJWT(t, key, "https://idp.moh.example"), nil); r.status != http.StatusOK {
		t.Fatalf("JWT with keys from a loopback JWKS: %d %s", r.status, r.body)
	}
}
