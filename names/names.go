// Package names holds the naming rules of tenants, projects and groups: one
// definition of each, the pattern openapi.yaml states for it, used by the
// HTTP API, the domain and the configuration alike. It also holds the rule
// for the names of environment variables that a configuration or a
// tenant's credential may point at, and the shape of an API key's id.
//
// Tenant and project names are accepted in any case and stored upper case.
// Only ASCII letters change case: a name is valid exactly when its pattern
// matches it as written, so no Unicode case folding (ſ to S, K to K) can
// turn an invalid name into another tenant's or project's.
package names

// The patterns, as openapi.yaml states them (a test holds the two equal).
const (
	// TenantPattern is a TechPass tenant namespace, e.g. SHIP.
	TenantPattern = `^[A-Za-z][A-Za-z0-9-]{1,15}$`
	// ProjectPattern is a project within a tenant, e.g. MOH.
	ProjectPattern = `^[A-Za-z][A-Za-z0-9-]{0,31}$`
	// GroupPattern is a group's short name, e.g. billing; its case is kept.
	GroupPattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`
	// EnvPattern is the name of an environment variable that holds a
	// secret, e.g. SHIP_CLIENT_SECRET.
	EnvPattern = `^[A-Za-z_][A-Za-z0-9_]*$`
	// KeyIDPattern is an API key's id, the <keyid> of gk_<keyid>_<secret>.
	KeyIDPattern = `^[a-z0-9]{8,32}$`
)

// The rules, worded for callers.
const (
	TenantRule  = "must be 2-16 characters: a letter, then letters, digits or '-'"
	ProjectRule = "must be 1-32 characters: a letter, then letters, digits or '-'"
	GroupRule   = "must be 1-64 characters: a letter or digit, then letters, digits, '.', '_' or '-'"
)

// ValidTenant reports whether s is a tenant name, in any case: whether
// TenantPattern matches it.
func ValidTenant(s string) bool { return shaped(s, 2, 16, isLetter, isNameByte) }

// ValidProject reports whether s is a project name, in any case: whether
// ProjectPattern matches it.
func ValidProject(s string) bool { return shaped(s, 1, 32, isLetter, isNameByte) }

// ValidGroup reports whether s is a group's short name: whether
// GroupPattern matches it.
func ValidGroup(s string) bool { return shaped(s, 1, 64, isAlnum, isGroupByte) }

// ValidEnv reports whether s is an environment variable's name: whether
// EnvPattern matches it.
func ValidEnv(s string) bool { return shaped(s, 1, len(s), isEnvFirst, isEnvByte) }

// ValidKeyID reports whether s is an API key's id: whether KeyIDPattern
// matches it.
func ValidKeyID(s string) bool { return shaped(s, 8, 32, isKeyIDByte, isKeyIDByte) }

// Matcher returns the matcher of pattern when it is one of the patterns
// above (the same answers as regexp, without its cost on every request),
// or nil.
func Matcher(pattern string) func(string) bool {
	switch pattern {
	case TenantPattern:
		return ValidTenant
	case ProjectPattern:
		return ValidProject
	case GroupPattern:
		return ValidGroup
	case EnvPattern:
		return ValidEnv
	case KeyIDPattern:
		return ValidKeyID
	}
	return nil
}

// shaped reports whether s is min to max bytes, the first accepted by
// first and the rest by rest. Every accepted byte is ASCII, so bytes are
// characters, as the patterns count them.
func shaped(s string, min, max int, first, rest func(byte) bool) bool {
	if len(s) < min || len(s) > max || !first(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !rest(s[i]) {
			return false
		}
	}
	return true
}

func isLetter(b byte) bool    { return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' }
func isAlnum(b byte) bool     { return isLetter(b) || '0' <= b && b <= '9' }
func isNameByte(b byte) bool  { return isAlnum(b) || b == '-' }
func isGroupByte(b byte) bool { return isAlnum(b) || b == '.' || b == '_' || b == '-' }
func isEnvFirst(b byte) bool  { return isLetter(b) || b == '_' }
func isEnvByte(b byte) bool   { return isAlnum(b) || b == '_' }
func isKeyIDByte(b byte) bool { return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' }

// CanonicalTenant reports whether s is a tenant name as stored: valid and
// upper case.
func CanonicalTenant(s string) bool { return ValidTenant(s) && Upper(s) == s }

// CanonicalProject reports whether s is a project name as stored: valid and
// upper case.
func CanonicalProject(s string) bool { return ValidProject(s) && Upper(s) == s }

// Upper upper-cases the ASCII letters of s and leaves every other byte as
// it is. Names are upper-cased with it, never with strings.ToUpper, whose
// Unicode mapping folds letters such as ſ (U+017F) into ASCII.
func Upper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
