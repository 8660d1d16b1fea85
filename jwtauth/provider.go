package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidProvider is wrapped by every error of [Provider.Validate], and
// by [Verifier.Verify] when it is given a provider that does not validate.
var ErrInvalidProvider = errors.New("jwtauth: invalid provider")

// Limits on a provider's configuration.
const (
	// MaxPublicKeys is the most PEM keys a provider may list.
	MaxPublicKeys = 10
	// MinRSABits is the smallest RSA modulus accepted, from PEM or JWKS.
	MinRSABits = 2048
	// MaxRSABits is the largest RSA modulus accepted, so that a provider
	// cannot make every verification needlessly slow.
	MaxRSABits = 8192
)

// defaultAlgorithms is the allow-list of a provider that names none. Not
// exported so no caller can change it under every provider's feet.
var defaultAlgorithms = []string{"RS256", "ES256"}

// DefaultSubjectClaim names the caller when a provider names no other claim.
const DefaultSubjectClaim = "sub"

// Provider is a project's identity provider, as a tenant-admin registers
// it. The zero value is not valid: Issuer, Audience and either JWKSURL or
// PublicKeys are required. Call [Provider.Validate] before storing one.
type Provider struct {
	// Issuer must equal the token's "iss" exactly (no normalisation of
	// case or trailing slashes).
	Issuer string
	// Audience must be one of the token's "aud" values.
	Audience string
	// JWKSURL is where the provider publishes its signing keys as a JWK
	// Set. It must be https, to a host that is not a loopback, private,
	// link-local, multicast, unspecified or otherwise reserved address
	// (nor a name such as "localhost"); a name is also checked on every
	// address it resolves to when fetched. A [Verifier] with
	// [Options.AllowLoopback] also accepts loopback hosts, over http too,
	// for tests. Exactly one of JWKSURL and PublicKeys is set.
	JWKSURL string
	// PublicKeys are PEM-encoded public keys, one per entry: "PUBLIC KEY"
	// (PKIX: RSA, ECDSA P-256 or P-384, Ed25519), "RSA PUBLIC KEY" (PKCS #1)
	// or a "CERTIFICATE", of which only the public key is used (its validity
	// dates and issuer are not checked). A token is tried against each key
	// that fits its algorithm, so a rotation can list the old and new keys.
	PublicKeys []string
	// Algorithms is the allow-list of "alg" values; empty means RS256 and
	// ES256. Supported: RS256, RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384 and EdDSA. "none" and HMAC algorithms (HS256...)
	// are never accepted: the gateway holds no secret shared with the
	// provider, and allowing them would let anyone who knows the public key
	// mint tokens.
	Algorithms []string
	// SubjectClaim names the claim identifying the caller, reported as
	// [Claims.Subject]; empty means [DefaultSubjectClaim]. Azure AD
	// service principals may prefer "oid" or "azp".
	SubjectClaim string
	// RequiredClaims must all be present in the token. A string claim must
	// equal the value; an array claim must contain it as one of its
	// string elements (for "roles" or "groups"). Useful to pin "azp" or
	// "appid" to one client. The claims checked by the fields above (iss,
	// aud, exp, nbf, iat) cannot be listed.
	RequiredClaims map[string]string
}

// ProviderError lists every problem [Provider.Validate] found. It wraps
// [ErrInvalidProvider]. Problems name fields and positions, never key
// material.
type ProviderError struct {
	Problems []string
}

func (e *ProviderError) Error() string {
	return "jwtauth: invalid provider: " + strings.Join(e.Problems, "; ")
}

// Unwrap returns [ErrInvalidProvider].
func (e *ProviderError) Unwrap() error { return ErrInvalidProvider }

// Validate checks the provider and reports every problem at once, as a
// *[ProviderError] wrapping [ErrInvalidProvider]. It parses the PEM keys but
// does not fetch the JWKS, and refuses a loopback JWKS URL; see
// [Verifier.Validate] for a verifier that allows one.
func (p Provider) Validate() error {
	_, err := p.compile(false)
	return err
}

// keyKind is the family of key an algorithm needs.
type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
)

