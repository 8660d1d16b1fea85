package techpass

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// RouteName identifies one Automation API operation.
type RouteName string

// The Automation API operations the service uses.
const (
	// RouteListGroups is GET /iam/namespace/{namespace}/groups
	// (published), with ?includeOnTechBiz=true to see TechBiz-managed
	// groups too (published, RN).
	RouteListGroups RouteName = "listGroups"
	// RouteCreateGroup is POST /iam/namespace/{namespace}/groups (assumed).
	RouteCreateGroup RouteName = "createGroup"
	// RouteGetGroup is GET /iam/namespace/{namespace}/groups/{identifier}
	// (published, RN Oct 2024): the group with its users and owners,
	// members paged by query parameters whose names are assumed.
	RouteGetGroup RouteName = "getGroup"
	// RouteDeleteGroup is DELETE /iam/namespace/{namespace}/groups/{groupId}
	// (assumed).
	RouteDeleteGroup RouteName = "deleteGroup"
	// RouteUpdateGroup is PATCH /iam/namespace/{namespace}/groups/{groupId}
	// with {"description"} (assumed).
	RouteUpdateGroup RouteName = "updateGroup"
	// RouteGetUser is GET /iam/users/{identifier}, an e-mail or an object id
	// (published; the answer's shape is assumed).
	RouteGetUser RouteName = "getUser"
	// RouteListMembers is GET
	// /iam/namespace/{namespace}/groups/{groupId}/members?cursor=... , one
	// page of a group's members (assumed; the alternative to reading them
	// through RouteGetGroup).
	RouteListMembers RouteName = "listMembers"
	// RouteAddMember is POST
	// /iam/namespace/{namespace}/groups/{groupId}/members with {"userId"}
	// (assumed).
	RouteAddMember RouteName = "addMember"
	// RouteRemoveMember is DELETE
	// /iam/namespace/{namespace}/groups/{groupId}/members/{userId} (assumed).
	RouteRemoveMember RouteName = "removeMember"
)

// Query parameters of the routes, by the name the client uses for them.
// The name sent on the wire is Route.Params[name], which an operator may
// correct (see ResolveRoutes).
const (
	// ParamIncludeOnTechBiz is listGroups' switch to include
	// TechBiz-managed groups (published name).
	ParamIncludeOnTechBiz = "includeOnTechBiz"
	// ParamPage and ParamPageSize page getGroup's member list (the
	// parameters exist per RN; their names are assumed).
	ParamPage     = "page"
	ParamPageSize = "pageSize"
	// ParamCursor pages listMembers (assumed).
	ParamCursor = "cursor"
)

// Sources of the routes' evidence.
const (
	// SourceRN is GovTechSG/techpass-user-docs,
	// docs/whats-new/production-release-notes.md.
	SourceRN = "RN (GovTechSG/techpass-user-docs production-release-notes)"
	// SourceTenantGuide is TechPass's tenant guide (docs/apis/integration.md).
	SourceTenantGuide = "tenant guide (docs/apis/integration.md)"
	// SourceAssumed marks a route nothing public describes.
	SourceAssumed = "assumed: not published"
)

// Route is one Automation API operation: its method, its path pattern with
// {placeholders}, its query parameters, and whether TechPass publishes it or
// we assume it.
type Route struct {
	Name   RouteName
	Method string
	// Pattern is the path with {placeholders}: {namespace}, {groupId},
	// {userId}, {identifier} (see Placeholders). A route without
	// {namespace} still acts for the namespace whose x-api-key and bearer
	// token it carries.
	Pattern string
	// Params maps the query parameters the route accepts, all optional, by
	// the client's name for them (ParamPage...) to the name sent on the
	// wire. Path does not fill them (the client encodes them itself).
	Params map[string]string
	// Published is true when TechPass documents the route (its method and
	// path); false marks an assumption that must be confirmed against the
	// real API.
	Published bool
	// Source says where the evidence comes from (SourceRN, ...).
	Source string
	// Note says what is published and what is assumed about the route.
	Note string
	// Overridden is true when an operator's configuration changed the
	// route (see ResolveRoutes).
	Overridden bool
}

