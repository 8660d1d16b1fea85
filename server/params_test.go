package server

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate"
)

// specRules compiles the rules of the published spec, as the server does,
// with each rule's schema for the oracle.
func specRules(tb testing.TB) (map[string][]paramRule, []*openapi3.Schema, []paramRule) {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(groupgate.PublishedSpec())
	if err != nil {
		tb.Fatal(err)
	}
	rules, err := paramRules(doc)
	if err != nil {
		tb.Fatal(err)
	}
	// Every parameter once, in a fixed order, with its schema.
	var schemas []*openapi3.Schema
	var flat []paramRule
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		op := findOperation(doc, id)
		for _, r := range rules[id] {
			for _, p := range op {
				if p.Value.In == r.in && (p.Value.Name == r.name || http.CanonicalHeaderKey(p.Value.Name) == r.name) {
					schemas = append(schemas, p.Value.Schema.Value)
					flat = append(flat, r)
					break
				}
			}
		}
	}
	return rules, schemas, flat
}

func findOperation(doc *openapi3.T, id string) openapi3.Parameters {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.OperationID == id {
				return append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...)
			}
		}
	}
	return nil
}

// FuzzParamRule checks each compiled rule against kin-openapi's own schema
// validation of the same value (an independent implementation of the same
// schema): a value passes the rule exactly when it is valid for the schema.
func FuzzParamRule(f *testing.F) {
	_, schemas, rules := specRules(f)
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		i := int(which) % len(rules)
		r, s := rules[i], schemas[i]
		msg := r.check(value)
		if !utf8.ValidString(value) {
			if msg == "" {
				t.Fatalf("%s %s: %q is not UTF-8 but passed", r.in, r.name, value)
			}
			return
		}
		var v any = value
		switch r.typ {
		case openapi3.TypeInteger:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				if msg == "" {
					t.Fatalf("%s %s: %q is no integer but passed", r.in, r.name, value)
				}
				return
			}
			v = float64(n)
		case openapi3.TypeNumber, openapi3.TypeBoolean:
			return // none in the spec
		}
		err := s.VisitJSON(v, openapi3.EnableFormatValidation())
		if (msg == "") != (err == nil) {
			t.Fatalf("%s %s = %q: rule says %q, schema says %v", r.in, r.name, value, msg, err)
		}
	})
}

func TestEveryParameterHasARule(t *testing.T) {
	rules, _, flat := specRules(t)
	if len(rules) < 25 || len(flat) < 20 {
		t.Fatalf("%d operations with %d parameters compiled: too few", len(rules), len(flat))
	}
	for _, r := range rules["listAudit"] {
		if r.name == "limit" && (r.min == nil || *r.min != 1) {
			t.Errorf("listAudit limit has no minimum 1: %+v", r)
		}
	}
}

// BenchmarkCheckParams is the check's cost on the cached list's path: two
// path parameters, no query.
func BenchmarkCheckParams(b *testing.B) {
	rules, _, _ := specRules(b)
	e := echo.New()
	req := httptest.NewRequest(http.MethodGet, "/v1/tenants/SHIP/projects/MOH/groups", nil)
	c := e.NewContext(req, httptest.NewRecorder())
	c.SetParamNames("tenant", "project")
	c.SetParamValues("SHIP", "MOH")
	list := rules["listGroups"]
	b.ReportAllocs()
	for b.Loop() {
		if fields := paramProblems(c, list); fields != nil {
			b.Fatal(fields)
		}
	}
}