func (k keyKind) String() string {
	switch k {
	case kindRSA:
		return "RSA"
	case kindEC:
		return "ECDSA"
	case kindEd25519:
		return "Ed25519"
	}
	return "unknown"
}

// algorithm is one supported "alg".
type algorithm struct {
	kind  keyKind
	curve elliptic.Curve // for kindEC
}

// algorithms are the supported signature algorithms, each bound to the one
// key type (and curve) it may be verified with.
var algorithms = map[string]algorithm{
	jwt.SigningMethodRS256.Alg(): {kind: kindRSA},
	jwt.SigningMethodRS384.Alg(): {kind: kindRSA},
	jwt.SigningMethodRS512.Alg(): {kind: kindRSA},
	jwt.SigningMethodPS256.Alg(): {kind: kindRSA},
	jwt.SigningMethodPS384.Alg(): {kind: kindRSA},
	jwt.SigningMethodPS512.Alg(): {kind: kindRSA},
	jwt.SigningMethodES256.Alg(): {kind: kindEC, curve: elliptic.P256()},
	jwt.SigningMethodES384.Alg(): {kind: kindEC, curve: elliptic.P384()},
	jwt.SigningMethodEdDSA.Alg(): {kind: kindEd25519},
}

// supportedAlgorithms lists the names of algorithms, for messages.
const supportedAlgorithms = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"

// fits reports whether key may verify a signature made with a.
func (a algorithm) fits(key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return a.kind == kindRSA
	case *ecdsa.PublicKey:
		return a.kind == kindEC && k.Curve == a.curve
	case ed25519.PublicKey:
		return a.kind == kindEd25519
	}
	return false
}

// registeredClaims are checked by Provider fields and may not appear in
// RequiredClaims.
var registeredClaims = []string{"iss", "aud", "exp", "nbf", "iat"}

// compiled is a validated provider with its PEM keys parsed.
type compiled struct {
	Provider
	algs    []string // effective allow-list
	subject string   // effective subject claim
	keys    []publicKey
}

// allows reports whether alg is in the provider's allow-list, and its
// definition.
func (c *compiled) allows(alg string) (algorithm, bool) {
	if !slices.Contains(c.algs, alg) {
		return algorithm{}, false
	}
	a, ok := algorithms[alg]
	return a, ok
}

// publicKey is a verification key, from PEM or from a JWK.
type publicKey struct {
	kid string // JWK "kid"; empty for PEM keys
	alg string // JWK "alg"; when set the key is used for that algorithm only
	key crypto.PublicKey
}

