package names

import (
	"regexp"
	"strings"
	"testing"
)

func TestNonASCIILettersAreNeverFolded(t *testing.T) {
	for _, s := range []string{"ſHIP", "SHİP", "\u212aEY", "MOſ"} {
		if ValidTenant(s) || ValidProject(s) || ValidGroup(s) {
			t.Errorf("%q is valid", s)
		}
	}
	if got := Upper("ſhip"); got != "ſHIP" {
		t.Errorf("Upper(ſhip) = %q, want ſHIP", got)
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name                   string
		tenant, project, group bool
	}{
		{"ship", true, true, true},
		{"S", false, true, true},
		{"SHIP-2", true, true, true},
		{"2SHIP", false, false, true},
		{"-a", false, false, false},
		{"a.b_c", false, false, true},
		{strings.Repeat("A", 16), true, true, true},
		{strings.Repeat("A", 17), false, true, true},
		{strings.Repeat("A", 32), false, true, true},
		{strings.Repeat("A", 33), false, false, true},
		{strings.Repeat("A", 64), false, false, true},
		{strings.Repeat("A", 65), false, false, false},
		{"", false, false, false},
		{"A B", false, false, false},
		{"AB\n", false, false, false},
	}
	for _, tt := range tests {
		if got := ValidTenant(tt.name); got != tt.tenant {
			t.Errorf("ValidTenant(%q) = %v", tt.name, got)
		}
		if got := ValidProject(tt.name); got != tt.project {
			t.Errorf("ValidProject(%q) = %v", tt.name, got)
		}
		if got := ValidGroup(tt.name); got != tt.group {
			t.Errorf("ValidGroup(%q) = %v", tt.name, got)
		}
	}
	if !CanonicalTenant("SHIP") || CanonicalTenant("Ship") || !CanonicalProject("MOH-2") || CanonicalProject("moh") {
		t.Error("canonical forms are upper case")
	}
	if got := Upper("ship-2x"); got != "SHIP-2X" {
		t.Errorf("Upper = %q", got)
	}
}

// FuzzMatchersAreThePatterns holds each hand-written matcher to the answers
// regexp gives for its pattern, the one the spec states.
func FuzzMatchersAreThePatterns(f *testing.F) {
	for _, s := range []string{"", "S", "SHIP", "ship-2", "2SHIP", "-a", "a.b_c", "A B", "AB\n", "ſHIP", "SHİP",
		strings.Repeat("A", 16), strings.Repeat("A", 17), strings.Repeat("A", 33), strings.Repeat("a", 65), "é", "a\x00"} {
		f.Add(s)
	}
	f.Add("SHIP_CLIENT_SECRET")
	f.Add("_x9")
	f.Add("0123456789abcdef0123")
	patterns := []string{TenantPattern, ProjectPattern, GroupPattern, EnvPattern, KeyIDPattern}
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		res[i] = regexp.MustCompile(p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, p := range patterns {
			if got, want := Matcher(p)(s), res[i].MatchString(s); got != want {
				t.Fatalf("%s on %q: matcher %v, regexp %v", p, s, got, want)
			}
		}
	})
}

func TestMatcherOfOtherPatterns(t *testing.T) {
	if Matcher(`^[a-z]+$`) != nil {
		t.Error("Matcher gave a matcher for a pattern it does not know")
	}
}
