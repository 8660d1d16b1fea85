package audit

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFieldLen is the most runes Sanitize leaves in a string.
const MaxFieldLen = 256

// maxSanitizeInput bounds the bytes of its input Sanitize looks at, so that
// its cost is bounded whatever a caller passes.
const maxSanitizeInput = 64 * MaxFieldLen

// Redaction marks. They contain characters the secret patterns do not, so
// redacting twice changes nothing.
const (
	redacted    = "[redacted]"
	redactedJWT = "[redacted-jwt]"
)

// Secret-shaped text. The patterns are deliberately broad: a false positive
// costs a few characters of an audit detail, a miss leaks a credential.
var (
	// An API key gk_<key id>_<secret>: the key id is kept (it names the key
	// and is no secret), the secret goes.
	apiKeyRE = regexp.MustCompile(`(gk_[a-z0-9]{1,64}_)[A-Za-z0-9_-]{16,}`)
	// A JWT or JWS: header and payload are base64url JSON objects ("eyJ").
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?`)
	// An Authorization header value: a scheme, then a token that does not
	// look like a word: it has a digit or symbol, mixes case after its first
	// letter, or is long. ("Basic validation failed" stays.)
	authRE = regexp.MustCompile(`\b((?i:bearer|basic))(?:\s+|=|:\s*)(?:` +
		`[A-Za-z0-9._~+/=-]*[0-9._~+/=-][A-Za-z0-9._~+/=-]*|` +
		`[A-Za-z]*[a-z][A-Za-z]*[A-Z][A-Za-z]*|` +
		`[A-Za-z]{20,})`)
)

// Sanitize makes s fit for an audit entry: invalid UTF-8 and characters that
// are not printable (controls, format characters such as bidi overrides)
// become '?', white space becomes a plain space, leading and trailing space
// is trimmed, text shaped like an API key secret, a JWT or an Authorization
// value is redacted, and the result is cut to MaxFieldLen runes (ending in
// "…" when cut). Sanitize(Sanitize(s)) == Sanitize(s).
func Sanitize(s string) string {
	if clean(s) {
		return s // the common case: no allocation
	}
	if len(s) > maxSanitizeInput {
		// What lies this far out would be cut anyway; don't spend time on
		// it. (A split rune at the cut becomes '?'.)
		s = s[:maxSanitizeInput]
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == utf8.RuneError:
			b.WriteByte('?')
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case !unicode.IsPrint(r):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimSpace(b.String())
	// A redaction can expose a new match (a pattern spanning the redacted
	// text's edge); repeat until nothing changes. Each round that changes
	// something replaces a match by a shorter or equal mark, so this ends.
	for {
		next := redact(out)
		if next == out {
			break
		}
		out = next
	}
	if utf8.RuneCountInString(out) > MaxFieldLen {
		n := 0
		for i := range out {
			if n == MaxFieldLen-1 {
				out = strings.TrimSpace(out[:i]) + "…"
				break
			}
			n++
		}
	}
	return out
}

func redact(s string) string {
	if strings.Contains(s, "gk_") {
		s = apiKeyRE.ReplaceAllString(s, "${1}"+redacted)
	}
	if strings.Contains(s, "eyJ") {
		s = jwtRE.ReplaceAllString(s, redactedJWT)
	}
	return authRE.ReplaceAllString(s, "${1} "+redacted)
}

// clean reports whether Sanitize would return s unchanged without looking
// further: short, printable ASCII with nothing a redaction could touch.
func clean(s string) bool {
	if len(s) > MaxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	if s != strings.TrimSpace(s) || strings.Contains(s, "gk_") || strings.Contains(s, "eyJ") {
		return false
	}
	return !authRE.MatchString(s)
}
