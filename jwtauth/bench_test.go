package jwtauth_test

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/jwtauth"
)

func BenchmarkVerify(b *testing.B) {
	srv := newJWKSServer(b, jwkOf(b, "k", rsaKey1().Public()), jwkOf(b, "e", ecKey256().Public()))
	v := newVerifier(newClock())
	for _, bc := range []struct {
		name string
		p    jwtauth.Provider
		tok  string
	}{
		{"PEM/RS256", pemProvider(b, nil, rsaKey1().Public()), sign(b, jwt.SigningMethodRS256, rsaKey1(), "k", claims(nil))},
		{"JWKS/RS256", jwksProvider(srv.KeysURL()), sign(b, jwt.SigningMethodRS256, rsaKey1(), "k", claims(nil))},
		{"PEM/ES256", pemProvider(b, nil, ecKey256().Public()), sign(b, jwt.SigningMethodES256, ecKey256(), "e", claims(nil))},
		{"JWKS/ES256", jwksProvider(srv.KeysURL()), sign(b, jwt.SigningMethodES256, ecKey256(), "e", claims(nil))},
		{"Validate/PEM-RSA", pemProvider(b, nil, rsaKey1().Public()), ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if bc.tok == "" {
					if err := bc.p.Validate(); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, err := v.Verify(context.Background(), bc.p, bc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
