package config

import (
	"fmt"

	"github.com/groupgate/groupgate/techpass"
)

// RouteConfig corrects one Automation API route of a tenant (see
// techpass.RouteOverride): its method, its path pattern and the names of
// its query parameters. Empty fields keep the built-in table's.
type RouteConfig struct {
	Method string            `yaml:"method"`
	Path   string            `yaml:"path"`
	Params map[string]string `yaml:"params"`
}

// routeProblems checks a tenant's route overrides and members settings,
// reporting every problem.
func (t TechPassConfig) routeProblems(where string) []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, where+".techpass: "+fmt.Sprintf(format, a...)) }
	switch t.MembersSource {
	case "", techpass.MembersFromGetGroup, techpass.MembersFromListRoute:
	default:
		add("members_source: %q is not %s or %s", t.MembersSource, techpass.MembersFromGetGroup, techpass.MembersFromListRoute)
	}
	if t.MemberPageSize < 0 || t.MemberPageSize > 1000 {
		add("member_page_size must be between 0 (the full list in one request) and 1000")
	}
	if len(t.Routes) == 0 {
		return p
	}
	if t.UsesSimulator() {
		add("routes apply to a tenant with techpass.api_url (the built-in simulator serves the built-in table)")
		return p
	}
	if _, err := t.ResolveRoutes(); err != nil {
		var msgs []string
		collect(err, &msgs)
		for _, m := range msgs {
			add("routes: %s", m)
		}
	}
	return p
}

// collect flattens joined and wrapped errors into their messages, leaving
// out the ErrRoutes sentinel they are wrapped in.
func collect(err error, out *[]string) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collect(e, out)
		}
		return
	}
	if err != techpass.ErrRoutes { //nolint:errorlint // the sentinel itself, not what wraps it
		*out = append(*out, err.Error())
	}
}

// ResolveRoutes returns the tenant's route table: the built-in one with its
// overrides applied.
func (t TechPassConfig) ResolveRoutes() ([]techpass.Route, error) {
	if len(t.Routes) == 0 {
		return techpass.Routes(), nil
	}
	o := make(map[techpass.RouteName]techpass.RouteOverride, len(t.Routes))
	for name, rc := range t.Routes {
		o[techpass.RouteName(name)] = techpass.RouteOverride{Method: rc.Method, Path: rc.Path, Params: rc.Params}
	}
	return techpass.ResolveRoutes(o)
}
