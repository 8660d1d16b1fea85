package groups

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/groupgate/groupgate/names"
)

// MaxFullNameLen is TechPass's limit on the length of a group name; the full
// name <TENANT>:<PROJECT>:<group> must fit in it.
const MaxFullNameLen = 99

// MaxDescriptionLen bounds a group's description (Azure AD's own limit).
const MaxDescriptionLen = 1024

// Name is a fully qualified group name. Tenant and Project are upper case;
// Group keeps the case it was created with but is unique case-insensitively
// within its project. The zero value is not valid.
type Name struct {
	Tenant  string `validate:"tenant"`
	Project string `validate:"project"`
	Group   string `validate:"groupname"`
}

// String returns the full name, <TENANT>:<PROJECT>:<group>.
func (n Name) String() string { return n.Tenant + ":" + n.Project + ":" + n.Group }

// Key returns the case-folded identity of the group within its project.
func (n Name) Key() string { return strings.ToLower(n.Group) }

// NewValidator returns a validator with the naming rules registered as the
// custom tags "tenant", "project", "groupname" and "fullname". It is safe for
// concurrent use.
func NewValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	must := func(tag string, fn validator.Func) {
		if err := v.RegisterValidation(tag, fn); err != nil {
			panic(fmt.Sprintf("groups: register %s: %v", tag, err)) // static tags: cannot fail
		}
	}
	must("tenant", func(fl validator.FieldLevel) bool { return names.CanonicalTenant(fl.Field().String()) })
	must("project", func(fl validator.FieldLevel) bool { return names.CanonicalProject(fl.Field().String()) })
	must("groupname", func(fl validator.FieldLevel) bool { return names.ValidGroup(fl.Field().String()) })
	v.RegisterStructValidation(func(sl validator.StructLevel) {
		n := sl.Current().Interface().(Name)
		if len(n.String()) > MaxFullNameLen {
			sl.ReportError(n.Group, "Group", "Group", "fullname", "")
		}
	}, Name{})
	return v
}

// FieldError is one problem with one input field, worded for the caller.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every problem found with an input. It wraps
// ErrInvalid.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// NewName builds and checks the name of group in project of tenant. Tenant
// and project are accepted in any case and upper-cased (ASCII letters only:
// a name that breaks its pattern as written stays invalid); the group keeps
// its case. It returns a *ValidationError naming each offending part.
func NewName(v *validator.Validate, tenant, project, group string) (Name, error) {
	n := Name{Tenant: names.Upper(tenant), Project: names.Upper(project), Group: group}
	if err := v.Struct(n); err != nil {
		return Name{}, translate(err)
	}
	return n, nil
}

// ParseFullName splits and checks a full name <TENANT>:<PROJECT>:<group>.
// Unlike NewName it is strict about case: a full name is always written with
// its tenant and project in upper case.
func ParseFullName(v *validator.Validate, s string) (Name, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Name{}, &ValidationError{Fields: []FieldError{{Field: "fullName", Message: "must have the form <TENANT>:<PROJECT>:<group>"}}}
	}
	n := Name{Tenant: parts[0], Project: parts[1], Group: parts[2]}
	if err := v.Struct(n); err != nil {
		return Name{}, translate(err)
	}
	return n, nil
}

// fieldMessages words each rule for the caller; the field names are those of
// the HTTP API.
var fieldMessages = map[string]FieldError{
	"tenant":    {"tenant", names.TenantRule},
	"project":   {"project", names.ProjectRule},
	"groupname": {"name", names.GroupRule},
	"fullname":  {"name", fmt.Sprintf("the full name <TENANT>:<PROJECT>:<group> must be at most %d characters", MaxFullNameLen)},
}

func translate(err error) error {
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return fmt.Errorf("validate name: %w", err)
	}
	out := &ValidationError{}
	for _, fe := range ves {
		if m, ok := fieldMessages[fe.Tag()]; ok {
			out.Fields = append(out.Fields, m)
			continue
		}
		out.Fields = append(out.Fields, FieldError{Field: strings.ToLower(fe.Field()), Message: "is invalid"})
	}
	return out
}

// ValidateDescription checks a group description.
func ValidateDescription(d string) error {
	if len(d) > MaxDescriptionLen {
		return &ValidationError{Fields: []FieldError{{Field: "description", Message: fmt.Sprintf("must be at most %d bytes", MaxDescriptionLen)}}}
	}
	for _, r := range d {
		if r == 0 || (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || r == '\uFFFD' {
			return &ValidationError{Fields: []FieldError{{Field: "description", Message: "must be valid UTF-8 text without control characters"}}}
		}
	}
	return nil
}
