package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/groupgate/groupgate/jwtauth"
	"github.com/groupgate/groupgate/tenants"
)

// jwtVerifier lets the authenticator check JWTs of projects' identity
// providers with package jwtauth.
type jwtVerifier struct{ v *jwtauth.Verifier }

var _ tenants.TokenVerifier = jwtVerifier{}

// Issuer reads a token's unverified issuer.
func (j jwtVerifier) Issuer(token string) (string, error) { return jwtauth.Issuer(token) }

// Verify checks token against the provider and returns its subject.
func (j jwtVerifier) Verify(ctx context.Context, idp tenants.IdentityProvider, token string) (string, error) {
	c, err := j.v.Verify(ctx, provider(idp), token)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}

// checkIdentity validates an identity provider before it is registered,
// as the verifier will use it (a loopback JWKS URL only if the
// configuration allows it). A JWKS URL's problems name identity.jwksUrl.
func (j jwtVerifier) checkIdentity(idp tenants.IdentityProvider) error {
	err := j.v.Validate(provider(idp))
	var pe *jwtauth.ProviderError
	if errors.As(err, &pe) {
		ie := &tenants.InvalidError{}
		for _, msg := range pe.Problems {
			field := "identity"
			if rest, ok := strings.CutPrefix(msg, "JWKS URL "); ok {
				field, msg = "identity.jwksUrl", rest
			}
			ie.Fields = append(ie.Fields, tenants.FieldError{Field: field, Message: msg})
		}
		return ie
	}
	if err != nil {
		return fmt.Errorf("%w: identity: %v", tenants.ErrInvalid, err)
	}
	return nil
}

func provider(idp tenants.IdentityProvider) jwtauth.Provider {
	return jwtauth.Provider{Issuer: idp.Issuer, Audience: idp.Audience, JWKSURL: idp.JWKSURL, PublicKeys: idp.PublicKeys,
		Algorithms: idp.Algorithms, SubjectClaim: idp.SubjectClaim}
}
