package api

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/groupgate/groupgate/names"
)

// TestNamePatternsAreTheSpecs: every place openapi.yaml states a tenant,
// project or group name pattern states the one package names checks.
func TestNamePatternsAreTheSpecs(t *testing.T) {
	doc := loadSpec(t)
	pattern := func(s *openapi3.SchemaRef) string {
		if s == nil || s.Value == nil {
			return "<no schema>"
		}
		return s.Value.Pattern
	}
	prop := func(schema, name string) string {
		return pattern(doc.Components.Schemas[schema].Value.Properties[name])
	}
	param := func(path, method, name string) string {
		op := doc.Paths.Value(path).GetOperation(method)
		if p := op.Parameters.GetByInAndName("query", name); p != nil {
			return pattern(p.Schema)
		}
		return "<no parameter>"
	}
	for _, tt := range []struct{ where, got, want string }{
		{"parameter tenant", pattern(doc.Components.Parameters["tenant"].Value.Schema), names.TenantPattern},
		{"parameter project", pattern(doc.Components.Parameters["project"].Value.Schema), names.ProjectPattern},
		{"parameter group", pattern(doc.Components.Parameters["group"].Value.Schema), names.GroupPattern},
		{"TenantInput.name", prop("TenantInput", "name"), names.TenantPattern},
		{"ProjectInput.name", prop("ProjectInput", "name"), names.ProjectPattern},
		{"CreateGroupRequest.name", prop("CreateGroupRequest", "name"), names.GroupPattern},
		{"listKeys tenant", param("/v1/keys", "GET", "tenant"), names.TenantPattern},
		{"listTenantGroups project", param("/v1/tenants/{tenant}/groups", "GET", "project"), names.ProjectPattern},
		{"listAudit tenant", param("/v1/audit", "GET", "tenant"), names.TenantPattern},
		{"listAudit project", param("/v1/audit", "GET", "project"), names.ProjectPattern},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: pattern %q, want %q (names)", tt.where, tt.got, tt.want)
		}
	}
}

// TestParameterErrorsAreOneStatus: a parameter that breaks its schema is a
// 400 everywhere, so every operation with parameters documents 400, and no
// operation without a body documents 422 (which is for body values).
func TestParameterErrorsAreOneStatus(t *testing.T) {
	doc := loadSpec(t)
	for _, o := range operations(doc) {
		params := len(o.op.Parameters) + len(doc.Paths.Value(o.path).Parameters)
		if params > 0 && o.op.Responses.Value("400") == nil {
			t.Errorf("%s has parameters but documents no 400", o)
		}
		if o.op.RequestBody == nil && o.op.Responses.Value("422") != nil && o.method == "GET" {
			t.Errorf("%s has no body but documents 422", o)
		}
	}
}
