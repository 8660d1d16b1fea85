package jwtauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/jwtauth"
)

func TestJWKSKidRotation(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "key1", rsaKey1().Public()))
	clk := newClock()
	v := newVerifier(clk)
	p := jwksProvider(srv.KeysURL())

	mustVerify(t, v, p, sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(nil)))
	if srv.Hits() != 1 {
		t.Fatalf("hits = %d, want 1", srv.Hits())
	}

	// The provider rotates: key2 is published, and tokens name it. The
	// unknown kid makes the verifier fetch again at once.
	clk.Advance(jwtauth.DefaultJWKSMinInterval)
	srv.SetKeys(t, jwkOf(t, "key1", rsaKey1().Public()), jwkOf(t, "key2", rsaKey2().Public()))
	got := mustVerify(t, v, p, sign(t, jwt.SigningMethodRS256, rsaKey2(), "key2", claims(nil)))
	if got.KeyID != "key2" || srv.Hits() != 2 {
		t.Fatalf("KeyID = %q, hits = %d; want key2, 2", got.KeyID, srv.Hits())
	}

	// key1 is retired at the provider; once the cache is refreshed, its
	// tokens are refused.
	srv.SetKeys(t, jwkOf(t, "key2", rsaKey2().Public()))
	clk.Advance(jwtauth.DefaultJWKSRefresh)
	old := sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(map[string]any{"exp": clk.Now().Add(time.Hour).Unix()}))
	mustVerify(t, v, p, old) // still cached: served at once, refresh in the background
	testkit.Eventually(t, 5*time.Second, "the background refresh", func() bool {
		_, err := v.Verify(context.Background(), p, old)
		return err != nil
	})
	if srv.Hits() != 3 {
		t.Fatalf("hits = %d, want 3", srv.Hits())
	}
	_, err := v.Verify(context.Background(), p, old)
	checkRejected(t, err, old, `no key with kid "key1"`)
}

// TestJWKSRefetchRateLimit walks a timeline of tokens with unknown kids:
// the JWKS is fetched at most once per JWKSMinInterval however many arrive.
func TestJWKSRefetchRateLimit(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "key1", ecKey256().Public()))
	clk := newClock()
	v := newVerifier(clk)
	p := jwksProvider(srv.KeysURL())

	steps := []struct {
		advance  time.Duration
		kid      string
		n        int // tokens sent at this step
		want     string
		wantHits int64
	}{
		{0, "key1", 1, "", 1},
		{time.Second, "made-up", 20, `no key with kid "made-up"`, 1},          // 1s after the first fetch
		{29 * time.Second, "made-up", 20, `no key with kid "made-up"`, 2},     // 30s: one refetch for all 20
		{10 * time.Second, "made-up-2", 20, `no key with kid "made-up-2"`, 2}, // 10s after it
		{18 * time.Second, "key1", 5, "", 2},                                  // known kids never fetch
		{time.Second, "made-up-3", 5, "no key with kid", 2},                   // 29s
		{time.Second, "made-up-4", 5, "no key with kid", 3},                   // 30s
		{time.Second, "made-up-5", 5, "no key with kid", 3},
		{jwtauth.DefaultJWKSMinInterval, "", 3, "", 3}, // no kid, one key in the set: it is used
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		for range st.n {
			tok := sign(t, jwt.SigningMethodES256, ecKey256(), st.kid, claims(nil))
			_, err := v.Verify(context.Background(), p, tok)
			checkVerdict(t, err, tok, st.want)
		}
		if got := srv.Hits(); got != st.wantHits {
			t.Fatalf("step %d: hits = %d, want %d", i, got, st.wantHits)
		}
	}
}

