package groups_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/groupgate/groupgate/groups"
)

func TestNewName(t *testing.T) {
	v := groups.NewValidator()
	long := func(n int) string { return "a" + strings.Repeat("b", n-1) }
	tests := []struct {
		tenant, project, group string
		want                   string // full name, or "" when invalid
		badFields              []string
	}{
		{"SHIP", "MOH", "billing", "SHIP:MOH:billing", nil},
		{"ship", "moh", "Billing", "SHIP:MOH:Billing", nil},
		{"SHIP", "M", "a", "SHIP:M:a", nil},
		{"S-1", "MOH-2", "a.b_c-d", "S-1:MOH-2:a.b_c-d", nil},
		{"S", "MOH", "g", "", []string{"tenant"}},
		{"1SHIP", "MOH", "g", "", []string{"tenant"}},
		{"SHIPSHIPSHIPSHIPX", "MOH", "g", "", []string{"tenant"}},
		{"SHIP", "", "g", "", []string{"project"}},
		{"SHIP", "M_H", "g", "", []string{"project"}},
		{"SHIP", "MOH", "", "", []string{"name"}},
		{"SHIP", "MOH", "-lead", "", []string{"name"}},
		{"SHIP", "MOH", "a:b", "", []string{"name"}},
		{"SHIP", "MOH", "a b", "", []string{"name"}},
		{"SHIP", "MOH", "ünï", "", []string{"name"}},
		{"SHIP", "MOH", long(64), "SHIP:MOH:" + long(64), nil},
		{"SHIP", "MOH", long(65), "", []string{"name"}},
		// 16 + 32 + 2 colons = 50, so a 50-character group makes exactly 99.
		{strings.Repeat("T", 16), strings.Repeat("P", 32), long(49), strings.Repeat("T", 16) + ":" + strings.Repeat("P", 32) + ":" + long(49), nil},
		{strings.Repeat("T", 16), strings.Repeat("P", 32), long(50), "", []string{"name"}},
		{"s", "m_", "-", "", []string{"tenant", "project", "name"}},
	}
	for _, tt := range tests {
		n, err := groups.NewName(v, tt.tenant, tt.project, tt.group)
		if tt.want != "" {
			if err != nil {
				t.Errorf("NewName(%q,%q,%q): unexpected error %v", tt.tenant, tt.project, tt.group, err)
				continue
			}
			if n.String() != tt.want {
				t.Errorf("NewName(%q,%q,%q) = %q, want %q", tt.tenant, tt.project, tt.group, n, tt.want)
			}
			continue
		}
		var ve *groups.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, groups.ErrInvalid) {
			t.Errorf("NewName(%q,%q,%q): error %v, want a ValidationError", tt.tenant, tt.project, tt.group, err)
			continue
		}
		var got []string
		for _, f := range ve.Fields {
			got = append(got, f.Field)
		}
		if strings.Join(got, ",") != strings.Join(tt.badFields, ",") {
			t.Errorf("NewName(%q,%q,%q): bad fields %v, want %v", tt.tenant, tt.project, tt.group, got, tt.badFields)
		}
	}
}

func TestNameKeyIsCaseInsensitive(t *testing.T) {
	v := groups.NewValidator()
	a, _ := groups.NewName(v, "SHIP", "MOH", "Billing")
	b, _ := groups.NewName(v, "ship", "moh", "BILLING")
	if a.Key() != b.Key() || a.Project != b.Project || a.Tenant != b.Tenant {
		t.Fatalf("%v and %v should have the same identity", a, b)
	}
	if a.String() == b.String() {
		t.Fatalf("display names should keep their case: %q %q", a, b)
	}
}

func TestParseFullName(t *testing.T) {
	v := groups.NewValidator()
	for _, s := range []string{"SHIP:MOH:billing", "AB:C:x.y"} {
		n, err := groups.ParseFullName(v, s)
		if err != nil || n.String() != s {
			t.Errorf("ParseFullName(%q) = %v, %v", s, n, err)
		}
	}
	for _, s := range []string{"", "SHIP", "SHIP:MOH", "SHIP:MOH:a:b", "ship:MOH:a", "SHIP:moh:a", "SHIP::a", ":MOH:a"} {
		if _, err := groups.ParseFullName(v, s); !errors.Is(err, groups.ErrInvalid) {
			t.Errorf("ParseFullName(%q): error %v, want ErrInvalid", s, err)
		}
	}
}

func TestValidateDescription(t *testing.T) {
	for _, d := range []string{"", "Billing team", "tab\tand\nnewline", "ünïcode ✓", strings.Repeat("x", groups.MaxDescriptionLen)} {
		if err := groups.ValidateDescription(d); err != nil {
			t.Errorf("ValidateDescription(%q) = %v", d, err)
		}
	}
	for _, d := range []string{strings.Repeat("x", groups.MaxDescriptionLen+1), "nul\x00", "bell\a", "bad\xffutf8", "del\x7f"} {
		if err := groups.ValidateDescription(d); !errors.Is(err, groups.ErrInvalid) {
			t.Errorf("ValidateDescription(%q) = %v, want ErrInvalid", d, err)
		}
	}
}

// FuzzNames checks the naming rules' invariants on arbitrary input: a name
// that NewName accepts is well-formed, fits TechPass's limit, round-trips
// through its full name, and is rejected by nothing downstream.
func FuzzNames(f *testing.F) {
	for _, s := range [][3]string{
		{"SHIP", "MOH", "billing"}, {"ship", "moh", "B.i_l-l"}, {"S", "", ""}, {"SHIP", "MOH", "a:b"},
		{"TTTTTTTTTTTTTTTT", "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP", strings.Repeat("g", 64)},
		{"ŞHIP", "MOH", "x"}, {"SHIP", "MOH", "x\n"}, {"SHIP\x00", "MOH", "x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	v := groups.NewValidator()
	f.Fuzz(func(t *testing.T, tenant, project, group string) {
		n, err := groups.NewName(v, tenant, project, group)
		if err != nil {
			if !errors.Is(err, groups.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		full := n.String()
		if len(full) > groups.MaxFullNameLen || !utf8.ValidString(full) || strings.Count(full, ":") != 2 {
			t.Fatalf("accepted %q, which breaks the naming invariants", full)
		}
		if n.Tenant != strings.ToUpper(n.Tenant) || n.Project != strings.ToUpper(n.Project) {
			t.Fatalf("tenant and project must be upper case: %q", full)
		}
		back, err := groups.ParseFullName(v, full)
		if err != nil || back != n {
			t.Fatalf("ParseFullName(%q) = %v, %v; want %v", full, back, err, n)
		}
	})
}

// FuzzParseFullName checks that parsing never panics and that whatever it
// accepts is printed back unchanged.
func FuzzParseFullName(f *testing.F) {
	for _, s := range []string{"SHIP:MOH:billing", "SHIP:MOH", "::", "SHIP:MOH:a:b", "ship:moh:x", "A:B:" + strings.Repeat("c", 95)} {
		f.Add(s)
	}
	v := groups.NewValidator()
	f.Fuzz(func(t *testing.T, s string) {
		n, err := groups.ParseFullName(v, s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("ParseFullName(%q) printed back as %q", s, n)
		}
	})
}
