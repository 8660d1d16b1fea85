package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of token verification.
var (
	// ErrInvalidToken is wrapped by every error of [Verifier.Verify] and
	// [Issuer] about a token; the rest of the message is a reason safe to
	// log.
	ErrInvalidToken = errors.New("jwtauth: invalid token")
	// ErrKeysUnavailable is wrapped, together with ErrInvalidToken, when a
	// provider's JWKS could not be fetched and no usable key is cached: the
	// token could not be checked, through no fault of its own. A server may
	// answer 503 rather than 401, and should alert.
	ErrKeysUnavailable = errors.New("jwtauth: the provider's signing keys are unavailable")
)

// MaxTokenSize is the longest token accepted, in bytes.
const MaxTokenSize = 16 << 10

// maxSubjectLen bounds the subject, which ends up in logs and audit entries.
const maxSubjectLen = 1024

// Defaults of [Options].
const (
	DefaultClockSkew       = 60 * time.Second
	DefaultJWKSRefresh     = 5 * time.Minute
	DefaultJWKSMinInterval = 30 * time.Second
	DefaultFetchTimeout    = 10 * time.Second
)

// Options configure a [Verifier]. The zero value gives the defaults.
type Options struct {
	// HTTPClient fetches JWK Sets; nil means a client using
	// http.DefaultTransport. The verifier uses a copy whose transport is a
	// clone of the client's *http.Transport (any other is replaced) that
	// uses no proxy and dials only public addresses (see AllowLoopback),
	// checked after name resolution, and whose redirect policy refuses
	// more than 3 redirects and any to a URL a provider could not register.
	HTTPClient *http.Client
	// AllowLoopback also accepts JWKS URLs on loopback hosts (localhost,
	// *.localhost, 127.0.0.0/8, ::1), over http or https, and lets fetches dial
	// loopback addresses. For tests and local development only: it lets
	// whoever registers a provider make the gateway send requests to its
	// own host. Private and other non-public addresses stay refused.
	AllowLoopback bool
	// Resolver resolves JWKS host names; nil means the system's. The
	// addresses it returns are checked like any other.
	Resolver *net.Resolver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClockSkew is the tolerance applied to exp, nbf and iat; 0 means
	// DefaultClockSkew and a negative value means none.
	ClockSkew time.Duration
	// JWKSRefresh is how old cached JWKS keys may grow before they are
	// fetched again; 0 means DefaultJWKSRefresh.
	JWKSRefresh time.Duration
	// JWKSMinInterval is the least time between two fetches of one JWKS
	// URL, whatever prompted them (stale keys, an unknown kid, a failed
	// fetch); 0 means DefaultJWKSMinInterval.
	JWKSMinInterval time.Duration
	// FetchTimeout bounds one JWKS fetch; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MaxTokenAge, if positive, requires "iat" and refuses tokens issued
	// longer ago than this (plus the clock skew), whatever their "exp".
	// 0 means no limit.
	MaxTokenAge time.Duration
}

// Verifier verifies tokens against providers. It caches JWKS keys per URL
// (see the package documentation). Create one with [NewVerifier] and share
// it: it is safe for concurrent use. The zero value is not usable.
type Verifier struct {
	client       *http.Client
	now          func() time.Time
	skew         time.Duration
	refresh      time.Duration
	minInterval  time.Duration
	fetchTimeout time.Duration
	maxAge       time.Duration
	// allowLoopback accepts providers whose JWKS is on loopback.
	allowLoopback bool

	mu   sync.Mutex
	jwks map[string]*jwksEntry // by URL
}

// NewVerifier returns a verifier with the given options.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		now:          opts.Now,
		skew:         orDefault(opts.ClockSkew, DefaultClockSkew),
		refresh:      orDefault(opts.JWKSRefresh, DefaultJWKSRefresh),
		minInterval:  orDefault(opts.JWKSMinInterval, DefaultJWKSMinInterval),
		fetchTimeout: orDefault(opts.FetchTimeout, DefaultFetchTimeout),
		maxAge:       max(opts.MaxTokenAge, 0),
		jwks:         map[string]*jwksEntry{},
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.skew = max(v.skew, 0)
	client := &http.Client{}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		client = &c
	}
	client.Transport = guardedTransport(client.Transport, opts.AllowLoopback, opts.Resolver)
	client.CheckRedirect = redirectPolicy(client.CheckRedirect, opts.AllowLoopback)
	v.client, v.allowLoopback = client, opts.AllowLoopback
	return v
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Claims are the verified contents of a token.
type Claims struct {
	// Issuer is "iss", equal to the provider's Issuer.
	Issuer string
	// Subject is the value of the provider's subject claim ("sub" unless
	// the provider names another): the caller, for audit entries.
	Subject string
	// Audience is "aud", which contains the provider's Audience.
	Audience []string
	// ExpiresAt is "exp".
	ExpiresAt time.Time
	// IssuedAt and NotBefore are "iat" and "nbf", zero when absent.
	IssuedAt, NotBefore time.Time
	// ID is "jti", empty when absent or not a string.
	ID string
	// Algorithm and KeyID are the header's "alg" and "kid" (KeyID may be
	// empty).
	Algorithm, KeyID string
	// Raw holds every claim as decoded from JSON, numbers as json.Number.
	Raw map[string]any
}

