package techpass

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint; it names the certificate, it protects nothing
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionTypeJWTBearer is the client_assertion_type of a certificate
// client assertion (RFC 7523).
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion built by the client is
// valid. It is used once, at once; a short life limits what a captured one is
// worth, and Azure AD refuses assertions valid for more than 10 minutes
// (assumed, see techpasssim.MaxAssertionLifetime).
const AssertionLifetime = 5 * time.Minute

// AssertionSkew is how far back an assertion's nbf and iat are dated, so a
// token endpoint whose clock runs a little behind ours does not find it not
// yet valid. It stays well within AssertionLifetime.
const AssertionSkew = time.Minute

// Signing algorithms accepted for client assertions.
const (
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
)

// ErrCertificate is returned (wrapped, with the reason) by ParseCertificate
// when the PEM data cannot serve as a client credential.
var ErrCertificate = errors.New("techpass: unusable client certificate")

// Certificate is a client certificate with its private key: the credential
// of the certificate client assertion flow. It never prints its key: String,
// GoString and LogValue show the thumbprint only. Create it with
// ParseCertificate; it is immutable and safe for concurrent use.
type Certificate struct {
	cert    *x509.Certificate
	key     *rsa.PrivateKey
	x5tS256 string
	x5t     string
}

// CertificateSource returns the current client certificate. Like Secret, it
// is called at every token request, so a rotated certificate is used from the
// next request on.
type CertificateSource func() (*Certificate, error)

// ParseCertificate reads a client certificate and its RSA private key from
// PEM. certPEM may hold a chain: the certificate whose public key matches the
// key is used. The key may be PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY"); encrypted keys are not supported (a secret manager mounts
// the key in clear, readable by the service alone). Errors never quote the
// PEM data.
func ParseCertificate(certPEM, keyPEM []byte) (*Certificate, error) {
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		return nil, err
	}
	var found *x509.Certificate
	n := 0
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d does not parse", ErrCertificate, n)
		}
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&key.PublicKey) {
			found = c
			break
		}
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: no PEM CERTIFICATE block", ErrCertificate)
	case found == nil:
		return nil, fmt.Errorf("%w: the private key does not belong to the certificate", ErrCertificate)
	}
	s256 := sha256.Sum256(found.Raw)
	s1 := sha1.Sum(found.Raw) //nolint:gosec // see import
	return &Certificate{
		cert:    found,
		key:     key,
		x5tS256: base64.RawURLEncoding.EncodeToString(s256[:]),
		x5t:     base64.RawURLEncoding.EncodeToString(s1[:]),
	}, nil
}

func parseRSAKey(keyPEM []byte) (*rsa.PrivateKey, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%w: no PEM private key block", ErrCertificate)
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: the PKCS#1 private key does not parse", ErrCertificate)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: the PKCS#8 private key does not parse", ErrCertificate)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: the private key is not RSA (RS256/PS256 assertions need RSA)", ErrCertificate)
			}
			return rk, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: the private key is encrypted", ErrCertificate)
		}
	}
}

// Certificate returns the X.509 certificate (public data).
func (c *Certificate) Certificate() *x509.Certificate { return c.cert }

// Thumbprint returns the certificate's SHA-256 thumbprint, base64url: the
// x5t#S256 header of its assertions, and how logs name it.
func (c *Certificate) Thumbprint() string { return c.x5tS256 }

// NotAfter returns when the certificate expires.
func (c *Certificate) NotAfter() time.Time { return c.cert.NotAfter }

// String names the certificate by its thumbprint, never its key.
func (c *Certificate) String() string { return "certificate x5t#S256=" + c.x5tS256 }

// GoString is String, so %#v cannot print the key either.
func (c *Certificate) GoString() string { return c.String() }

// LogValue is the thumbprint, so slog cannot print the key either.
func (c *Certificate) LogValue() slog.Value { return slog.StringValue(c.String()) }

// BuildAssertion returns a client assertion for clientID at the token
// endpoint tokenURL, signed at now with alg (AlgRS256 or AlgPS256; empty
// means AlgRS256): header x5t#S256 and x5t (Azure AD reads x5t), and kid,
// the x5t#S256 thumbprint, for token servers that choose the key by kid (so
// with two certificates registered during a rollover the right one is
// used); claims aud = tokenURL, iss = sub = clientID, a fresh random jti,
// iat = nbf = now - AssertionSkew (a token endpoint's clock may lag ours)
// and exp = nbf + AssertionLifetime: the 5-minute life is back-dated, not
// lengthened.
func (c *Certificate) BuildAssertion(alg, clientID, tokenURL string, now time.Time) (string, error) {
	var method jwt.SigningMethod
	switch alg {
	case "", AlgRS256:
		method = jwt.SigningMethodRS256
	case AlgPS256:
		method = jwt.SigningMethodPS256
	default:
		return "", fmt.Errorf("techpass: assertion algorithm %q is not RS256 or PS256", alg)
	}
	tok := jwt.NewWithClaims(method, jwt.MapClaims{
		"aud": tokenURL,
		"iss": clientID,
		"sub": clientID,
		"jti": rand.Text(),
		"iat": now.Add(-AssertionSkew).Unix(),
		"nbf": now.Add(-AssertionSkew).Unix(),
		"exp": now.Add(-AssertionSkew).Add(AssertionLifetime).Unix(),
	})
	tok.Header["x5t#S256"] = c.x5tS256
	tok.Header["x5t"] = c.x5t
	tok.Header["kid"] = c.x5tS256
	s, err := tok.SignedString(c.key)
	if err != nil {
		// The signer's error carries no key material.
		return "", fmt.Errorf("techpass: sign client assertion: %w", err)
	}
	return s, nil
}
