package jwtauth_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/jwtauth"
)

// signer is one algorithm and the key signing with it.
type signer struct {
	name   string
	method jwt.SigningMethod
	priv   func() crypto.Signer
	decoy  func() crypto.Signer // another key of the same type, listed first
}

var signers = []signer{
	{"RS256", jwt.SigningMethodRS256, func() crypto.Signer { return rsaKey1() }, func() crypto.Signer { return rsaEvil() }},
	{"PS256", jwt.SigningMethodPS256, func() crypto.Signer { return rsaKey1() }, func() crypto.Signer { return rsaEvil() }},
	{"RS512", jwt.SigningMethodRS512, func() crypto.Signer { return rsaKey1() }, func() crypto.Signer { return rsaEvil() }},
	{"ES256", jwt.SigningMethodES256, func() crypto.Signer { return ecKey256() }, func() crypto.Signer { return ecEvil() }},
	{"ES384", jwt.SigningMethodES384, func() crypto.Signer { return ecKey384() }, func() crypto.Signer { return mustEC(elliptic.P384()) }},
	{"EdDSA", jwt.SigningMethodEdDSA, func() crypto.Signer { return edKey() }, func() crypto.Signer { return mustEd() }},
}

func TestVerifyValid(t *testing.T) {
	for _, s := range signers {
		algs := []string{s.name}
		pub := publicOf(s.priv())
		t.Run(s.name+"/PEM", func(t *testing.T) {
			v := newVerifier(newClock())
			tok := sign(t, s.method, s.priv(), "", claims(nil))
			got := mustVerify(t, v, pemProvider(t, algs, s.decoy().Public(), pub), tok)
			checkClaims(t, got, s.name, "")
		})
		t.Run(s.name+"/JWKS", func(t *testing.T) {
			srv := newJWKSServer(t, jwkOf(t, "other", s.decoy().Public()), jwkOf(t, "k1", pub))
			v := newVerifier(newClock())
			tok := sign(t, s.method, s.priv(), "k1", claims(nil))
			got := mustVerify(t, v, jwksProvider(srv.KeysURL(), algs...), tok)
			checkClaims(t, got, s.name, "k1")
		})
	}
}

