package jwtauth_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/jwtauth"
)

func TestProviderValidate(t *testing.T) {
	rsaPEM := pemOf(t, rsaKey1().Public())
	ecPEM := pemOf(t, ecKey256().Public())
	edPEM := pemOf(t, edKey().Public())
	privDER, err := x509.MarshalPKCS8PrivateKey(ecKey256())
	if err != nil {
		t.Fatal(err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	pkcs1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey1().PublicKey)}))
	weakPEM := pemOf(t, mustRSA(1024).Public())
	p521PEM := pemOf(t, mustEC(elliptic.P521()).Public())

	base := jwtauth.Provider{Issuer: testIssuer, Audience: testAudience, PublicKeys: []string{rsaPEM}}
	with := func(f func(p *jwtauth.Provider)) jwtauth.Provider {
		p := base
		f(&p)
		return p
	}

	valid := map[string]jwtauth.Provider{
		"PEM RSA":                 base,
		"PKCS #1 RSA":             with(func(p *jwtauth.Provider) { p.PublicKeys = []string{pkcs1PEM} }),
		"certificate":             with(func(p *jwtauth.Provider) { p.PublicKeys = []string{certPEM(t)} }),
		"RSA and EC":              with(func(p *jwtauth.Provider) { p.PublicKeys = []string{rsaPEM, ecPEM} }),
		"Ed25519 with EdDSA":      with(func(p *jwtauth.Provider) { p.PublicKeys, p.Algorithms = []string{edPEM}, []string{"EdDSA"} }),
		"PEM with surrounding \n": with(func(p *jwtauth.Provider) { p.PublicKeys = []string{"\n" + rsaPEM + "\n\n"} }),
		"JWKS https":              jwksProvider("https://login.example.com/tenant/discovery/v2.0/keys"),
		"JWKS https with port":    jwksProvider("https://idp.example.com:8443/jwks?v=2"),
		"every algorithm":         jwksProvider("https://idp.example.com/keys", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"),
		"subject claim":           with(func(p *jwtauth.Provider) { p.SubjectClaim = "oid" }),
		"required claims":         with(func(p *jwtauth.Provider) { p.RequiredClaims = map[string]string{"azp": "c1", "tid": "t1"} }),
		"max public keys":         with(func(p *jwtauth.Provider) { p.PublicKeys = repeat(rsaPEM, jwtauth.MaxPublicKeys) }),
	}
	for name, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	invalid := []struct {
		name string
		p    jwtauth.Provider
		want []string // each must be one of the problems, in order
	}{
		{"zero value", jwtauth.Provider{}, []string{"issuer is required", "audience is required", "a JWKS URL or at least one public key is required"}},
		{"issuer with spaces", with(func(p *jwtauth.Provider) { p.Issuer = " " + testIssuer }), []string{"issuer has leading or trailing spaces"}},
		{"audience with a newline", with(func(p *jwtauth.Provider) { p.Audience = "a\nb" }), []string{"audience contains control characters"}},
		{"both sources", with(func(p *jwtauth.Provider) { p.JWKSURL = "https://idp.example.com/keys" }), []string{"either a JWKS URL or public keys, not both"}},
		{"http elsewhere", jwksProvider("http://idp.example.com/keys"), []string{"JWKS URL must use https"}},
		{"http to a private address", jwksProvider("http://10.0.0.1/keys"), []string{"JWKS URL must name a public host: its host is a private address"}},
		{"http to a loopback-looking name", jwksProvider("http://127.0.0.1.example.com/keys"), []string{"must use https"}},
		{"ftp", jwksProvider("ftp://idp.example.com/keys"), []string{"JWKS URL must use https"}},
		{"file", jwksProvider("file:///etc/keys.json"), []string{"JWKS URL must be absolute, with a host"}},
		{"relative", jwksProvider("/keys"), []string{"must be absolute"}},
		{"credentials", jwksProvider("https://user:hunter2@idp.example.com/keys"), []string{"JWKS URL must not contain credentials"}},
		{"fragment", jwksProvider("https://idp.example.com/keys#x"), []string{"must not contain a fragment"}},
		{"unparsable URL", jwksProvider("https://idp.example.com/%zz"), []string{"JWKS URL is not a valid URL"}},
		{"alg none", jwksProvider("https://idp.example.com/keys", "none"), []string{`algorithm "none" is never allowed`}},
		{"alg NONE", jwksProvider("https://idp.example.com/keys", "NONE"), []string{`algorithm "none" is never allowed`}},
		{"HMAC", jwksProvider("https://idp.example.com/keys", "RS256", "HS256", "hs512"), []string{`"HS256" is not allowed: HMAC`, `"hs512" is not allowed: HMAC`}},
		{"unsupported alg", jwksProvider("https://idp.example.com/keys", "ES512", "rs256"), []string{`"ES512" is not supported`, `"rs256" is not supported`}},
		{"private key", with(func(p *jwtauth.Provider) { p.PublicKeys = []string{privPEM} }), []string{"public key 1: is a private key"}},
		{"not PEM", with(func(p *jwtauth.Provider) {
			p.PublicKeys = []string{rsaPEM, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}
		}), []string{"public key 2: is not PEM"}},
		{"two blocks in one entry", with(func(p *jwtauth.Provider) { p.PublicKeys = []string{rsaPEM + ecPEM} }), []string{"public key 1: must hold exactly one PEM block"}},
		{"corrupt PKIX", with(func(p *jwtauth.Provider) { p.PublicKeys = []string{corruptPEM(rsaPEM)} }), []string{"public key 1: is not a valid PKIX public key"}},
		{"other PEM type", with(func(p *jwtauth.Provider) {
			p.PublicKeys = []string{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}))}
		}), []string{`public key 1: has PEM type "CERTIFICATE REQUEST"`}},
		{"weak RSA", with(func(p *jwtauth.Provider) { p.PublicKeys = []string{weakPEM} }), []string{"public key 1: RSA key of 1024 bits is too weak (at least 2048)"}},
		{"P-521", with(func(p *jwtauth.Provider) { p.PublicKeys = []string{p521PEM} }), []string{"public key 1: ECDSA key must use curve P-256 or P-384"}},
		{"Ed25519 without EdDSA", with(func(p *jwtauth.Provider) { p.PublicKeys = []string{rsaPEM, edPEM} }), []string{"public key 2 (Ed25519) fits none of the allowed algorithms RS256, ES256"}},
		{"P-256 key with ES384 only", with(func(p *jwtauth.Provider) { p.PublicKeys, p.Algorithms = []string{ecPEM}, []string{"ES384"} }), []string{"public key 1 (ECDSA P-256) fits none of the allowed algorithms ES384"}},
		{"too many keys", with(func(p *jwtauth.Provider) { p.PublicKeys = repeat(rsaPEM, jwtauth.MaxPublicKeys+1) }), []string{"at most 10 public keys"}},
		{"subject claim with a space", with(func(p *jwtauth.Provider) { p.SubjectClaim = "sub " }), []string{"subject claim must be a claim name"}},
		{"required registered claims", with(func(p *jwtauth.Provider) { p.RequiredClaims = map[string]string{"aud": "x", "iss": "y"} }), []string{`required claim "aud" is checked`, `required claim "iss" is checked`}},
		{"required claim without value", with(func(p *jwtauth.Provider) { p.RequiredClaims = map[string]string{"azp": ""} }), []string{`required claim "azp" needs a value`}},
		{"required claim without name", with(func(p *jwtauth.Provider) { p.RequiredClaims = map[string]string{"": "x"} }), []string{"required claim names must be non-empty"}},
		{"everything at once", jwtauth.Provider{
			Issuer:         "iss\t",
			JWKSURL:        "http://idp.example.com",
			Algorithms:     []string{"none", "HS256"},
			SubjectClaim:   " ",
			RequiredClaims: map[string]string{"exp": "1"},
		}, []string{
			"issuer has leading or trailing spaces", "audience is required", `"none" is never allowed`, `"HS256" is not allowed`,
			"must use https", "subject claim must be", `required claim "exp" is checked`,
		}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if !errors.Is(err, jwtauth.ErrInvalidProvider) {
				t.Fatalf("Validate = %v, want ErrInvalidProvider", err)
			}
			var perr *jwtauth.ProviderError
			if !errors.As(err, &perr) {
				t.Fatalf("Validate = %T, want *ProviderError", err)
			}
			if len(perr.Problems) != len(tt.want) {
				t.Fatalf("problems = %q, want %d: %q", perr.Problems, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(perr.Problems[i], want) {
					t.Errorf("problem %d = %q, want %q", i, perr.Problems[i], want)
				}
			}
			// No key material or credentials in the message.
			for _, secret := range []string{"hunter2", pemBody(privPEM), pemBody(rsaPEM)[:40]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Validate = %q leaks %q", err, secret)
				}
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// pemBody returns the base64 lines of a PEM block.
func pemBody(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

// corruptPEM flips bytes inside a PEM block's DER.
func corruptPEM(s string) string {
	block, _ := pem.Decode([]byte(s))
	der := append([]byte(nil), block.Bytes...)
	for i := 5; i < 12; i++ {
		der[i] ^= 0xff
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}))
}

// certPEM is a self-signed certificate for the P-256 test key.
func certPEM(t *testing.T) string {
	t.Helper()
	c := testkit.NewCert(t, testkit.CertOptions{
		CommonName: "idp signing", Key: ecKey256(), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
	})
	return string(c.CertPEM)
}
