package jwtauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/jwtauth"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://idp.example.com/realms/team-a"
	testAudience = "groupgate"
)

// Keys are generated once per test binary: RSA generation is slow under
// -race.
var (
	rsaKey1  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	rsaEvil  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	ecKey256 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	ecKey384 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
	ecEvil   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	edKey    = sync.OnceValue(mustEd)
)

func mustEd() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// publicOf returns the public half of a private key.
func publicOf(priv crypto.Signer) crypto.PublicKey { return priv.Public() }

// pemOf encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func pemOf(tb testing.TB, pub crypto.PublicKey) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// newClock returns a settable clock at t0, for Options.Now.
func newClock() *testkit.Clock { return testkit.NewClock(t0) }

// claims returns valid claims for testIssuer and testAudience at t0, with
// changes applied: a nil value deletes the claim.
func claims(changes map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "svc-deployer",
		"iat": t0.Add(-time.Minute).Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(),
		"jti": "id-1",
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs claims with method and key; kid is set in the header unless
// empty.
func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// b64 encodes a JWS segment.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rawToken assembles a token from a header, claims and a signature, without
// signing anything.
func rawToken(tb testing.TB, hdr map[string]any, c jwt.MapClaims, sig []byte) string {
	tb.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(h) + "." + b64(p) + "." + b64(sig)
}

// jwkOf writes a public key as a JWK with the given kid.
func jwkOf(tb testing.TB, kid string, pub crypto.PublicKey) map[string]any {
	tb.Helper()
	k := map[string]any{"kid": kid, "use": "sig"}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		k["kty"] = "RSA"
		k["n"] = b64(p.N.Bytes())
		k["e"] = b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		k["kty"] = "EC"
		k["crv"] = p.Curve.Params().Name
		k["x"] = b64(raw[1 : 1+size])
		k["y"] = b64(raw[1+size:])
	case ed25519.PublicKey:
		k["kty"] = "OKP"
		k["crv"] = "Ed25519"
		k["x"] = b64(p)
	default:
		tb.Fatalf("unsupported key %T", pub)
	}
	return k
}

// jwksServer is a real HTTP JWKS endpoint whose keys and health the test
// changes, and which counts its hits.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	doc    []byte        // the body served
	status int           // when not 200, served instead of doc
	hold   chan struct{} // if set, requests wait until it is closed
}

// newJWKSServer starts a JWKS server (plain http on loopback) serving keys.
func newJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.SetKeys(tb, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	doc, status, hold := s.doc, s.status, s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if status != http.StatusOK {
		http.Error(w, "unavailable", status)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(doc)
}

// SetKeys replaces the published keys.
func (s *jwksServer) SetKeys(tb testing.TB, keys ...map[string]any) {
	tb.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	s.SetDoc(doc)
}

// SetDoc replaces the served body verbatim.
func (s *jwksServer) SetDoc(doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = doc
}

// SetStatus makes the server answer status (200 restores it).
func (s *jwksServer) SetStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// Hold makes requests wait until the returned function is called.
func (s *jwksServer) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Hits returns how many requests the server has received.
func (s *jwksServer) Hits() int64 { return s.hits.Load() }

// KeysURL is the JWKS URL.
func (s *jwksServer) KeysURL() string { return s.URL + "/keys" }

// heldJWKS starts a JWKS server publishing ecKey256 as key1, whose
// requests wait until release is called (at the latest when the test
// ends), and returns it with a token signed by key1.
func heldJWKS(t *testing.T) (srv *jwksServer, release func(), token string) {
	t.Helper()
	srv = newJWKSServer(t, jwkOf(t, "key1", ecKey256().Public()))
	release = srv.Hold()
	t.Cleanup(release)
	return srv, release, sign(t, jwt.SigningMethodES256, ecKey256(), "key1", claims(nil))
}

// pemProvider is a valid provider with PEM keys.
func pemProvider(tb testing.TB, algs []string, pubs ...crypto.PublicKey) jwtauth.Provider {
	tb.Helper()
	p := jwtauth.Provider{Issuer: testIssuer, Audience: testAudience, Algorithms: algs}
	for _, pub := range pubs {
		p.PublicKeys = append(p.PublicKeys, pemOf(tb, pub))
	}
	return p
}

// jwksProvider is a valid provider using the JWKS at url.
func jwksProvider(url string, algs ...string) jwtauth.Provider {
	return jwtauth.Provider{Issuer: testIssuer, Audience: testAudience, JWKSURL: url, Algorithms: algs}
}

// newVerifier returns a verifier on clk that accepts the loopback JWKS
// servers of these tests (Options.AllowLoopback).
func newVerifier(clk *testkit.Clock) *jwtauth.Verifier {
	return jwtauth.NewVerifier(jwtauth.Options{Now: clk.Now, AllowLoopback: true})
}

// mustVerify verifies a token that must be accepted.
func mustVerify(tb testing.TB, v *jwtauth.Verifier, p jwtauth.Provider, token string) jwtauth.Claims {
	tb.Helper()
	c, err := v.Verify(context.Background(), p, token)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return c
}

// checkRejected asserts err rejects token for a reason containing want, and
// does not leak the token or any of its segments.
func checkRejected(tb testing.TB, err error, token, want string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("token accepted; want rejection (%s)", want)
	}
	if !errors.Is(err, jwtauth.ErrInvalidToken) {
		tb.Fatalf("error %q does not wrap ErrInvalidToken", err)
	}
	if !strings.Contains(err.Error(), want) {
		tb.Fatalf("error %q does not mention %q", err, want)
	}
	checkNoLeak(tb, err, token)
}

// checkVerdict asserts Verify's err for token: accepted when want is empty,
// otherwise rejected as checkRejected says.
func checkVerdict(tb testing.TB, err error, token, want string) {
	tb.Helper()
	if want == "" {
		if err != nil {
			tb.Fatalf("token rejected: %v", err)
		}
		return
	}
	checkRejected(tb, err, token, want)
}

// checkNoLeak asserts the error quotes no part of the token longer than a
// few characters.
func checkNoLeak(tb testing.TB, err error, token string) {
	tb.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 16 && strings.Contains(msg, seg) {
			tb.Fatalf("error %q contains a token segment", msg)
		}
	}
}