// Routes returns the built-in table of every Automation API route the
// service calls: what the newest public evidence says, assumptions marked.
// The returned slice is a fresh copy.
func Routes() []Route {
	return []Route{
		{
			Name: RouteListGroups, Method: "GET", Pattern: "/iam/namespace/{namespace}/groups", Published: true,
			Params: map[string]string{ParamIncludeOnTechBiz: "includeOnTechBiz"},
			Source: SourceTenantGuide + "; " + SourceRN,
			Note: `published: answers {"groups":[{"id","name","grn","description","created"}]}; ` +
				`TechBiz-managed groups only with ?includeOnTechBiz=true (RN)`,
		},
		{
			Name: RouteCreateGroup, Method: "POST", Pattern: "/iam/namespace/{namespace}/groups", Source: SourceAssumed,
			Note: `assumed: body {"name","description"}; 201 with the group; 409 when the name exists; 400 past the namespace group limit`,
		},
		{
			Name: RouteGetGroup, Method: "GET", Pattern: "/iam/namespace/{namespace}/groups/{groupId}", Published: true,
			Params: map[string]string{ParamPage: "page", ParamPageSize: "pageSize"},
			Source: SourceRN + ", Oct 2024 (Get Group); Sep 2023 (accountType of users/owners)",
			Note: `published (path .../groups/{identifier}, the group's id): the group with "users" and "owners" ` +
				`(displayName, firstName, lastName, accountType), members paged by query parameters, the full list by default; ` +
				`assumed: the parameter names page (from 1) and pageSize, the users' "id" and "email" fields, 404 when absent`,
		},
		{
			Name: RouteDeleteGroup, Method: "DELETE", Pattern: "/iam/namespace/{namespace}/groups/{groupId}", Source: SourceAssumed,
			Note: "assumed: 204 when deleted, 404 when absent",
		},
		{
			Name: RouteUpdateGroup, Method: "PATCH", Pattern: "/iam/namespace/{namespace}/groups/{groupId}", Source: SourceAssumed,
			Note: `assumed: body {"description"}; 200 with the updated group; 404 when absent`,
		},
		{
			Name: RouteGetUser, Method: "GET", Pattern: "/iam/users/{identifier}", Published: true, Source: SourceTenantGuide + "; " + SourceRN,
			Note: `published (user info by e-mail or object id; an error body for an unknown user since Aug 2024); ` +
				`assumed: answers {"id","email","displayName"}, 404 for an unknown user; ` +
				`acts for the namespace of the x-api-key though its path names none`,
		},
		{
			Name: RouteListMembers, Method: "GET", Pattern: "/iam/namespace/{namespace}/groups/{groupId}/members",
			Params: map[string]string{ParamCursor: "cursor"}, Source: SourceAssumed,
			Note: `assumed (no members route is published; Get Group embeds them): ?cursor= from the previous page, none for the first; ` +
				`200 {"members":[{"id","email","displayName"}],"nextCursor"} with no nextCursor on the last page; 400 for a bad cursor; 404 when the group is absent`,
		},
		{
			Name: RouteAddMember, Method: "POST", Pattern: "/iam/namespace/{namespace}/groups/{groupId}/members", Source: SourceAssumed,
			Note: `assumed (only "dynamic groups answer 403" is published): body {"userId"} (an object id); 204 when added; 409 when already a member; 403 for a dynamic group; 404 when the group or the user is absent`,
		},
		{
			Name: RouteRemoveMember, Method: "DELETE", Pattern: "/iam/namespace/{namespace}/groups/{groupId}/members/{userId}", Source: SourceAssumed,
			Note: "assumed: 204 when removed; 404 when not a member or the group is absent; 403 for a dynamic group",
		},
	}
}

