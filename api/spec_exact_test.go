package api

import (
	"regexp"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/tenants"
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

// TestEveryPatternIsKnown: every pattern openapi.yaml states anywhere is
// one the code holds: a name pattern of package names, or the pattern of an
// id the service issues, which must match the ids it does issue. A pattern
// copied with a change (a name rule that drifted from names) fails here,
// wherever in the spec it is written.
func TestEveryPatternIsKnown(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(groupgate.OpenAPISpec(), &root); err != nil {
		t.Fatal(err)
	}
	_, key := tenants.NewKey()
	issued := map[string]string{ // pattern -> an id the service issues
		names.KeyIDPattern:                 key.ID,
		`^op_([0-9a-v]{26}|[a-z2-7]{26})$`: queue.NewID(),
	}
	seen := map[string]int{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k, v := n.Content[i], n.Content[i+1]; k.Value == "pattern" && v.Kind == yaml.ScalarNode {
					seen[v.Value]++
					id, isIssued := issued[v.Value]
					if names.Matcher(v.Value) == nil && !isIssued {
						t.Errorf("line %d: pattern %q is neither a pattern of package names nor an issued id's", v.Line, v.Value)
					}
					if isIssued && !regexp.MustCompile(v.Value).MatchString(id) {
						t.Errorf("line %d: pattern %q refuses the id %q the service issues", v.Line, v.Value, id)
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	for _, p := range []string{names.TenantPattern, names.ProjectPattern, names.GroupPattern, names.KeyIDPattern} {
		if seen[p] == 0 {
			t.Errorf("openapi.yaml never states %q", p)
		}
	}
}
