package secretbox_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/groupgate/groupgate/secretbox"
)

func TestSealOpen(t *testing.T) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	for name, kek := range map[string][]byte{
		"hex":    []byte(hex.EncodeToString(raw)),
		"base64": []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"url64":  []byte(base64.RawURLEncoding.EncodeToString(raw)),
	} {
		b, err := secretbox.New(kek)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		secret := []byte("client-secret-value")
		sealed := b.Seal(secret, "tenant/SHIP/client_secret")
		if bytes.Contains(sealed, secret) {
			t.Fatalf("%s: ciphertext contains the plaintext", name)
		}
		if again := b.Seal(secret, "tenant/SHIP/client_secret"); bytes.Equal(again, sealed) {
			t.Fatalf("%s: sealing twice gives the same bytes (nonce reuse)", name)
		}
		got, err := b.Open(sealed, "tenant/SHIP/client_secret")
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%s: open = %q, %v", name, got, err)
		}
		if _, err := b.Open(sealed, "tenant/OTHER/client_secret"); !errors.Is(err, secretbox.ErrOpen) {
			t.Fatalf("%s: opened in another place: %v", name, err)
		}
		tampered := append([]byte(nil), sealed...)
		tampered[len(tampered)-1] ^= 1
		if _, err := b.Open(tampered, "tenant/SHIP/client_secret"); !errors.Is(err, secretbox.ErrOpen) {
			t.Fatalf("%s: opened a tampered value", name)
		}
	}
}

func TestOtherKEKCannotOpen(t *testing.T) {
	a, _ := secretbox.New([]byte(hex.EncodeToString(bytes.Repeat([]byte{1}, 32))))
	b, _ := secretbox.New([]byte(hex.EncodeToString(bytes.Repeat([]byte{2}, 32))))
	if a.KeyID() == b.KeyID() {
		t.Fatal("different KEKs share an id")
	}
	if _, err := b.Open(a.Seal([]byte("x"), "w"), "w"); !errors.Is(err, secretbox.ErrOpen) {
		t.Fatalf("another KEK opened it: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("short"), make([]byte, 32), []byte("a 32 character typed password!!!"), []byte(hex.EncodeToString(make([]byte, 16)))} {
		if _, err := secretbox.New(bad); !errors.Is(err, secretbox.ErrKey) {
			t.Errorf("New(%q) = %v, want ErrKey", bad, err)
		}
	}
	for _, garbage := range [][]byte{nil, {1}, {2, 3, 4}, make([]byte, 40)} {
		if _, err := a.Open(garbage, "w"); !errors.Is(err, secretbox.ErrOpen) {
			t.Errorf("Open(%v) = %v", garbage, err)
		}
	}
	if fp := secretbox.Fingerprint([]byte("s")); len(fp) != len("sha256:")+12 {
		t.Errorf("fingerprint %q", fp)
	}
}