func TestJWKSDownUsesCachedKeys(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "key1", edKey().Public()))
	clk := newClock()
	v := newVerifier(clk)
	p := jwksProvider(srv.KeysURL(), "EdDSA")
	tok := func() string {
		return sign(t, jwt.SigningMethodEdDSA, edKey(), "key1", claims(map[string]any{"exp": clk.Now().Add(time.Minute).Unix()}))
	}
	mustVerify(t, v, p, tok())

	srv.SetStatus(http.StatusServiceUnavailable)
	clk.Advance(jwtauth.DefaultJWKSRefresh + time.Second) // stale: a refresh is due
	mustVerify(t, v, p, tok())
	testkit.Eventually(t, 5*time.Second, "the refresh attempt", func() bool { return srv.Hits() == 2 })
	mustVerify(t, v, p, tok()) // the failed refresh kept the old keys

	// An unknown kid while the provider is down: refused for the kid, not
	// for the outage, since keys are cached.
	clk.Advance(jwtauth.DefaultJWKSMinInterval)
	unknown := sign(t, jwt.SigningMethodEdDSA, edKey(), "key9", claims(map[string]any{"exp": clk.Now().Add(time.Minute).Unix()}))
	_, err := v.Verify(context.Background(), p, unknown)
	checkRejected(t, err, unknown, `no key with kid "key9"`)
	if errors.Is(err, jwtauth.ErrKeysUnavailable) {
		t.Errorf("err = %v, want no ErrKeysUnavailable with keys cached", err)
	}
	mustVerify(t, v, p, tok())
}

func TestJWKSUnavailableFromStart(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "key1", rsaKey1().Public()))
	srv.SetStatus(http.StatusInternalServerError)
	clk := newClock()
	v := newVerifier(clk)
	p := jwksProvider(srv.KeysURL())
	tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(map[string]any{"exp": t0.Add(time.Hour).Unix()}))

	for i := range 5 {
		_, err := v.Verify(context.Background(), p, tok)
		checkRejected(t, err, tok, "status 500")
		if !errors.Is(err, jwtauth.ErrKeysUnavailable) {
			t.Fatalf("try %d: err = %v, want ErrKeysUnavailable", i, err)
		}
	}
	if srv.Hits() != 1 {
		t.Fatalf("hits = %d, want 1: failed fetches are rate-limited too", srv.Hits())
	}

	srv.SetStatus(http.StatusOK)
	clk.Advance(jwtauth.DefaultJWKSMinInterval)
	mustVerify(t, v, p, tok)
	if srv.Hits() != 2 {
		t.Fatalf("hits = %d, want 2", srv.Hits())
	}
}