// Placeholders returns the path placeholders route n must have, besides the
// optional {namespace}.
func Placeholders(n RouteName) []string {
	switch n {
	case RouteGetGroup, RouteDeleteGroup, RouteUpdateGroup, RouteListMembers, RouteAddMember:
		return []string{"groupId"}
	case RouteRemoveMember:
		return []string{"groupId", "userId"}
	case RouteGetUser:
		return []string{"identifier"}
	}
	return nil
}

// RouteOverride corrects one route of the built-in table: each non-empty
// field replaces the table's. Params maps the client's parameter names to
// the names to send, replacing only those it names.
type RouteOverride struct {
	Method string
	// Path is the pattern; in a group route {identifier} may stand for
	// {groupId}, as the published Get Group path writes it.
	Path   string
	Params map[string]string
}

// ErrRoutes is returned (wrapped, with every problem) by ResolveRoutes and
// CheckRoutes.
var ErrRoutes = errors.New("techpass: invalid route table")

var (
	routeMethods  = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	paramNameRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
	placeholderRE = regexp.MustCompile(`\{[^/{}]*\}`)
)

// ResolveRoutes returns the built-in table with overrides applied, and an
// error wrapping ErrRoutes that names every problem at once: an unknown route
// or parameter name, a method other than GET, POST, PUT, PATCH or DELETE, a
// path that is not absolute, lacks a placeholder the route needs, names an
// unknown one, or collides with another route's.
func ResolveRoutes(overrides map[RouteName]RouteOverride) ([]Route, error) {
	table := Routes()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		o := overrides[name]
		i := slices.IndexFunc(table, func(r Route) bool { return r.Name == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("unknown route %q (known: %s)", name, strings.Join(routeNames(), ", ")))
			continue
		}
		r := &table[i]
		r.Overridden = true
		if o.Method != "" {
			r.Method = strings.ToUpper(o.Method)
		}
		if o.Path != "" {
			r.Pattern = o.Path
			if slices.Contains(Placeholders(name), "groupId") {
				r.Pattern = strings.ReplaceAll(r.Pattern, "{identifier}", "{groupId}")
			}
		}
		for _, k := range slices.Sorted(maps.Keys(o.Params)) {
			if _, ok := r.Params[k]; !ok {
				errs = append(errs, fmt.Errorf("route %s: unknown parameter %q (known: %s)", name, k, strings.Join(slices.Sorted(maps.Keys(r.Params)), ", ")))
				continue
			}
			r.Params[k] = o.Params[k]
		}
	}
	if err := CheckRoutes(table); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrRoutes, errors.Join(errs...))
	}
	return table, nil
}

// CheckRoutes reports every problem with a route table at once: each route
// of Routes exactly once, valid methods, patterns and parameter names, and
// no two routes the same method and path shape.
func CheckRoutes(table []Route) error {
	var errs []error
	seen := map[string]RouteName{}
	mux := http.NewServeMux() // the simulator serves the table: its patterns must not conflict
	for _, r := range table {
		if !slices.Contains(routeNames(), string(r.Name)) {
			errs = append(errs, fmt.Errorf("unknown route %q", r.Name))
			continue
		}
		if _, dup := seen[string(r.Name)]; dup {
			errs = append(errs, fmt.Errorf("route %s appears twice", r.Name))
		}
		seen[string(r.Name)] = r.Name
		if !slices.Contains(routeMethods, r.Method) {
			errs = append(errs, fmt.Errorf("route %s: method %q is not one of %s", r.Name, r.Method, strings.Join(routeMethods, ", ")))
		}
		errs = append(errs, patternProblems(r)...)
		wires := map[string]bool{}
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			w := r.Params[k]
			if !paramNameRE.MatchString(w) {
				errs = append(errs, fmt.Errorf("route %s: parameter %s: %q is not a query parameter name (a letter, then letters, digits, '_', '.' or '-')", r.Name, k, w))
			}
			if wires[w] {
				errs = append(errs, fmt.Errorf("route %s: two parameters are sent as %q", r.Name, w))
			}
			wires[w] = true
		}
		shape := r.Method + " " + placeholderRE.ReplaceAllString(r.Pattern, "{}")
		if other, ok := seen[shape]; ok {
			errs = append(errs, fmt.Errorf("routes %s and %s are both %s", other, r.Name, shape))
			continue
		}
		seen[shape] = r.Name
		if err := register(mux, r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range routeNames() {
		if _, ok := seen[n]; !ok {
			errs = append(errs, fmt.Errorf("route %s is missing", n))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrRoutes, errors.Join(errs...))
	}
	return nil
}

// register adds r to mux, turning the panic of a pattern that conflicts with
// one already registered (neither more specific) into an error.
func register(mux *http.ServeMux, r Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route %s: %s %s conflicts with another route: %v", r.Name, r.Method, r.Pattern, p)
		}
	}()
	mux.Handle(r.Method+" "+r.Pattern, http.NotFoundHandler())
	return nil
}

