package techpass

import (
	"net/url"
	"strings"
)

// RouteName identifies one Automation API operation.
type RouteName string

// The Automation API operations the service uses.
const (
	// RouteListGroups is GET /iam/namespace/{namespace}/groups (published).
	RouteListGroups RouteName = "listGroups"
	// RouteCreateGroup is POST /iam/namespace/{namespace}/groups (assumed).
	RouteCreateGroup RouteName = "createGroup"
	// RouteGetGroup is GET /iam/namespace/{namespace}/groups/{groupId}
	// (assumed).
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
	// page of a group's members (assumed).
	RouteListMembers RouteName = "listMembers"
	// RouteAddMember is POST
	// /iam/namespace/{namespace}/groups/{groupId}/members with {"userId"}
	// (assumed).
	RouteAddMember RouteName = "addMember"
	// RouteRemoveMember is DELETE
	// /iam/namespace/{namespace}/groups/{groupId}/members/{userId} (assumed).
	RouteRemoveMember RouteName = "removeMember"
)

// Route is one Automation API operation: its method, its path pattern with
// {placeholders}, and whether TechPass publishes it or we assume it.
type Route struct {
	Name   RouteName
	Method string
	// Pattern is the path with {placeholders}: {namespace}, {groupId},
	// {userId}, {identifier}. A route without {namespace} still acts for
	// the namespace whose x-api-key and bearer token it carries.
	Pattern string
	// Query names the query parameters the route accepts, all optional;
	// Path does not fill them (the client encodes them itself).
	Query []string
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
		{
			Name: RouteUpdateGroup, Method: "PATCH", Pattern: "/iam/namespace/{namespace}/groups/{groupId}",
			Note: `assumed: body {"description"}; 200 with the updated group; 404 when absent`,
		},
		{
			Name: RouteGetUser, Method: "GET", Pattern: "/iam/users/{identifier}", Published: true,
			Note: `published (user info by e-mail or object id); assumed: answers {"id","email","displayName"}, 404 for an unknown user; ` +
				`acts for the namespace of the x-api-key though its path names none`,
		},
		{
			Name: RouteListMembers, Method: "GET", Pattern: "/iam/namespace/{namespace}/groups/{groupId}/members", Query: []string{"cursor"},
			Note: `assumed (TechPass only says member lists are paginated): ?cursor= from the previous page, none for the first; ` +
				`200 {"members":[{"id","email","displayName"}],"nextCursor"} with no nextCursor on the last page; 400 for a bad cursor; 404 when the group is absent`,
		},
		{
			Name: RouteAddMember, Method: "POST", Pattern: "/iam/namespace/{namespace}/groups/{groupId}/members",
			Note: `assumed: body {"userId"} (an object id); 204 when added; 409 when already a member; 403 for a dynamic group; 404 when the group or the user is absent`,
		},
		{
			Name: RouteRemoveMember, Method: "DELETE", Pattern: "/iam/namespace/{namespace}/groups/{groupId}/members/{userId}",
			Note: "assumed: 204 when removed; 404 when not a member or the group is absent; 403 for a dynamic group",
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
