package jwtauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/jwtauth"
)

// FuzzVerify feeds arbitrary strings to Verify (against a PEM provider and a
// JWKS provider) and to Issuer. Nothing may panic, and nothing may verify
// except the exact tokens signed below: the seeds, which plain `go test`
// runs, include them, so the fuzzer mutates real tokens.
//
//	go test -run '^$' -fuzz FuzzVerify -fuzztime 1m ./jwtauth/
func FuzzVerify(f *testing.F) {
	srv := newJWKSServer(f,
		jwkOf(f, "rsa", rsaKey1().Public()),
		jwkOf(f, "ec", ecKey256().Public()),
		jwkOf(f, "ed", edKey().Public()),
	)
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}
	providers := []jwtauth.Provider{
		pemProvider(f, algs, rsaKey1().Public(), ecKey256().Public(), edKey().Public()),
		jwksProvider(srv.KeysURL(), algs...),
	}
	// A fixed clock: unknown kids never trigger a refetch after the first
	// fetch, so the fuzzer does not hammer the server.
	v := newVerifier(newClock())

	signed := map[string]bool{}
	for _, s := range []struct {
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{jwt.SigningMethodRS256, rsaKey1(), "rsa"},
		{jwt.SigningMethodPS256, rsaKey1(), "rsa"},
		{jwt.SigningMethodES256, ecKey256(), "ec"},
		{jwt.SigningMethodEdDSA, edKey(), "ed"},
	} {
		tok := sign(f, s.method, s.key, s.kid, claims(nil))
		signed[tok] = true
		f.Add(tok)
	}
	payload := claims(nil)
	for _, seed := range []string{
		sign(f, jwt.SigningMethodRS256, rsaEvil(), "rsa", payload),
		sign(f, jwt.SigningMethodES256, ecEvil(), "ec", payload),
		sign(f, jwt.SigningMethodHS256, []byte(pemOf(f, rsaKey1().Public())), "rsa", payload),
		rawToken(f, map[string]any{"alg": "none"}, payload, nil),
		rawToken(f, map[string]any{"alg": "RS256", "kid": "rsa", "crit": []string{"b64"}, "b64": false}, payload, []byte("sig")),
		rawToken(f, map[string]any{"alg": "ES256", "kid": 1}, payload, make([]byte, 64)),
		rawToken(f, map[string]any{"alg": "ES256", "kid": "ec"}, claims(map[string]any{"exp": json.Number("1e309")}), make([]byte, 64)),
		rawToken(f, map[string]any{"alg": "EdDSA"}, claims(map[string]any{"aud": []any{nil, 1.5, map[string]any{}}}), make([]byte, 64)),
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.",
		"Bearer x.y.z", "\x00.\xff.\x80", "é.ü.ß",
		strings.Repeat("A", jwtauth.MaxTokenSize+1),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, token string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, p := range providers {
			c, err := v.Verify(ctx, p, token)
			if err == nil {
				if !signed[token] {
					t.Fatalf("accepted a token that was never signed: %q (claims %+v)", token, c)
				}
				if c.Subject != "svc-deployer" || c.Issuer != testIssuer {
					t.Fatalf("claims = %+v", c)
				}
				continue
			}
			if !errors.Is(err, jwtauth.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			// Messages are short; a long token can never be inside one.
			if len(token) >= 200 && strings.Contains(err.Error(), token) {
				t.Fatalf("err = %q contains the token", err)
			}
		}
		if iss, err := jwtauth.Issuer(token); err == nil && iss == "" {
			t.Fatal("Issuer returned an empty issuer without an error")
		} else if err != nil && !errors.Is(err, jwtauth.ErrInvalidToken) {
			t.Fatalf("Issuer err = %v, want ErrInvalidToken", err)
		}
	})
}
