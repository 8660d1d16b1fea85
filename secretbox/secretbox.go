// Package secretbox seals credentials at rest with AES-256-GCM under a
// key-encryption key (KEK) that the operator provides from a file or an
// environment variable, never from the store.
//
// Each sealed value is bound to where it belongs (additional data such as
// "tenant/SHIP/clientSecret"), so a ciphertext copied into another tenant's
// record does not open. The nonce is random (96 bits) per seal.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// version prefixes every sealed value so the format can change later.
const version = 1

// Errors returned by this package.
var (
	// ErrKey means the KEK is not 32 bytes written as hex or base64.
	ErrKey = errors.New("secretbox: the key-encryption key must be 32 random bytes written as 64 hex digits or base64 (openssl rand -base64 32)")
	// ErrOpen means a sealed value is corrupt, was sealed under another KEK,
	// or belongs to another place.
	ErrOpen = errors.New("secretbox: cannot open sealed value")
)

// Box seals and opens values. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	id   string
}

// New returns a box for kek: 32 bytes written as 64 hex digits or as base64
// (standard or URL alphabet, padded or not). Raw text is refused, so a typed
// password cannot pass for a key.
func New(kek []byte) (*Box, error) {
	key, err := decodeKey(strings.TrimSpace(string(kek)))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	sum := sha256.Sum256(append([]byte("groupgate-kek-id:"), key...))
	return &Box{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, ErrKey
}

// KeyID identifies the KEK (a hash prefix, not the key), so operators can
// tell which KEK sealed what.
func (b *Box) KeyID() string { return b.id }

// Seal encrypts plaintext for the place named by where.
func (b *Box) Seal(plaintext []byte, where string) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(where))
}

// Open decrypts a value sealed for where. It returns ErrOpen for anything
// that does not open, without saying why.
func (b *Box) Open(sealed []byte, where string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(where))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Fingerprint returns a short, non-reversible identifier of a secret value
// ("sha256:" and 12 hex digits), for showing which value is set.
func Fingerprint(secret []byte) string {
	sum := sha256.Sum256(secret)
	return "sha256:" + hex.EncodeToString(sum[:6])
}
