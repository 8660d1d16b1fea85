package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// MaxJWKSSize is the largest JWK Set document read from a provider.
const MaxJWKSSize = 1 << 20

// maxRedirects bounds the redirects followed when fetching a JWKS.
const maxRedirects = 3

// jwksEntry is the cached state of one JWKS URL. Guarded by Verifier.mu.
type jwksEntry struct {
	keys        []publicKey // from the last successful fetch; nil before it
	fetched     bool        // a fetch has succeeded
	fetchedAt   time.Time   // of the last successful fetch
	attemptedAt time.Time   // start of the last fetch, successful or not
	lastErr     error       // of the last fetch; nil when it succeeded
	flight      *flight     // the fetch in progress, if any
	usedAt      time.Time   // last lookup, for eviction
}

// flight is one fetch in progress, shared by every request that waits for
// the URL's keys.
type flight struct {
	done chan struct{} // closed when the fetch ended and the entry is updated
}

// idleEviction is how long a JWKS URL may go unused before its cache entry
// is dropped, so providers deleted long ago do not linger.
const idleEviction = 24 * time.Hour

// jwksKeys returns the keys of u usable for hdr: those whose kid matches, or
// the only key when hdr has no kid. It fetches u when nothing is cached, when
// no cached key fits, or (in the background) when the keys are stale, never
// more than once per JWKSMinInterval.
func (v *Verifier) jwksKeys(ctx context.Context, u string, hdr header, alg algorithm) ([]publicKey, error) {
	v.mu.Lock()
	now := v.now()
	e := v.entry(u, now)
	e.usedAt = now

	keys, selErr := selectKeys(e.keys, e.fetched, hdr, alg)
	stale := !e.fetched || now.Sub(e.fetchedAt) >= v.refresh
	if selErr == nil && !stale {
		v.mu.Unlock()
		return keys, nil
	}
	// A refresh is wanted: because the keys are stale, or because none
	// fits this token (unknown kid) or none is cached.
	fl := e.flight
	if fl == nil && (e.attemptedAt.IsZero() || now.Sub(e.attemptedAt) >= v.minInterval) {
		fl = v.startFetch(ctx, u, e, now)
	}
	if selErr == nil || fl == nil {
		// Either a cached key fits (a stale one is still better than
		// making the request wait for the refresh), or a fetch is not
		// allowed yet: answer from what is cached.
		fetched, lastErr := e.fetched, e.lastErr
		v.mu.Unlock()
		if selErr != nil && !fetched && lastErr != nil {
			return nil, keysUnavailable(lastErr)
		}
		return keys, selErr
	}
	v.mu.Unlock()

	select {
	case <-fl.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w: waiting for the JWKS: %w", ErrInvalidToken, ErrKeysUnavailable, ctx.Err())
	}

	v.mu.Lock()
	keys, selErr = selectKeys(e.keys, e.fetched, hdr, alg)
	fetched, lastErr := e.fetched, e.lastErr
	v.mu.Unlock()
	if selErr != nil && !fetched && lastErr != nil {
		return nil, keysUnavailable(lastErr)
	}
	return keys, selErr
}

func keysUnavailable(cause error) error {
	return fmt.Errorf("%w: %w: %w", ErrInvalidToken, ErrKeysUnavailable, cause)
}

// entry returns the cache entry of u, creating it (and dropping idle ones)
// if needed. Call with v.mu held.
func (v *Verifier) entry(u string, now time.Time) *jwksEntry {
	if e, ok := v.jwks[u]; ok {
		return e
	}
	for k, old := range v.jwks {
		if old.flight == nil && now.Sub(old.usedAt) > idleEviction {
			delete(v.jwks, k)
		}
	}
	e := &jwksEntry{}
	v.jwks[u] = e
	return e
}

// startFetch starts fetching u into e. Call with v.mu held. The fetch does
// not stop when ctx is cancelled: other requests may be waiting for it.
func (v *Verifier) startFetch(ctx context.Context, u string, e *jwksEntry, now time.Time) *flight {
	fl := &flight{done: make(chan struct{})}
	e.flight = fl
	e.attemptedAt = now
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.fetchTimeout)
	go func() {
		defer close(fl.done)
		defer cancel()
		keys, err := v.fetchJWKS(fctx, u)
		v.mu.Lock()
		defer v.mu.Unlock()
		e.flight = nil
		e.lastErr = err
		if err == nil {
			e.keys, e.fetched, e.fetchedAt = keys, true, v.now()
		}
	}()
	return fl
}