func checkClaims(t *testing.T, got jwtauth.Claims, alg, kid string) {
	t.Helper()
	want := jwtauth.Claims{
		Issuer:    testIssuer,
		Subject:   "svc-deployer",
		Audience:  []string{testAudience},
		ExpiresAt: t0.Add(5 * time.Minute),
		IssuedAt:  t0.Add(-time.Minute),
		ID:        "id-1",
		Algorithm: alg,
		KeyID:     kid,
	}
	raw := got.Raw
	got.Raw = nil
	if g, w := asJSON(t, got), asJSON(t, want); g != w {
		t.Errorf("claims\n got %s\nwant %s", g, w)
	}
	if raw["jti"] != "id-1" || raw["exp"] != json.Number("1772366700") {
		t.Errorf("Raw = %v", raw)
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVerifyRejects walks tokens that must be refused by a PEM provider with
// the RSA and P-256 keys, checking each fails for its own reason.
func TestVerifyRejects(t *testing.T) {
	p := pemProvider(t, nil, rsaKey1().Public(), ecKey256().Public())
	pubPEM := p.PublicKeys[0]
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKey1(), "", c) }
	payload := claims(nil)

	tests := []struct {
		name  string
		token string
		want  string
		p     *jwtauth.Provider // default p
	}{
		{"signed by another RSA key", sign(t, jwt.SigningMethodRS256, rsaEvil(), "", payload), "signature does not verify", nil},
		{"signed by another EC key", sign(t, jwt.SigningMethodES256, ecEvil(), "", payload), "signature does not verify", nil},
		{"signature of another token", swapSignature(rs(payload), rs(claims(map[string]any{"sub": "admin"}))), "signature does not verify", nil},
		{"tampered payload", tamperPayload(t, rs(payload)), "signature does not verify", nil},
		{"empty signature", stripSignature(rs(payload)), "signature does not verify", nil},
		{"wrong issuer", rs(claims(map[string]any{"iss": "https://evil.example.com"})), "iss does not match", nil},
		{"issuer differs by a slash", rs(claims(map[string]any{"iss": testIssuer + "/"})), "iss does not match", nil},
		{"issuer missing", rs(claims(map[string]any{"iss": nil})), "iss does not match", nil},
		{"issuer not a string", rs(claims(map[string]any{"iss": 42})), "iss does not match", nil},
		{"wrong audience", rs(claims(map[string]any{"aud": "someone-else"})), "aud does not contain", nil},
		{"audience list without ours", rs(claims(map[string]any{"aud": []string{"a", "b"}})), "aud does not contain", nil},
		{"audience missing", rs(claims(map[string]any{"aud": nil})), "aud is missing", nil},
		{"audience list with a number", rs(claims(map[string]any{"aud": []any{testAudience, 1}})), "aud is missing or not", nil},
		{"expired beyond skew", rs(claims(map[string]any{"exp": t0.Add(-61 * time.Second).Unix()})), "expired", nil},
		{"expired exactly at skew", rs(claims(map[string]any{"exp": t0.Add(-60 * time.Second).Unix()})), "expired", nil},
		{"exp missing", rs(claims(map[string]any{"exp": nil})), "exp is required", nil},
		{"exp a string", rs(claims(map[string]any{"exp": "tomorrow"})), "exp is not a number", nil},
		{"exp absurd", rs(claims(map[string]any{"exp": 1e300})), "exp is out of range", nil},
		{"exp negative", rs(claims(map[string]any{"exp": -1})), "exp is out of range", nil},
		{"nbf beyond skew", rs(claims(map[string]any{"nbf": t0.Add(61 * time.Second).Unix()})), "not valid for another", nil},
		{"iat beyond skew", rs(claims(map[string]any{"iat": t0.Add(2 * time.Minute).Unix()})), "issued in the future", nil},
		{"subject missing", rs(claims(map[string]any{"sub": nil})), `subject claim "sub" is missing`, nil},
		{"subject empty", rs(claims(map[string]any{"sub": ""})), `subject claim "sub" is missing`, nil},
		{"subject a number", rs(claims(map[string]any{"sub": 7})), `subject claim "sub" is missing`, nil},
		{"subject with a newline", rs(claims(map[string]any{"sub": "svc\nadmin"})), "not printable", nil},
		{"subject too long", rs(claims(map[string]any{"sub": strings.Repeat("s", 1025)})), "too long", nil},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "typ": "JWT"}, payload, nil), `algorithm "none" is not allowed`, nil},
		{"alg None", rawToken(t, map[string]any{"alg": "None"}, payload, nil), `algorithm "None" is not allowed`, nil},
		{"alg none with a signature", rawToken(t, map[string]any{"alg": "none"}, payload, []byte("x")), `"none" is not allowed`, nil},
		{"HS256 keyed with the public PEM", sign(t, jwt.SigningMethodHS256, []byte(pubPEM), "", payload), `"HS256" is not allowed`, nil},
		{"HS256 keyed with the public DER", sign(t, jwt.SigningMethodHS256, derOf(t, rsaKey1().Public()), "", payload), `"HS256" is not allowed`, nil},
		{"alg not in the allow-list", sign(t, jwt.SigningMethodRS384, rsaKey1(), "", payload), `"RS384" is not allowed`, nil},
		{"EdDSA not in the default allow-list", sign(t, jwt.SigningMethodEdDSA, edKey(), "", payload), `"EdDSA" is not allowed`, nil},
		{"ES256 with only RSA and P-384 keys", sign(t, jwt.SigningMethodES256, ecKey256(), "", payload), "no key of the provider fits algorithm ES256", ptr(pemProvider(t, []string{"RS256", "ES256", "ES384"}, rsaKey1().Public(), ecKey384().Public()))},
		{"ES384 not in the default allow-list", sign(t, jwt.SigningMethodES384, ecKey384(), "", payload), `"ES384" is not allowed`, nil},
		{"unknown alg", rawToken(t, map[string]any{"alg": "XYZ1"}, payload, []byte("sig")), `"XYZ1" is not allowed`, nil},
		{"no alg", rawToken(t, map[string]any{"typ": "JWT"}, payload, []byte("sig")), "no alg", nil},
		{"kid not a string", rawToken(t, map[string]any{"alg": "RS256", "kid": 3}, payload, []byte("sig")), "kid is not a string", nil},
		{"crit header", withHeader(t, rsaKey1(), jwt.SigningMethodRS256, map[string]any{"crit": []string{"exp"}, "exp": 1}), "critical extensions", nil},
		{"key embedded in the header", withHeader(t, rsaEvil(), jwt.SigningMethodRS256, map[string]any{"jwk": jwkOf(t, "", rsaEvil().Public())}), "signature does not verify", nil},
		{"key URL in the header", withHeader(t, rsaEvil(), jwt.SigningMethodRS256, map[string]any{"jku": "https://evil.example.com/keys"}), "signature does not verify", nil},
		{"oversized", rs(claims(map[string]any{"pad": strings.Repeat("x", jwtauth.MaxTokenSize)})), "larger than 16384 bytes", nil},
		{"empty", "", "empty", nil},
		{"garbage", "not a token", "three segments", nil},
		{"two segments", "eyJhbGciOiJSUzI1NiJ9.e30", "three segments", nil},
		{"four segments", rs(payload) + ".x", "three segments", nil},
		{"JWE-like five segments", "a.b.c.d.e", "three segments", nil},
		{"header not base64", "!!!." + strings.SplitN(rs(payload), ".", 2)[1], "not base64url", nil},
		{"header padded", padHeader(rs(payload)), "not base64url", nil},
		{"header not an object", b64([]byte(`["RS256"]`)) + ".e30.", "not a JSON object", nil},
		{"header null", b64([]byte(`null`)) + ".e30.", "not a JSON object", nil},
		{"payload not JSON", b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte("{")) + "." + b64([]byte("sig")), "malformed", nil},
		{"Bearer prefix left on", "Bearer " + rs(payload), "not base64url", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prov := p
			if tt.p != nil {
				prov = *tt.p
			}
			v := newVerifier(newClock())
			_, err := v.Verify(context.Background(), prov, tt.token)
			checkRejected(t, err, tt.token, tt.want)
			if errors.Is(err, jwtauth.ErrKeysUnavailable) || errors.Is(err, jwtauth.ErrInvalidProvider) {
				t.Errorf("error %q wraps the wrong sentinel", err)
			}
		})
	}
}