// Validate is [Provider.Validate] under v's options: with
// [Options.AllowLoopback], a JWKS URL on loopback is accepted.
func (v *Verifier) Validate(p Provider) error {
	_, err := p.compile(v.allowLoopback)
	return err
}

// Verify checks token (the compact JWS, without "Bearer ") against provider
// p and returns its claims. An invalid p gives an error wrapping
// [ErrInvalidProvider]; every other error wraps [ErrInvalidToken], and also
// [ErrKeysUnavailable] when p's JWKS could not be fetched. ctx bounds the
// wait for a JWKS fetch; the fetch itself goes on for other requests.
func (v *Verifier) Verify(ctx context.Context, p Provider, token string) (Claims, error) {
	c, err := p.compile(v.allowLoopback)
	if err != nil {
		return Claims{}, err
	}
	hdr, err := parseHeader(token)
	if err != nil {
		return Claims{}, err
	}
	alg, ok := c.allows(hdr.alg)
	if !ok {
		return Claims{}, invalid("algorithm %.16q is not allowed for this provider", hdr.alg)
	}

	var keys []publicKey
	if c.JWKSURL != "" {
		if keys, err = v.jwksKeys(ctx, c.JWKSURL, hdr, alg); err != nil {
			return Claims{}, err
		}
	} else {
		for _, k := range c.keys {
			if alg.fits(k.key) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return Claims{}, invalid("no key of the provider fits algorithm %s", hdr.alg)
	}
	set := jwt.VerificationKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.key)
	}

	// The checks above already chose the algorithm and keys; the parser
	// repeats the allow-list as a second line of defence.
	parser := jwt.NewParser(
		jwt.WithValidMethods(c.algs),
		jwt.WithStrictDecoding(),
		jwt.WithJSONNumber(),
		jwt.WithoutClaimsValidation(), // done below, with our clock
	)
	raw := jwt.MapClaims{}
	tok, err := parser.ParseWithClaims(token, raw, func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != hdr.alg {
			return nil, errors.New("algorithm changed between parses")
		}
		return set, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Claims{}, invalid("the token is malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Claims{}, invalid("the signature does not verify")
	case err != nil || !tok.Valid:
		return Claims{}, invalid("the token cannot be verified")
	}
	return v.checkClaims(c, raw, hdr)
}

// checkClaims validates the claims of a token whose signature verified.
func (v *Verifier) checkClaims(c *compiled, raw jwt.MapClaims, hdr header) (Claims, error) {
	cl := Claims{Algorithm: hdr.alg, KeyID: hdr.kid, Raw: raw}

	iss, ok := raw["iss"].(string)
	if !ok || iss != c.Issuer {
		return Claims{}, invalid("iss does not match the provider's issuer")
	}
	cl.Issuer = iss

	aud, ok := audience(raw["aud"])
	if !ok {
		return Claims{}, invalid("aud is missing or not a string or array of strings")
	}
	if !slices.Contains(aud, c.Audience) {
		return Claims{}, invalid("aud does not contain the provider's audience")
	}
	cl.Audience = aud

	now := v.now()
	var err error
	var has bool
	if cl.ExpiresAt, has, err = numericDate(raw, "exp"); err != nil {
		return Claims{}, err
	} else if !has {
		return Claims{}, invalid("exp is required")
	}
	if !now.Before(cl.ExpiresAt.Add(v.skew)) {
		return Claims{}, invalid("the token expired %s ago", now.Sub(cl.ExpiresAt).Truncate(time.Second))
	}
	if cl.NotBefore, has, err = numericDate(raw, "nbf"); err != nil {
		return Claims{}, err
	} else if has && now.Add(v.skew).Before(cl.NotBefore) {
		return Claims{}, invalid("the token is not valid for another %s (nbf)", cl.NotBefore.Sub(now).Truncate(time.Second))
	}
	if cl.IssuedAt, has, err = numericDate(raw, "iat"); err != nil {
		return Claims{}, err
	} else if has && now.Add(v.skew).Before(cl.IssuedAt) {
		return Claims{}, invalid("the token is issued in the future (iat)")
	}
	if v.maxAge > 0 {
		if !has {
			return Claims{}, invalid("iat is required")
		}
		if now.Sub(cl.IssuedAt) > v.maxAge+v.skew {
			return Claims{}, invalid("the token was issued more than %s ago", v.maxAge)
		}
	}

	sub, ok := raw[c.subject].(string)
	switch {
	case !ok || sub == "":
		return Claims{}, invalid("the subject claim %.64q is missing or not a non-empty string", c.subject)
	case len(sub) > maxSubjectLen || !utf8.ValidString(sub) || strings.ContainsFunc(sub, isControl):
		return Claims{}, invalid("the subject claim %.64q is too long or not printable", c.subject)
	}
	cl.Subject = sub

	for _, name := range sortedKeys(c.RequiredClaims) {
		if !claimMatches(raw[name], c.RequiredClaims[name]) {
			return Claims{}, invalid("required claim %.64q is missing or does not match", name)
		}
	}

	cl.ID, _ = raw["jti"].(string)
	return cl, nil
}

