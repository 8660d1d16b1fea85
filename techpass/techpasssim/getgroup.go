package techpasssim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/groupgate/groupgate/techpass"
)

// MaxGetGroupPageSize bounds the page size Get Group accepts (assumed).
const MaxGetGroupPageSize = 1000

// Error codes of the {"error":{...}} answers (TechPass publishes the shape
// and 14014 as an example; the codes here are the simulator's own).
const (
	CodeGroupNotFound = 14004
	CodeUserNotFound  = 14014
	CodeTechBizGroup  = 14030
	CodeBadPaging     = 14001
)

// param returns the name on the wire of route n's query parameter name.
func (s *Simulator) param(n techpass.RouteName, name string) string {
	for _, r := range s.cfg.Routes {
		if r.Name == n {
			return r.Params[name]
		}
	}
	return ""
}

// getGroup is Get Group (published): the group with its users (members)
// and owners embedded. Without paging parameters the full member list is
// returned (published default); with the page (from 1) and pageSize
// parameters (names assumed, overridable), that page of the members ordered
// by object id. Owners come whole on every page.
func (s *Simulator) getGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	pageName, sizeName := s.param(techpass.RouteGetGroup, techpass.ParamPage), s.param(techpass.RouteGetGroup, techpass.ParamPageSize)
	page, size := 1, 0
	bad := err != nil || len(q[pageName]) > 1 || len(q[sizeName]) > 1
	if v := q.Get(pageName); v != "" && !bad {
		page, err = strconv.Atoi(v)
		bad = err != nil || page < 1
	}
	if v := q.Get(sizeName); v != "" && !bad {
		size, err = strconv.Atoi(v)
		bad = err != nil || size < 1 || size > MaxGetGroupPageSize
	}
	if bad {
		writeTechPassError(w, http.StatusBadRequest, CodeBadPaging, "invalid paging parameters")
		return
	}
	s.mu.Lock()
	g := ns.groupByID(r.PathValue("groupId"))
	var out techpass.GroupDetail
	if g != nil {
		ids := g.members
		if size > 0 {
			start := min((page-1)*size, len(ids))
			ids = ids[start:min(start+size, len(ids))]
		}
		out = techpass.GroupDetail{Group: g.Group, Users: s.embed(ids), Owners: s.embed(g.owners)}
	}
	s.mu.Unlock()
	if g == nil {
		writeTechPassError(w, http.StatusNotFound, CodeGroupNotFound, "group not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// embed returns the users with object ids ids as Get Group embeds them, in
// that order (non-nil). Call with s.mu held.
func (s *Simulator) embed(ids []string) []techpass.User {
	out := make([]techpass.User, 0, len(ids))
	for _, id := range ids {
		if u, ok := s.users.byID[id]; ok {
			if u.AccountType == "" {
				u.AccountType = "account:public_officer"
			}
			out = append(out, u)
		}
	}
	return out
}

// writeTechPassError answers in the error shape TechPass documents for
// routes on its gateway, {"error":{"code","message","traceId"}}, with a
// fresh trace id.
func writeTechPassError(w http.ResponseWriter, status, code int, msg string) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	writeJSON(w, status, techpass.ErrorBody{Error: &techpass.ErrorDetail{
		Code: []byte(strconv.Itoa(code)), Message: msg, TraceID: "sim-" + hex.EncodeToString(b[:]),
	}})
}

// SetTechBiz marks the group named groupName (case-insensitively) as
// managed by TechBiz, or not: such a group is left out of the group list
// unless includeOnTechBiz=true is passed, and the Automation API refuses to
// change it or its members (403). Not a request. It returns an error
// wrapping ErrUnknownNamespace or ErrUnknownGroup.
func (s *Simulator) SetTechBiz(namespace, groupName string, managed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, g, err := s.findGroup(namespace, groupName)
	if err != nil {
		return err
	}
	g.techBiz = managed
	return nil
}

// SetOwners makes the users with object ids userIDs the owners of the
// group named groupName (case-insensitively), as the portal's Bind Owners
// would. Not a request. It returns an error wrapping ErrUnknownNamespace,
// ErrUnknownGroup or ErrUnknownUser.
func (s *Simulator) SetOwners(namespace, groupName string, userIDs ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, g, err := s.findGroup(namespace, groupName)
	if err != nil {
		return err
	}
	for _, id := range userIDs {
		if _, ok := s.users.byID[id]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownUser, id)
		}
	}
	g.owners = slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values(userIDs)))))
	return nil
}

// servePutOwners is PUT /_sim/namespaces/{namespace}/groups/{name}/owners
// with {"userIds":[...]}: SetOwners, answered 204.
func (s *Simulator) servePutOwners(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserIDs []string `json:"userIds"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	if err := s.SetOwners(r.PathValue("namespace"), r.PathValue("name"), req.UserIDs...); err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
