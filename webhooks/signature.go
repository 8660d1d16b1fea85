package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header TechPass signs deliveries in.
const SignatureHeader = "X-TECHPASS-SIGNATURE"

// Tolerance is how far a delivery's timestamp may be from now.
const Tolerance = 5 * time.Minute

// Errors of Verify. Both mean the delivery is refused and changes nothing.
var (
	// ErrBadSignature: no header, a malformed one, or no secret signs it.
	ErrBadSignature = errors.New("webhooks: signature does not verify")
	// ErrStale: the signed timestamp is more than Tolerance from now.
	ErrStale = errors.New("webhooks: timestamp outside the tolerance")
)

// Sign returns the header value for body signed with secret at t, in the
// form Verify reads: "t=<unix seconds>,v1=<hex HMAC-SHA256>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{':'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header, the X-TECHPASS-SIGNATURE of body, against every
// secret (two during a changeover), comparing in constant time, and checks
// its timestamp is within Tolerance of now. It returns an error wrapping
// ErrBadSignature or ErrStale; the error never contains a secret or the
// signature.
func Verify(header string, body []byte, secrets [][]byte, now time.Time) error {
	sig, err := ParseSignature(header)
	if err != nil {
		return err
	}
	return sig.Verify(body, secrets, now)
}

// Signature is a parsed X-TECHPASS-SIGNATURE header.
type Signature struct {
	ts   string // as sent: digits
	sigs [][]byte
}

// ParseSignature reads an X-TECHPASS-SIGNATURE header without any secret:
// a delivery whose header is absent or malformed is refused (an error
// wrapping ErrBadSignature) before a secret is read.
func ParseSignature(header string) (Signature, error) {
	ts, sigs, err := parseHeader(header)
	if err != nil {
		return Signature{}, err
	}
	return Signature{ts: ts, sigs: sigs}, nil
}

// Verify checks s against body with every secret, in constant time, then
// its timestamp against now, as the function Verify does.
func (s Signature) Verify(body []byte, secrets [][]byte, now time.Time) error {
	n, _ := strconv.ParseInt(s.ts, 10, 64) // digits only, checked by parseHeader
	at := time.Unix(n, 0)
	if n > 1e11 { // milliseconds
		at = time.UnixMilli(n)
	}
	ok := false
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		want := mac(secret, s.ts, body)
		for _, sig := range s.sigs {
			if hmac.Equal(want, sig) {
				ok = true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: no configured secret signs this delivery", ErrBadSignature)
	}
	if d := now.Sub(at); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now (at most %s)", ErrStale, at.UTC().Format(time.RFC3339), d.Round(time.Second), Tolerance)
	}
	return nil
}

// maxHeader bounds the signature header read.
const maxHeader = 1024

// parseHeader reads the timestamp (as sent, digits) and the signatures
// from a header of comma-separated k=v pairs.
func parseHeader(h string) (ts string, sigs [][]byte, err error) {
	if h == "" {
		return "", nil, fmt.Errorf("%w: no %s header", ErrBadSignature, SignatureHeader)
	}
	if len(h) > maxHeader {
		return "", nil, fmt.Errorf("%w: header too long", ErrBadSignature)
	}
	for _, pair := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "t", "ts", "timestamp", "time":
			if ts != "" || v == "" || len(v) > 15 || strings.Trim(v, "0123456789") != "" {
				return "", nil, fmt.Errorf("%w: malformed timestamp", ErrBadSignature)
			}
			ts = v
		case "v1", "v", "s", "sig", "signature":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				continue // another scheme's signature, or garbage: cannot match
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return "", nil, fmt.Errorf("%w: header lacks a timestamp or a signature", ErrBadSignature)
	}
	return ts, sigs, nil
}
