// Package names holds the naming rules of tenants, projects and groups: one
// definition of each, the pattern openapi.yaml states for it, used by the
// HTTP API, the domain and the configuration alike.
//
// Tenant and project names are accepted in any case and stored upper case.
// Only ASCII letters change case: a name is valid exactly when its pattern
// matches it as written, so no Unicode case folding (ſ to S, K to K) can
// turn an invalid name into another tenant's or project's.
package names

import "regexp"

// The patterns, as openapi.yaml states them (a test holds the two equal).
const (
	// TenantPattern is a TechPass tenant namespace, e.g. SHIP.
	TenantPattern = `^[A-Za-z][A-Za-z0-9-]{1,15}$`
	// ProjectPattern is a project within a tenant, e.g. MOH.
	ProjectPattern = `^[A-Za-z][A-Za-z0-9-]{0,31}$`
	// GroupPattern is a group's short name, e.g. billing; its case is kept.
	GroupPattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`
)

// The rules, worded for callers.
const (
	TenantRule  = "must be 2-16 characters: a letter, then letters, digits or '-'"
	ProjectRule = "must be 1-32 characters: a letter, then letters, digits or '-'"
	GroupRule   = "must be 1-64 characters: a letter or digit, then letters, digits, '.', '_' or '-'"
)

var (
	tenantRE  = regexp.MustCompile(TenantPattern)
	projectRE = regexp.MustCompile(ProjectPattern)
	groupRE   = regexp.MustCompile(GroupPattern)
)

// ValidTenant reports whether s is a tenant name, in any case.
func ValidTenant(s string) bool { return tenantRE.MatchString(s) }

// ValidProject reports whether s is a project name, in any case.
func ValidProject(s string) bool { return projectRE.MatchString(s) }

// ValidGroup reports whether s is a group's short name.
func ValidGroup(s string) bool { return groupRE.MatchString(s) }

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