// audience reads "aud": a string or an array of strings.
func audience(v any) ([]string, bool) {
	switch a := v.(type) {
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// claimMatches reports whether a claim equals want, or is an array with want
// as one of its elements.
func claimMatches(v any, want string) bool {
	switch c := v.(type) {
	case string:
		return c == want
	case []any:
		return slices.Contains(c, any(want))
	}
	return false
}

// maxNumericDate is 9999-12-31T23:59:59Z, the latest time accepted.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate claim (seconds since the epoch, possibly
// fractional), reporting whether it is present.
func numericDate(raw map[string]any, name string) (time.Time, bool, error) {
	v, ok := raw[name]
	if !ok {
		return time.Time{}, false, nil
	}
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(n), 64); err != nil {
			return time.Time{}, true, invalid("%s is not a valid NumericDate", name)
		}
	case float64:
		f = n
	default:
		return time.Time{}, true, invalid("%s is not a number", name)
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, invalid("%s is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// header is the part of a JOSE header this package reads.
type header struct {
	alg string
	kid string
}

// b64 decodes JWS segments: unpadded base64url, strictly.
var b64 = base64.RawURLEncoding.Strict()

// parseHeader checks a token's shape and reads its header.
func parseHeader(token string) (header, error) {
	segs, err := segments(token)
	if err != nil {
		return header{}, err
	}
	data, err := b64.DecodeString(segs[0])
	if err != nil {
		return header{}, invalid("the header is not base64url")
	}
	var h map[string]any
	if err := json.Unmarshal(data, &h); err != nil || h == nil {
		return header{}, invalid("the header is not a JSON object")
	}
	var hdr header
	var ok bool
	if hdr.alg, ok = h["alg"].(string); !ok || hdr.alg == "" {
		return header{}, invalid("the header has no alg")
	}
	if kid, present := h["kid"]; present {
		if hdr.kid, ok = kid.(string); !ok {
			return header{}, invalid("the header's kid is not a string")
		}
	}
	if _, present := h["crit"]; present {
		// RFC 7515 4.1.11: extensions this package does not implement
		// must make the token invalid.
		return header{}, invalid("the header has critical extensions (crit)")
	}
	return hdr, nil
}

// segments splits a compact JWS into its three segments.
func segments(token string) ([]string, error) {
	switch {
	case token == "":
		return nil, invalid("the token is empty")
	case len(token) > MaxTokenSize:
		return nil, invalid("the token is larger than %d bytes", MaxTokenSize)
	}
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return nil, invalid("the token is not a compact JWS of three segments")
	}
	return segs, nil
}

// Issuer returns the "iss" claim of token WITHOUT verifying anything: the
// result is untrusted, chosen by whoever sent the token. Use it only to find
// the providers registered for that issuer, then [Verifier.Verify] the token
// against them. Errors wrap [ErrInvalidToken].
func Issuer(token string) (string, error) {
	if _, err := parseHeader(token); err != nil {
		return "", err
	}
	segs, err := segments(token)
	if err != nil {
		return "", err
	}
	data, err := b64.DecodeString(segs[1])
	if err != nil {
		return "", invalid("the payload is not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(data, &claims); err != nil {
		return "", invalid("the payload is not a JSON object")
	}
	iss, ok := claims["iss"].(string)
	if !ok || iss == "" {
		return "", invalid("the token has no iss")
	}
	return iss, nil
}

// invalid returns an error wrapping ErrInvalidToken with a reason. Callers
// must never pass the token or key material.
func invalid(format string, args ...any) error {
	return &tokenError{reason: fmt.Sprintf(format, args...)}
}

// tokenError is a rejected token's reason.
type tokenError struct{ reason string }

func (e *tokenError) Error() string { return ErrInvalidToken.Error() + ": " + e.reason }
func (e *tokenError) Unwrap() error { return ErrInvalidToken }