func TestJWKSKeySelection(t *testing.T) {
	encKey := jwkOf(t, "enc", rsaKey2().Public())
	encKey["use"] = "enc"
	withPrivate := jwkOf(t, "leaked", rsaKey2().Public())
	withPrivate["d"] = "AQAB"
	pinned := jwkOf(t, "pinned", rsaKey1().Public())
	pinned["alg"] = "RS256"
	oaep := jwkOf(t, "oaep", rsaKey2().Public())
	oaep["alg"] = "RSA-OAEP"
	delete(oaep, "use")
	verifyOnly := jwkOf(t, "ops", ecKey256().Public())
	verifyOnly["key_ops"] = []string{"verify"}
	delete(verifyOnly, "use")
	encryptOps := jwkOf(t, "encrypt-ops", ecKey256().Public())
	encryptOps["key_ops"] = []string{"encrypt"}
	weak := jwkOf(t, "weak", mustRSA(1024).Public())
	badCurve := jwkOf(t, "bad-point", ecKey256().Public())
	badCurve["y"] = badCurve["x"]
	p384 := jwkOf(t, "p384", ecKey384().Public())
	ed := jwkOf(t, "ed", edKey().Public())

	srv := newJWKSServer(t,
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, // unsupported kty
		map[string]any{"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
		map[string]any{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
		map[string]any{"kty": 7},
		encKey, withPrivate, pinned, oaep, verifyOnly, encryptOps, weak, badCurve, p384, ed,
	)
	v := newVerifier(newClock())
	p := jwksProvider(srv.KeysURL(), "RS256", "PS256", "ES256", "ES384", "EdDSA")

	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
		want   string // "" to accept
	}{
		{"pinned key with its alg", jwt.SigningMethodRS256, rsaKey1(), "pinned", ""},
		{"pinned key with another alg", jwt.SigningMethodPS256, rsaKey1(), "pinned", `kid "pinned" fits algorithm PS256`},
		{"key_ops verify", jwt.SigningMethodES256, ecKey256(), "ops", ""},
		{"P-384 with ES384", jwt.SigningMethodES384, ecKey384(), "p384", ""},
		{"Ed25519", jwt.SigningMethodEdDSA, edKey(), "ed", ""},
		{"P-384 key named by an ES256 token", jwt.SigningMethodES256, ecKey256(), "p384", `kid "p384" fits algorithm ES256`},
		{"Ed25519 key named by an RS256 token", jwt.SigningMethodRS256, rsaKey1(), "ed", `kid "ed" fits algorithm RS256`},
		{"encryption key skipped", jwt.SigningMethodRS256, rsaKey2(), "enc", `no key with kid "enc"`},
		{"RSA-OAEP key skipped", jwt.SigningMethodRS256, rsaKey2(), "oaep", `no key with kid "oaep"`},
		{"key_ops encrypt skipped", jwt.SigningMethodES256, ecKey256(), "encrypt-ops", `no key with kid "encrypt-ops"`},
		{"published private key skipped", jwt.SigningMethodRS256, rsaKey2(), "leaked", `no key with kid "leaked"`},
		{"weak RSA key skipped", jwt.SigningMethodRS256, rsaKey2(), "weak", `no key with kid "weak"`},
		{"point off the curve skipped", jwt.SigningMethodES256, ecKey256(), "bad-point", `no key with kid "bad-point"`},
		{"oct key skipped", jwt.SigningMethodHS256, []byte("secret"), "hmac", `"HS256" is not allowed`},
		{"no kid with several keys", jwt.SigningMethodRS256, rsaKey1(), "", "no kid and the provider's JWKS holds 4 keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, tt.method, tt.key, tt.kid, claims(nil))
			_, err := v.Verify(context.Background(), p, tok)
			checkVerdict(t, err, tok, tt.want)
		})
	}
}

func TestJWKSDocumentErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		want string
	}{
		{"not JSON", []byte("<html>sign in</html>"), "not a JWK Set"},
		{"no keys member", []byte(`{"kid":"x"}`), "not a JWK Set"},
		{"keys not an array", []byte(`{"keys":{}}`), "not a JWK Set"},
		{"too large", []byte(`{"keys":[],"pad":"` + strings.Repeat("x", jwtauth.MaxJWKSSize) + `"}`), "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t)
			srv.SetDoc(tt.doc)
			v := newVerifier(newClock())
			tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "k", claims(nil))
			_, err := v.Verify(context.Background(), jwksProvider(srv.KeysURL()), tok)
			checkRejected(t, err, tok, tt.want)
			if !errors.Is(err, jwtauth.ErrKeysUnavailable) {
				t.Fatalf("err = %v, want ErrKeysUnavailable", err)
			}
		})
	}

	t.Run("empty set", func(t *testing.T) {
		srv := newJWKSServer(t)
		v := newVerifier(newClock())
		tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "", claims(nil))
		_, err := v.Verify(context.Background(), jwksProvider(srv.KeysURL()), tok)
		checkRejected(t, err, tok, "holds 0 keys")
	})
}

