package techpasssim

import (
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint; it identifies, it does not protect
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxAssertionLifetime is the longest a client assertion may still be valid
// when presented (assumed: Microsoft's libraries issue 10-minute
// assertions).
const MaxAssertionLifetime = 10 * time.Minute

var (
	errThumbprint = errors.New("certificate thumbprint does not match")
	errKID        = errors.New("kid does not name a registered certificate")
)

// AADSTSNotYetValid is the AADSTS code the simulator answers for an
// assertion whose nbf (or iat) is in its future: "client assertion is not
// within its valid time range" (assumed to be Azure AD's code for it).
const AADSTSNotYetValid = 700024

// verifyAssertion checks a certificate client assertion as Azure AD does:
// RS256 or PS256 signature by a registered certificate (one of two during a
// rollover), named by its x5t#S256 or x5t thumbprint, or with
// Config.KeyByKID by its kid (the x5t#S256 thumbprint) alone, as token
// servers that choose keys by kid do; iss and sub the client id; aud this
// token endpoint; exp in the future and at most MaxAssertionLifetime away;
// nbf and iat, if present, past (else AADSTSNotYetValid); jti present and
// never seen before. Call with s.mu held.
func (s *Simulator) verifyAssertion(ns *namespace, assertion, tokenURL string) *aadError {
	certs := ns.certificates()
	if len(certs) == 0 {
		return errBadAssertion("no certificate is registered for the application")
	}
	// Azure AD takes RSA signatures by the registered certificate; every
	// other algorithm, "none" included, is refused. Claims are checked below.
	algs := []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodPS256.Alg()}
	p := jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation())
	var claims jwt.RegisteredClaims
	_, err := p.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		if s.cfg.KeyByKID {
			for _, c := range certs {
				if thumbprintEqual(t.Header["kid"], sha256Of(c)) {
					return c.PublicKey, nil
				}
			}
			return nil, errKID
		}
		for _, c := range certs {
			if checkThumbprint(t.Header, c) == nil {
				return c.PublicKey, nil
			}
		}
		return nil, errThumbprint
	})
	switch {
	case errors.Is(err, errKID):
		return errBadAssertion("the kid header does not name a registered certificate")
	case errors.Is(err, errThumbprint):
		return errBadAssertion("the x5t#S256 or x5t header does not name a registered certificate")
	case err != nil:
		return errBadAssertion("the token is malformed, uses a refused algorithm or has an invalid signature")
	}

	now := s.cfg.Now()
	switch {
	case !strings.EqualFold(claims.Issuer, ns.ClientID) || !strings.EqualFold(claims.Subject, ns.ClientID):
		return errBadAssertion("iss and sub must be the client id")
	case len(claims.Audience) != 1 || !strings.EqualFold(claims.Audience[0], tokenURL):
		return errBadAssertion("aud must be the token endpoint URL")
	case claims.ExpiresAt == nil:
		return errBadAssertion("exp is required")
	case !now.Before(claims.ExpiresAt.Time):
		return errBadAssertion("the assertion has expired")
	case claims.ExpiresAt.Sub(now) > MaxAssertionLifetime:
		return errBadAssertion("the assertion is valid for longer than 10 minutes")
	case claims.NotBefore != nil && now.Before(claims.NotBefore.Time), claims.IssuedAt != nil && now.Before(claims.IssuedAt.Time):
		return &aadError{http.StatusBadRequest, "invalid_client", AADSTSNotYetValid,
			"Client assertion is not within its valid time range: it is not valid yet (nbf or iat in the future)."}
	case claims.ID == "":
		return errBadAssertion("jti is required")
	}

	for jti, exp := range ns.jtis {
		if !now.Before(exp) {
			delete(ns.jtis, jti) // an expired assertion is refused anyway
		}
	}
	if _, seen := ns.jtis[claims.ID]; seen {
		return errBadAssertion("the assertion was already used (jti replay)")
	}
	ns.jtis[claims.ID] = claims.ExpiresAt.Time
	return nil
}

// checkThumbprint requires an x5t#S256 or x5t header and every one present
// to match the certificate.
func checkThumbprint(h map[string]any, cert *x509.Certificate) error {
	s256, has256 := h["x5t#S256"]
	s1, has1 := h["x5t"]
	if !has256 && !has1 {
		return errThumbprint
	}
	if has256 {
		sum := sha256.Sum256(cert.Raw)
		if !thumbprintEqual(s256, sum[:]) {
			return errThumbprint
		}
	}
	if has1 {
		sum := sha1.Sum(cert.Raw) //nolint:gosec // see import
		if !thumbprintEqual(s1, sum[:]) {
			return errThumbprint
		}
	}
	return nil
}

func sha256Of(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.Raw)
	return sum[:]
}

// thumbprintEqual compares a base64url header value, padded or not, with a
// digest.
func thumbprintEqual(v any, sum []byte) bool {
	s, ok := v.(string)
	return ok && strings.TrimRight(s, "=") == base64.RawURLEncoding.EncodeToString(sum)
}

// Thumbprints returns the x5t#S256 and x5t header values that name cert in
// a client assertion.
func Thumbprints(cert *x509.Certificate) (x5tS256, x5t string) {
	s256 := sha256.Sum256(cert.Raw)
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // see import
	return base64.RawURLEncoding.EncodeToString(s256[:]), base64.RawURLEncoding.EncodeToString(s1[:])
}
