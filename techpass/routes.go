package techpass

import (
	"net/url"
	"strings"
)

// RouteName identifies one Automation API operation.
type RouteName string

// The Automation API operations the service uses.
const (
	RouteListGroups  RouteName = "listGroups"
	RouteCreateGroup RouteName = "createGroup"
	RouteGetGroup    RouteName = "getGroup"
	RouteDeleteGroup RouteName = "deleteGroup"
)

// Route is one Automation API operation: its method, its path pattern with
// {placeholders}, and whether TechPass publishes it or we assume it.
type Route struct {
	Name   RouteName
	Method string
	// Pattern is the path with {namespace} and {groupId} placeholders.
	Pattern string
	// Published is true when TechPass documents the route; false marks an
	// assumption that must be confirmed against the real API.
	Published bool
	// Note says where the route comes from or what is assumed about it.
	Note string
}

// Routes returns the table of every Automation API route the service calls.
// The simulator serves exactly these. The returned slice is a fresh copy.
func Routes() []Route {
	return []Route{
		{
			Name: RouteListGroups, Method: "GET", Pattern: "/iam/namespace/{namespace}/groups", Published: true,
			Note: `published: answers {"groups":[{"id","name","grn","description","created"}]}`,
		},
		{
			Name: RouteCreateGroup, Method: "POST", Pattern: "/iam/namespace/{namespace}/groups",
			Note: `assumed: body {"name","description"}; 201 with the group; 409 when the name exists; 400 past the namespace group limit`,
		},
		{
			Name: RouteGetGroup, Method: "GET", Pattern: "/iam/namespace/{namespace}/groups/{groupId}",
			Note: "assumed: 200 with the group, 404 when absent",
		},
		{
			Name: RouteDeleteGroup, Method: "DELETE", Pattern: "/iam/namespace/{namespace}/groups/{groupId}",
			Note: "assumed: 204 when deleted, 404 when absent",
		},
	}
}

// lookupRoute returns the route named n. It panics on an unknown name, which is a
// programming error caught by the package tests.
func lookupRoute(n RouteName) Route {
	for _, r := range Routes() {
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
