package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/groupgate/groupgate/groups"
)

// idempotencyKey reads an Idempotency-Key header (IETF httpapi draft: an
// sf-string, so optionally in double quotes): 1-255 printable ASCII
// characters, none of them '"' or '\'. A nil header means none was sent.
func idempotencyKey(header *string) (string, error) {
	if header == nil {
		return "", nil
	}
	k := strings.TrimSpace(*header)
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	ok := len(k) >= 1 && len(k) <= 255
	for i := 0; ok && i < len(k); i++ {
		ok = k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\'
	}
	if !ok {
		return "", &Error{Status: http.StatusBadRequest, Title: "Invalid Idempotency-Key",
			Detail: "Idempotency-Key must be 1-255 printable ASCII characters, optionally in double quotes.",
			Fields: []groups.FieldError{{Field: "Idempotency-Key", Message: "must be 1-255 printable ASCII characters"}}}
	}
	return k, nil
}

// fingerprint identifies a request's meaning, so that a retry with the same
// Idempotency-Key can be told apart from a different request reusing it: the
// method, the normalized target and the normalized body.
func fingerprint(method string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(method))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