func TestJWKSSingleFlight(t *testing.T) {
	srv, release, tok := heldJWKS(t)
	v := newVerifier(newClock())
	p := jwksProvider(srv.KeysURL())

	const n = 50
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), p, tok)
			errs <- err
		})
	}
	testkit.Eventually(t, 5*time.Second, "the first fetch", func() bool { return srv.Hits() >= 1 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if srv.Hits() != 1 {
		t.Fatalf("hits = %d, want 1", srv.Hits())
	}
}

// TestJWKSCancelledWait checks a request gives up when its context ends,
// while the fetch it started completes for the next requests.
func TestJWKSCancelledWait(t *testing.T) {
	srv, release, tok := heldJWKS(t)
	v := newVerifier(newClock())
	p := jwksProvider(srv.KeysURL())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, p, tok)
		done <- err
	}()
	testkit.Eventually(t, 5*time.Second, "the fetch", func() bool { return srv.Hits() == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, jwtauth.ErrKeysUnavailable) || !errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Fatalf("err = %v, want canceled, keys unavailable, invalid token", err)
	}
	release()
	mustVerify(t, v, p, tok)
	if srv.Hits() != 1 {
		t.Fatalf("hits = %d, want 1: the first fetch was not abandoned", srv.Hits())
	}
}

func TestJWKSFetchTimeout(t *testing.T) {
	srv, _, tok := heldJWKS(t)
	v := jwtauth.NewVerifier(jwtauth.Options{Now: newClock().Now, FetchTimeout: 50 * time.Millisecond, AllowLoopback: true})
	_, err := v.Verify(context.Background(), jwksProvider(srv.KeysURL()), tok)
	checkRejected(t, err, tok, "JWKS fetch")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, jwtauth.ErrKeysUnavailable) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if strings.Contains(err.Error(), srv.URL) {
		t.Errorf("err = %v names the URL", err)
	}
}

func TestJWKSOverTLS(t *testing.T) {
	doc := newJWKSServer(t, jwkOf(t, "key1", rsaKey1().Public()))
	srv := httptest.NewTLSServer(doc.Config.Handler)
	t.Cleanup(srv.Close)
	v := jwtauth.NewVerifier(jwtauth.Options{Now: newClock().Now, HTTPClient: srv.Client(), AllowLoopback: true})
	p := jwksProvider(srv.URL + "/.well-known/jwks.json")
	if err := v.Validate(p); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, p, sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(nil)))
}

func TestJWKSRedirects(t *testing.T) {
	keys := newJWKSServer(t, jwkOf(t, "key1", rsaKey1().Public()))
	tests := []struct {
		name   string
		target func(r *http.Request) string
		want   string // "" to accept
	}{
		{"to loopback", func(*http.Request) string { return keys.KeysURL() }, ""},
		{"to plain http elsewhere", func(*http.Request) string { return "http://jwks.example.invalid/keys" }, "must use https"},
		{"in a loop", func(r *http.Request) string { return "/loop" }, "too many redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tt.target(r), http.StatusFound)
			}))
			t.Cleanup(srv.Close)
			v := newVerifier(newClock())
			tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "key1", claims(nil))
			_, err := v.Verify(context.Background(), jwksProvider(srv.URL+"/start"), tok)
			checkVerdict(t, err, tok, tt.want)
		})
	}
}

// TestJWKSCachePerURL checks two providers do not share keys.
func TestJWKSCachePerURL(t *testing.T) {
	a := newJWKSServer(t, jwkOf(t, "k", rsaKey1().Public()))
	b := newJWKSServer(t, jwkOf(t, "k", rsaKey2().Public()))
	v := newVerifier(newClock())
	tokA := sign(t, jwt.SigningMethodRS256, rsaKey1(), "k", claims(nil))
	mustVerify(t, v, jwksProvider(a.KeysURL()), tokA)
	_, err := v.Verify(context.Background(), jwksProvider(b.KeysURL()), tokA)
	checkRejected(t, err, tokA, "signature does not verify")
	mustVerify(t, v, jwksProvider(b.KeysURL()), sign(t, jwt.SigningMethodRS256, rsaKey2(), "k", claims(nil)))
}
