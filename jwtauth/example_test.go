package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/groupgate/groupgate/jwtauth"
)

// A project registers its provider with a PEM public key; its service
// account presents a token signed by the matching private key.
func ExampleVerifier_Verify() {
	// The project's side: a signing key and a token for its service account.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	token, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://ci.team-a.example.com",
		"aud": "groupgate",
		"sub": "deploy-bot",
		"exp": now.Add(5 * time.Minute).Unix(),
	}).SignedString(key)

	// The gateway's side: the provider as a tenant-admin registered it.
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	provider := jwtauth.Provider{
		Issuer:     "https://ci.team-a.example.com",
		Audience:   "groupgate",
		PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
		Algorithms: []string{"ES256"},
	}
	if err := provider.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	verifier := jwtauth.NewVerifier(jwtauth.Options{Now: func() time.Time { return now }})

	iss, _ := jwtauth.Issuer(token) // untrusted: only to look up providers
	fmt.Println("issuer claimed:", iss)
	claims, err := verifier.Verify(context.Background(), provider, token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified subject:", claims.Subject)

	// Ten minutes later the token has expired (beyond the 60s skew).
	late := jwtauth.NewVerifier(jwtauth.Options{Now: func() time.Time { return now.Add(10 * time.Minute) }})
	_, err = late.Verify(context.Background(), provider, token)
	fmt.Println(errors.Is(err, jwtauth.ErrInvalidToken), err)

	// Output:
	// issuer claimed: https://ci.team-a.example.com
	// verified subject: deploy-bot
	// true jwtauth: invalid token: the token expired 5m0s ago
}