// patternProblems checks a route's path: absolute, every placeholder a
// whole segment and known, those the route needs each present once.
func patternProblems(r Route) []error {
	var errs []error
	p := r.Pattern
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n%") || strings.Contains(p, "//") {
		return []error{fmt.Errorf("route %s: path %q must be absolute, with no query, spaces, '%%' or empty segments", r.Name, p)}
	}
	need := Placeholders(r.Name)
	count := map[string]int{}
	for _, seg := range strings.Split(p[1:], "/") {
		ph := placeholderRE.FindAllString(seg, -1)
		if len(ph) == 0 {
			if strings.ContainsAny(seg, "{}") {
				errs = append(errs, fmt.Errorf("route %s: path segment %q has an unbalanced brace", r.Name, seg))
			}
			continue
		}
		if len(ph) > 1 || ph[0] != seg {
			errs = append(errs, fmt.Errorf("route %s: placeholder in %q must be a whole path segment", r.Name, seg))
			continue
		}
		name := seg[1 : len(seg)-1]
		if name != "namespace" && !slices.Contains(need, name) {
			want := "{namespace}"
			for _, n := range need {
				want += ", {" + n + "}"
			}
			errs = append(errs, fmt.Errorf("route %s: unknown placeholder {%s} (this route takes %s)", r.Name, name, want))
		}
		count[name]++
	}
	for _, n := range append([]string{"namespace"}, need...) {
		if count[n] > 1 {
			errs = append(errs, fmt.Errorf("route %s: placeholder {%s} appears %d times", r.Name, n, count[n]))
		}
	}
	for _, n := range need {
		if count[n] == 0 {
			errs = append(errs, fmt.Errorf("route %s: path %q lacks the placeholder {%s}", r.Name, p, n))
		}
	}
	return errs
}

func routeNames() []string {
	var out []string
	for _, r := range Routes() {
		out = append(out, string(r.Name))
	}
	return out
}

// lookupRoute returns the route named n in table. It panics on an unknown
// name, which is a programming error caught by the package tests (tables are
// checked by CheckRoutes before use).
func lookupRoute(table []Route, n RouteName) Route {
	for _, r := range table {
		if r.Name == n {
			return r
		}
	}
	panic("techpass: unknown route " + string(n))
}

// Path fills the route's placeholders with path-escaped values, given as
// name/value pairs: Path("namespace", "SHIP", "groupId", id).
func (r Route) Path(pairs ...string) string {
	p := r.Pattern
	for i := 0; i+1 < len(pairs); i += 2 {
		p = strings.ReplaceAll(p, "{"+pairs[i]+"}", url.PathEscape(pairs[i+1]))
	}
	return p
}

// Describe words the route for a log line: "GET /iam/...?page&pageSize".
func (r Route) Describe() string {
	s := r.Method + " " + r.Pattern
	if len(r.Params) > 0 {
		var ws []string
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			ws = append(ws, r.Params[k])
		}
		s += "?" + strings.Join(ws, "&")
	}
	return s
}