// selectKeys picks the keys for a token among a JWKS's. The error wraps
// ErrInvalidToken.
func selectKeys(keys []publicKey, fetched bool, hdr header, alg algorithm) ([]publicKey, error) {
	if !fetched {
		return nil, invalid("the provider's JWKS has not been fetched")
	}
	var named []publicKey
	if hdr.kid == "" {
		if len(keys) != 1 {
			return nil, invalid("the token has no kid and the provider's JWKS holds %d keys", len(keys))
		}
		named = keys
	} else {
		for _, k := range keys {
			if k.kid == hdr.kid {
				named = append(named, k)
			}
		}
		if len(named) == 0 {
			return nil, invalid("no key with kid %.64q in the provider's JWKS", hdr.kid)
		}
	}
	var fit []publicKey
	for _, k := range named {
		if (k.alg == "" || k.alg == hdr.alg) && alg.fits(k.key) {
			fit = append(fit, k)
		}
	}
	if len(fit) == 0 {
		return nil, invalid("no key of the provider's JWKS with kid %.64q fits algorithm %s", hdr.kid, hdr.alg)
	}
	return fit, nil
}

// fetchJWKS downloads and parses a JWK Set. Its errors say what went wrong
// without quoting the response.
func (v *Verifier) fetchJWKS(ctx context.Context, u string) ([]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errors.New("JWKS fetch: cannot build the request")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL
		}
		return nil, fmt.Errorf("JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("JWKS fetch: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS fetch: reading the body: %w", err)
	}
	if len(body) > MaxJWKSSize {
		return nil, fmt.Errorf("JWKS fetch: the document is larger than %d bytes", MaxJWKSSize)
	}
	return parseJWKS(body)
}

// jwk is the part of a JSON Web Key this package reads (RFC 7517, 7518,
// 8037).
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"`
}

// parseJWKS returns the usable signature keys of a JWK Set. Keys meant for
// encryption, of unsupported types or curves, malformed, too weak, or
// published with their private part are skipped; a set with no usable key is
// valid and simply verifies nothing.
func parseJWKS(body []byte) ([]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, errors.New("JWKS fetch: the document is not a JWK Set")
	}
	keys := []publicKey{}
	for _, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			continue
		}
		if key, ok := k.publicKey(); ok {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// publicKey converts a JWK, reporting false when it is not a usable
// signature key.
func (k jwk) publicKey() (publicKey, bool) {
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, false
	}
	if k.KeyOps != nil && !slices.Contains(k.KeyOps, "verify") {
		return publicKey{}, false
	}
	if k.D != "" {
		return publicKey{}, false // a published private key verifies nothing
	}
	var (
		key  any
		kind keyKind
	)
	switch k.Kty {
	case "RSA":
		n, okN := decodeB64(k.N)
		e, okE := decodeB64(k.E)
		if !okN || !okE || len(e) == 0 || len(e) > 4 {
			return publicKey{}, false
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Int64() < 3 || exp.Int64()%2 == 0 || exp.Int64() > 1<<31-1 {
			return publicKey{}, false
		}
		key, kind = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, kindRSA
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return publicKey{}, false
		}
		size := (curve.Params().BitSize + 7) / 8
		x, okX := decodeB64(k.X)
		y, okY := decodeB64(k.Y)
		if !okX || !okY || len(x) != size || len(y) != size {
			return publicKey{}, false
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, false
		}
		key, kind = pub, kindEC
	case "OKP":
		x, ok := decodeB64(k.X)
		if k.Crv != "Ed25519" || !ok || len(x) != ed25519.PublicKeySize {
			return publicKey{}, false
		}
		key, kind = ed25519.PublicKey(x), kindEd25519
	default:
		return publicKey{}, false
	}
	if checkKey(key) != "" {
		return publicKey{}, false
	}
	if k.Alg != "" {
		a, ok := algorithms[k.Alg]
		if !ok || a.kind != kind || !a.fits(key) {
			return publicKey{}, false // an encryption alg, or one the key cannot serve
		}
	}
	return publicKey{kid: k.Kid, alg: k.Alg, key: key}, true
}

// decodeB64 decodes unpadded base64url, as JWKs are written.
func decodeB64(s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil
}

// redirectPolicy follows at most maxRedirects redirects, and only to URLs a
// provider could have registered itself (see checkJWKSURL), so a JWKS
// endpoint cannot bounce the fetch to plain http or to an internal host
// (whose address the dialler would refuse anyway). next is the client's own
// policy, if any.
func redirectPolicy(next func(*http.Request, []*http.Request) error, allowLoopback bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return errors.New("too many redirects")
		}
		if msg := checkJWKSURL(req.URL.String(), allowLoopback); msg != "" {
			return errors.New("redirected to a URL that " + msg)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}