// TestVerifyTimeline walks one provider through times around a token's
// nbf, iat and exp, with the default 60s skew and with none.
func TestVerifyTimeline(t *testing.T) {
	p := pemProvider(t, nil, ecKey256().Public())
	tok := sign(t, jwt.SigningMethodES256, ecKey256(), "", claims(map[string]any{
		"nbf": t0.Unix(),
		"iat": t0.Unix(),
		"exp": t0.Add(10 * time.Minute).Unix(),
	}))
	tests := []struct {
		at   time.Duration // from t0
		skew time.Duration // Options.ClockSkew
		want string        // "" to accept
	}{
		{at: -61 * time.Second, want: "not valid for another 1m1s"},
		{at: -60 * time.Second, want: ""},
		{at: -59 * time.Second, want: ""},
		{at: -time.Second, skew: -1, want: "not valid for another 1s"},
		{at: 0, skew: -1, want: ""},
		{at: 10*time.Minute - time.Second, skew: -1, want: ""},
		{at: 10 * time.Minute, skew: -1, want: "expired 0s ago"},
		{at: 10*time.Minute + 59*time.Second, want: ""},
		{at: 10*time.Minute + 60*time.Second, want: "expired 1m0s ago"},
		{at: 10*time.Minute + 30*time.Second, skew: 10 * time.Second, want: "expired 30s ago"},
		{at: 24 * time.Hour, want: "expired 23h50m0s ago"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("at %v skew %v", tt.at, tt.skew), func(t *testing.T) {
			clk := newClock()
			clk.Advance(tt.at)
			v := jwtauth.NewVerifier(jwtauth.Options{Now: clk.Now, ClockSkew: tt.skew})
			_, err := v.Verify(context.Background(), p, tok)
			checkVerdict(t, err, tok, tt.want)
		})
	}
}

