package names

import (
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