// compile validates p and parses its keys; allowLoopback accepts a JWKS
// URL on loopback.
func (p Provider) compile(allowLoopback bool) (*compiled, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	checkText := func(name, v string) {
		switch {
		case v == "":
			add("%s is required", name)
		case strings.TrimSpace(v) != v:
			add("%s has leading or trailing spaces", name)
		case strings.ContainsFunc(v, isControl):
			add("%s contains control characters", name)
		}
	}
	checkText("issuer", p.Issuer)
	checkText("audience", p.Audience)

	c := &compiled{Provider: p, algs: p.Algorithms, subject: p.SubjectClaim}
	if len(c.algs) == 0 {
		c.algs = defaultAlgorithms
	}
	if c.subject == "" {
		c.subject = DefaultSubjectClaim
	}

	for _, alg := range c.algs {
		switch _, ok := algorithms[alg]; {
		case ok:
		case strings.EqualFold(alg, "none"):
			add(`algorithm "none" is never allowed: tokens must be signed`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			add("algorithm %.16q is not allowed: HMAC needs a shared secret, and the gateway verifies only public-key signatures", alg)
		default:
			add("algorithm %.16q is not supported (supported: %s)", alg, supportedAlgorithms)
		}
	}

	switch {
	case p.JWKSURL != "" && len(p.PublicKeys) > 0:
		add("give either a JWKS URL or public keys, not both")
	case p.JWKSURL == "" && len(p.PublicKeys) == 0:
		add("a JWKS URL or at least one public key is required")
	case p.JWKSURL != "":
		if msg := checkJWKSURL(p.JWKSURL, allowLoopback); msg != "" {
			add("JWKS URL %s", msg)
		}
	default:
		if len(p.PublicKeys) > MaxPublicKeys {
			add("at most %d public keys may be listed", MaxPublicKeys)
			break
		}
		for i, s := range p.PublicKeys {
			key, msg := parsePEMKey(s)
			if msg != "" {
				add("public key %d: %s", i+1, msg)
				continue
			}
			c.keys = append(c.keys, publicKey{key: key})
			if !slices.ContainsFunc(c.algs, func(alg string) bool { return algorithms[alg].fits(key) }) {
				add("public key %d (%s) fits none of the allowed algorithms %s", i+1, describeKey(key), strings.Join(c.algs, ", "))
			}
		}
	}

	if strings.TrimSpace(c.subject) != c.subject || strings.ContainsFunc(c.subject, isControl) {
		add("subject claim must be a claim name without spaces or control characters")
	}

	for _, name := range sortedKeys(p.RequiredClaims) {
		v := p.RequiredClaims[name]
		switch {
		case name == "" || strings.TrimSpace(name) != name || strings.ContainsFunc(name, isControl):
			add("required claim names must be non-empty, without surrounding spaces or control characters")
		case slices.Contains(registeredClaims, name):
			add("required claim %q is checked by the provider's own settings and cannot be listed", name)
		case v == "":
			add("required claim %.64q needs a value", name)
		}
	}

	if len(problems) > 0 {
		return nil, &ProviderError{Problems: problems}
	}
	return c, nil
}

// checkJWKSURL returns why u is not acceptable, or "": it must be https to
// a host that may be fetched from (see hostProblem); with allowLoopback, a
// loopback host may also be reached over http.
func checkJWKSURL(u string, allowLoopback bool) string {
	parsed, err := url.Parse(u)
	switch {
	case err != nil:
		return "is not a valid URL"
	case parsed.User != nil:
		return "must not contain credentials"
	case parsed.Fragment != "" || strings.Contains(u, "#"):
		return "must not contain a fragment"
	case parsed.Host == "" || parsed.Hostname() == "":
		return "must be absolute, with a host"
	}
	problem, loopback := hostProblem(parsed.Hostname(), allowLoopback)
	switch {
	case parsed.Scheme != "https" && parsed.Scheme != "http":
		return "must use https"
	case problem != "":
		return "must name a public host: its " + problem
	case parsed.Scheme == "http" && !loopback:
		return "must use https"
	}
	return ""
}

// parsePEMKey parses one PEM entry, returning why it is unusable otherwise.
// Messages never quote the input.
func parsePEMKey(s string) (crypto.PublicKey, string) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, "is not PEM"
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, "must hold exactly one PEM block"
	}
	var key crypto.PublicKey
	switch {
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, "is a private key; register only the public key (and treat this private key as exposed)"
	case block.Type == "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, "is not a valid PKIX public key"
		}
		key = k
	case block.Type == "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, "is not a valid PKCS #1 RSA public key"
		}
		key = k
	case block.Type == "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, "is not a valid certificate"
		}
		key = cert.PublicKey
	default:
		return nil, fmt.Sprintf("has PEM type %.32q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if msg := checkKey(key); msg != "" {
		return nil, msg
	}
	return key, ""
}

// checkKey returns why a parsed public key is unusable, or "".
func checkKey(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch bits := k.N.BitLen(); {
		case bits < MinRSABits:
			return fmt.Sprintf("RSA key of %d bits is too weak (at least %d)", bits, MinRSABits)
		case bits > MaxRSABits:
			return fmt.Sprintf("RSA key of %d bits is too large (at most %d)", bits, MaxRSABits)
		}
		return ""
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return "ECDSA key must use curve P-256 or P-384"
		}
		return ""
	case ed25519.PublicKey:
		return ""
	}
	return "has an unsupported key type (want RSA, ECDSA or Ed25519)"
}

// describeKey names a key's type for messages.
func describeKey(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "unknown"
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
