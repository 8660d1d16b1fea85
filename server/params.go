package server

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
)

// paramRule is one parameter of one operation, compiled from its schema in
// openapi.yaml: the spec's patterns and bounds are the checks, so the
// contract and the server cannot disagree on what a valid parameter is.
type paramRule struct {
	name     string
	in       string // path, query or header
	required bool
	typ      string // string, integer, number or boolean
	format   string // date-time checked; others are informative
	pattern  *regexp.Regexp
	matches  func(string) bool // pattern's matcher: names' for the name patterns, else the regexp's
	minLen   uint64
	maxLen   *uint64
	min, max *float64
	enum     []string
}

// dateTimeRE is the shape of an RFC 3339 date-time (section 5.6).
var dateTimeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// paramRules compiles the parameters of every operation of doc, by
// operationId. It fails on a schema feature it cannot check, so a new
// keyword in the spec is never silently ignored.
func paramRules(doc *openapi3.T) (map[string][]paramRule, error) {
	out := map[string][]paramRule{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var rules []paramRule
			params := append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...)
			for _, ref := range params {
				p := ref.Value
				r, err := compileParam(p)
				if err != nil {
					return nil, fmt.Errorf("%s %s parameter %s: %w", method, path, p.Name, err)
				}
				// An operation's parameter overrides the path item's.
				for i := range rules {
					if rules[i].name == r.name && rules[i].in == r.in {
						rules = append(rules[:i], rules[i+1:]...)
						break
					}
				}
				rules = append(rules, r)
			}
			if len(rules) > 0 {
				out[op.OperationID] = rules
			}
		}
	}
	return out, nil
}

func compileParam(p *openapi3.Parameter) (paramRule, error) {
	if p.Schema == nil || p.Schema.Value == nil {
		return paramRule{}, fmt.Errorf("no schema")
	}
	s := p.Schema.Value
	r := paramRule{name: p.Name, in: p.In, required: p.Required, format: s.Format, minLen: s.MinLength, maxLen: s.MaxLength,
		min: s.Min, max: s.Max}
	if p.In == openapi3.ParameterInHeader {
		r.name = http.CanonicalHeaderKey(p.Name)
	}
	if s.Type == nil || len(*s.Type) != 1 {
		return paramRule{}, fmt.Errorf("needs exactly one type")
	}
	r.typ = (*s.Type)[0]
	switch r.typ {
	case openapi3.TypeString, openapi3.TypeInteger, openapi3.TypeNumber, openapi3.TypeBoolean:
	default:
		return paramRule{}, fmt.Errorf("type %s is not checked", r.typ)
	}
	if s.ExclusiveMin.IsSet() || s.ExclusiveMax.IsSet() || s.MultipleOf != nil || s.Not != nil || len(s.OneOf)+len(s.AnyOf)+len(s.AllOf) > 0 {
		return paramRule{}, fmt.Errorf("a keyword that is not checked")
	}
	if s.Pattern != "" {
		re, err := regexp.Compile(s.Pattern)
		if err != nil {
			return paramRule{}, fmt.Errorf("pattern: %w", err)
		}
		r.pattern, r.matches = re, names.Matcher(s.Pattern)
		if r.matches == nil {
			r.matches = re.MatchString
		}
	}
	for _, v := range s.Enum {
		str, ok := v.(string)
		if !ok {
			return paramRule{}, fmt.Errorf("enum of %T is not checked", v)
		}
		r.enum = append(r.enum, str)
	}
	return r, nil
}

// check returns what is wrong with value, or "".
func (r *paramRule) check(v string) string {
	switch r.typ {
	case openapi3.TypeInteger:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || (r.format == "int32" && (n < math.MinInt32 || n > math.MaxInt32)) {
			return "must be an integer"
		}
		return r.bounds(float64(n))
	case openapi3.TypeNumber:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "must be a number"
		}
		return r.bounds(f)
	case openapi3.TypeBoolean:
		if v != "true" && v != "false" {
			return "must be true or false"
		}
		return ""
	}
	n := uint64(utf8.RuneCountInString(v))
	switch {
	case !utf8.ValidString(v):
		return "must be UTF-8 text"
	case n < r.minLen:
		return fmt.Sprintf("must be at least %d characters", r.minLen)
	case r.maxLen != nil && n > *r.maxLen:
		return fmt.Sprintf("must be at most %d characters", *r.maxLen)
	case r.pattern != nil && !r.matches(v):
		return "must match " + r.pattern.String()
	case r.format == "date-time":
		// time.Parse alone takes forms RFC 3339 does not, such as a
		// one-digit hour.
		if _, err := time.Parse(time.RFC3339, v); err != nil || !dateTimeRE.MatchString(v) {
			return "must be an RFC 3339 date-time, e.g. 2026-01-02T03:04:05Z"
		}
	}
	if len(r.enum) > 0 {
		for _, e := range r.enum {
			if v == e {
				return ""
			}
		}
		return "must be one of " + strings.Join(r.enum, ", ")
	}
	return ""
}

func (r *paramRule) bounds(f float64) string {
	switch {
	case r.min != nil && r.max != nil && (f < *r.min || f > *r.max):
		return fmt.Sprintf("must be from %v to %v", *r.min, *r.max)
	case r.min != nil && f < *r.min:
		return fmt.Sprintf("must be at least %v", *r.min)
	case r.max != nil && f > *r.max:
		return fmt.Sprintf("must be at most %v", *r.max)
	}
	return ""
}

// checkParams refuses, with 400 and every offending parameter named, a
// request whose path, query or header parameters break their operation's
// rules. A parameter given more than once is refused too: none is an array.
func checkParams(rules []paramRule) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if fields := paramProblems(c, rules); len(fields) > 0 {
				return &api.Error{Status: http.StatusBadRequest, Title: "Invalid parameter",
					Detail: "A path, query or header parameter breaks its rule in openapi.yaml; see errors.", Fields: fields}
			}
			return next(c)
		}
	}
}

func paramProblems(c echo.Context, rules []paramRule) []groups.FieldError {
	req := c.Request()
	var query url.Values
	var fields []groups.FieldError
	bad := func(name, msg string) { fields = append(fields, groups.FieldError{Field: name, Message: msg}) }
	for i := range rules {
		r := &rules[i]
		var values []string
		switch r.in {
		case openapi3.ParameterInPath:
			v := c.Param(r.name)
			if req.URL.RawPath != "" {
				// Echo routes on the escaped path, so its parameters are
				// still escaped.
				var err error
				if v, err = url.PathUnescape(v); err != nil {
					bad(r.name, "is not a valid escaped path segment")
					continue
				}
			}
			values = []string{v}
		case openapi3.ParameterInQuery:
			if req.URL.RawQuery == "" {
				continue
			}
			if query == nil {
				var err error
				if query, err = url.ParseQuery(req.URL.RawQuery); err != nil {
					return []groups.FieldError{{Field: "query", Message: "is not a valid query string"}}
				}
			}
			values = query[r.name]
		case openapi3.ParameterInHeader:
			values = req.Header[r.name]
		default:
			continue
		}
		switch {
		case len(values) == 0:
			if r.required {
				bad(r.name, "is required")
			}
		case len(values) > 1:
			bad(r.name, "must be given once")
		default:
			if msg := r.check(values[0]); msg != "" {
				bad(r.name, msg)
			}
		}
	}
	return fields
}