func TestVerifyMaxTokenAge(t *testing.T) {
	p := pemProvider(t, nil, ecKey256().Public())
	long := func(iat any) string {
		return sign(t, jwt.SigningMethodES256, ecKey256(), "", claims(map[string]any{"iat": iat, "exp": t0.Add(24 * time.Hour).Unix()}))
	}
	v := jwtauth.NewVerifier(jwtauth.Options{Now: newClock().Now, MaxTokenAge: time.Hour})
	mustVerify(t, v, p, long(t0.Add(-time.Hour).Unix()))
	_, err := v.Verify(context.Background(), p, long(t0.Add(-time.Hour-61*time.Second).Unix()))
	checkRejected(t, err, "", "issued more than 1h0m0s ago")
	_, err = v.Verify(context.Background(), p, long(nil))
	checkRejected(t, err, "", "iat is required")

	// Without MaxTokenAge a day-old iat is fine as long as exp is ahead.
	mustVerify(t, newVerifier(newClock()), p, long(t0.Add(-24*time.Hour).Unix()))
}

func TestVerifyClaimsOptions(t *testing.T) {
	base := pemProvider(t, nil, rsaKey1().Public())
	v := newVerifier(newClock())
	rs := func(c map[string]any) string { return sign(t, jwt.SigningMethodRS256, rsaKey1(), "", claims(c)) }

	t.Run("subject claim", func(t *testing.T) {
		p := base
		p.SubjectClaim = "azp"
		got := mustVerify(t, v, p, rs(map[string]any{"azp": "client-123"}))
		if got.Subject != "client-123" {
			t.Errorf("Subject = %q, want the azp claim", got.Subject)
		}
		_, err := v.Verify(context.Background(), p, rs(nil))
		checkRejected(t, err, "", `subject claim "azp" is missing`)
	})

	t.Run("required claims", func(t *testing.T) {
		p := base
		p.RequiredClaims = map[string]string{"azp": "client-123", "roles": "groupgate.write"}
		mustVerify(t, v, p, rs(map[string]any{"azp": "client-123", "roles": []string{"x", "groupgate.write"}}))
		mustVerify(t, v, p, rs(map[string]any{"azp": "client-123", "roles": "groupgate.write"}))
		for name, c := range map[string]map[string]any{
			"azp differs":          {"azp": "client-999", "roles": "groupgate.write"},
			"azp missing":          {"roles": "groupgate.write"},
			"azp case differs":     {"azp": "CLIENT-123", "roles": "groupgate.write"},
			"role not in the list": {"azp": "client-123", "roles": []string{"groupgate.read"}},
			"azp a number":         {"azp": 123, "roles": "groupgate.write"},
			"azp an object":        {"azp": map[string]any{"client-123": true}, "roles": "groupgate.write"},
		} {
			_, err := v.Verify(context.Background(), p, rs(c))
			if err == nil || !strings.Contains(err.Error(), "is missing or does not match") {
				t.Errorf("%s: err = %v", name, err)
			}
		}
	})

	t.Run("audience in a list", func(t *testing.T) {
		got := mustVerify(t, v, base, rs(map[string]any{"aud": []string{"other", testAudience}}))
		if len(got.Audience) != 2 {
			t.Errorf("Audience = %v", got.Audience)
		}
	})

	t.Run("fractional times", func(t *testing.T) {
		got := mustVerify(t, v, base, rs(map[string]any{"exp": float64(t0.Add(time.Minute).Unix()) + 0.5}))
		if want := t0.Add(time.Minute + 500*time.Millisecond); !got.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, want)
		}
	})

	t.Run("several PEM keys", func(t *testing.T) {
		p := pemProvider(t, []string{"RS256"}, rsaKey2().Public(), rsaKey1().Public())
		mustVerify(t, v, p, rs(nil))
		mustVerify(t, v, p, sign(t, jwt.SigningMethodRS256, rsaKey2(), "whatever", claims(nil)))
	})
}

