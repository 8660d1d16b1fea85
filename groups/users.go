package groups

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// This file holds the user identifiers the API accepts.

// NormalizeUser checks a user identifier, a TechPass login e-mail or an
// Azure AD object id (a UUID), and returns it lower-cased, the form the
// mirror and the operations keep. It returns a *ValidationError naming
// field otherwise.
func (s *Service) NormalizeUser(field, id string) (string, error) {
	id = strings.TrimSpace(id)
	// The length is checked after lower-casing, which can lengthen a letter
	// (U+023A, 2 bytes, becomes U+2C65, 3 bytes).
	if lower := strings.ToLower(id); len(lower) <= 254 && (IsEmail(id) || IsObjectID(id)) {
		return lower, nil
	}
	return "", &ValidationError{Fields: []FieldError{{Field: field, Message: fmt.Sprintf("%q is neither an e-mail address nor an object id", clip(id, 64))}}}
}

// userIDs checks user identifiers for NormalizeUser and for callers
// without a Service (webhook deliveries): one check for both. A validator
// is safe for concurrent use and holds nothing that changes.
var userIDs = validator.New()

// IsEmail reports whether s is an e-mail address as the API accepts one
// (at most 254 bytes, no display name).
func IsEmail(s string) bool { return len(s) <= 254 && userIDs.Var(s, "email") == nil }

// IsObjectID reports whether s is an Azure AD object id (a UUID, any case).
func IsObjectID(s string) bool { return userIDs.Var(s, "uuid") == nil }

// clip shortens s to at most n bytes for an error message, without
// cutting a character in two.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