func TestVerifyInvalidProvider(t *testing.T) {
	v := newVerifier(newClock())
	tok := sign(t, jwt.SigningMethodRS256, rsaKey1(), "", claims(nil))
	p := pemProvider(t, []string{"RS256", "HS256"}, rsaKey1().Public())
	_, err := v.Verify(context.Background(), p, tok)
	if !errors.Is(err, jwtauth.ErrInvalidProvider) || errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidProvider only", err)
	}
}

func TestIssuer(t *testing.T) {
	tok := sign(t, jwt.SigningMethodRS256, rsaEvil(), "", claims(nil))
	got, err := jwtauth.Issuer(tok)
	if err != nil || got != testIssuer {
		t.Fatalf("Issuer = %q, %v", got, err)
	}
	// Unverified: a token signed by anyone, or by no one, still yields its
	// iss.
	if got, err := jwtauth.Issuer(rawToken(t, map[string]any{"alg": "none"}, claims(nil), nil)); err != nil || got != testIssuer {
		t.Fatalf("Issuer(unsigned) = %q, %v", got, err)
	}

	for name, tok := range map[string]string{
		"empty":            "",
		"garbage":          "garbage",
		"two segments":     "a.b",
		"four segments":    "a.b.c.d",
		"payload not b64":  "e30.!!.x",
		"payload not JSON": "e30." + b64([]byte("{")) + ".x",
		"payload array":    "e30." + b64([]byte(`["iss"]`)) + ".x",
		"payload null":     "e30." + b64([]byte(`null`)) + ".x",
		"no iss":           "e30." + b64([]byte(`{"sub":"x"}`)) + ".x",
		"iss empty":        "e30." + b64([]byte(`{"iss":""}`)) + ".x",
		"iss number":       "e30." + b64([]byte(`{"iss":1}`)) + ".x",
		"iss object":       "e30." + b64([]byte(`{"iss":{"a":1}}`)) + ".x",
		"oversized":        "e30." + b64([]byte(`{"iss":"`+strings.Repeat("a", jwtauth.MaxTokenSize)+`"}`)) + ".x",
		"payload padded":   "e30." + b64([]byte(`{"iss":"a"}`)) + "=.x",
		"control bytes":    "\x00\x01.\x02.\x03",
		"only dots":        "..",
		"bearer prefix":    "Bearer " + tok,
		"payload std b64":  "e30." + "eyJpc3MiOiI+In0" + ".x", // {"iss":">"} in the standard alphabet
	} {
		got, err := jwtauth.Issuer(tok)
		if err == nil || !errors.Is(err, jwtauth.ErrInvalidToken) {
			t.Errorf("%s: Issuer = %q, %v; want ErrInvalidToken", name, got, err)
		}
		checkNoLeak(t, err, tok)
	}
}

// swapSignature returns a's header and payload with b's signature.
func swapSignature(a, b string) string {
	pa := strings.Split(a, ".")
	pb := strings.Split(b, ".")
	return pa[0] + "." + pa[1] + "." + pb[2]
}

// stripSignature empties a token's signature segment.
func stripSignature(tok string) string {
	return tok[:strings.LastIndex(tok, ".")+1]
}

// tamperPayload rewrites the subject of a signed token, keeping the
// signature.
func tamperPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	forged := claims(map[string]any{"sub": "admin"})
	p, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + b64(p) + "." + parts[2]
}

// padHeader adds base64 padding to the header segment.
func padHeader(tok string) string {
	i := strings.Index(tok, ".")
	return tok[:i] + "==" + tok[i:]
}

// withHeader signs valid claims with extra header fields.
func withHeader(t *testing.T, key any, method jwt.SigningMethod, extra map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims(nil))
	for k, v := range extra {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// derOf encodes a public key as PKIX DER.
func derOf(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func ptr[T any](v T) *T { return &v }
