package techpasssim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// maxBodyBytes bounds request bodies; TechPass's real limit is unknown.
const maxBodyBytes = 64 << 10

// apiHandler serves one Automation API route for a request that passed the
// gateway checks.
type apiHandler func(w http.ResponseWriter, r *http.Request, ns *namespace)

// routeHandler returns the handler of the named route, or nil if the
// simulator does not implement it (a test fails on that).
func (s *Simulator) routeHandler(name techpass.RouteName) apiHandler {
	switch name {
	case techpass.RouteListGroups:
		return s.listGroups
	case techpass.RouteCreateGroup:
		return s.createGroup
	case techpass.RouteGetGroup:
		return s.getGroup
	case techpass.RouteDeleteGroup:
		return s.deleteGroup
	case techpass.RouteUpdateGroup:
		return s.updateGroup
	case techpass.RouteGetUser:
		return s.getUser
	case techpass.RouteListMembers:
		return s.listMembers
	case techpass.RouteAddMember:
		return s.addMemberAPI
	case techpass.RouteRemoveMember:
		return s.removeMemberAPI
	}
	return nil
}

func notImplemented(w http.ResponseWriter, _ *http.Request, _ *namespace) {
	writeMessage(w, http.StatusNotImplemented, "Not Implemented")
}

// rateState is what rate enforcement remembers of a namespace. Guarded by
// Simulator.mu.
type rateState struct {
	inFlight    int
	started     bool // lastStart is set
	lastStart   time.Time
	arrived     bool // lastArrival is set (reset by ResetStats)
	lastArrival time.Time
}

// automation wraps h, the handler of route rt, in what sits in front of
// TechPass's Automation API, in the order AWS API Gateway and TechPass apply
// it: API key, rate enforcement, bearer token, then injected faults and
// latency.
//
// The request acts for the namespace its path names and whose key it
// carries; for a route whose path names no namespace (GET
// /iam/users/{identifier}), for the namespace the key belongs to, since
// keys are unique across namespaces. Either way everything else applies per
// namespace alike.
func (s *Simulator) automation(rt techpass.Route, h apiHandler) http.Handler {
	byPath := strings.Contains(rt.Pattern, "{namespace}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ns := s.namespaceFor(r, byPath)
		if ns == nil {
			s.other.forbidden++
			s.mu.Unlock()
			writeMessage(w, http.StatusForbidden, "Forbidden")
			return
		}
		wait, ok := s.arrive(ns, rt.Name, s.arrivalTime(r))
		s.mu.Unlock()
		defer s.leave(ns)
		if !ok {
			w.Header().Set("Retry-After", retryAfterSeconds(wait))
			writeMessage(w, http.StatusTooManyRequests, "Too Many Requests")
			return
		}

		s.mu.Lock()
		authorized := s.authorized(r, ns)
		var f fault
		if authorized {
			f = s.drawFault()
			switch {
			case f.status == http.StatusTooManyRequests:
				ns.stats.Throttled++
			case f.status != 0:
				ns.stats.ServerErrors++
			}
		} else {
			ns.stats.Unauthorized++
		}
		s.mu.Unlock()
		if !authorized {
			writeMessage(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if !sleep(r.Context(), f.latency) {
			return // the client gave up
		}
		switch f.status {
		case 0:
			h(w, r, ns)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", retryAfterSeconds(f.retryAfter))
			writeMessage(w, f.status, "Too Many Requests")
		default:
			writeMessage(w, f.status, serverErrorMessage(f.status))
		}
	})
}

// namespaceFor returns the namespace a request acts for, or nil if its API
// key is not one of that namespace's: the namespace its path names when
// byPath, else the one holding its key. Call with s.mu held.
func (s *Simulator) namespaceFor(r *http.Request, byPath bool) *namespace {
	key := r.Header.Get("x-api-key")
	if byPath {
		ns := s.namespaces[r.PathValue("namespace")]
		if ns == nil || !ns.acceptsKey(key) {
			return nil
		}
		return ns
	}
	var found *namespace
	for _, ns := range s.namespaces {
		// Every namespace is compared, so the time taken does not say
		// which one matched. At most one does: keys are unique.
		if ns.acceptsKey(key) {
			found = ns
		}
	}
	return found
}

// acceptsKey reports whether key is one of the namespace's API keys,
// comparing in constant time. Call with Simulator.mu held.
func (ns *namespace) acceptsKey(key string) bool {
	if key == "" {
		return false
	}
	match := 0
	for _, k := range ns.APIKeys {
		match |= subtle.ConstantTimeCompare([]byte(k), []byte(key))
	}
	return match == 1
}

// arrive records the arrival of a request for route at now and enforces
// TechPass's rule: start no sooner than the interval after the previous
// start, and never while another request is in flight. It returns false, with how long
// the client should have waited, for a violation. Either way the request is
// in flight until leave. Call with s.mu held.
func (s *Simulator) arrive(ns *namespace, route techpass.RouteName, now time.Time) (time.Duration, bool) {
	rs, c := &ns.rate, &ns.stats
	c.Requests++
	c.byRoute[route]++
	if rs.arrived {
		gap := max(now.Sub(rs.lastArrival), 0)
		if !c.hasMinGap || gap < c.minGap {
			c.minGap, c.hasMinGap = gap, true
		}
	}
	rs.arrived, rs.lastArrival = true, now

	busy := rs.inFlight > 0
	rs.inFlight++
	c.maxInFlight = max(c.maxInFlight, rs.inFlight)

	var wait time.Duration
	if rs.started {
		wait = rs.lastStart.Add(s.interval(ns)).Sub(now)
	}
	if busy || wait > 0 {
		c.Violations++
		return wait, false
	}
	rs.started, rs.lastStart = true, now
	return 0, true
}

// leave ends a request's time in flight.
func (s *Simulator) leave(ns *namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns.rate.inFlight--
}

// authorized reports whether the request carries a bearer token issued for
// ns that has not expired. Call with s.mu held.
func (s *Simulator) authorized(r *http.Request, ns *namespace) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	t, ok := s.tokens[strings.TrimSpace(tok)]
	return ok && t.namespace == ns.Name && s.cfg.Now().Before(t.expires)
}

// sleep waits for d or until ctx is done, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// listGroups is the published group list: TechBiz-managed groups only with
// includeOnTechBiz=true (RN).
func (s *Simulator) listGroups(w http.ResponseWriter, r *http.Request, ns *namespace) {
	techBiz := r.URL.Query().Get(s.param(techpass.RouteListGroups, techpass.ParamIncludeOnTechBiz)) == "true"
	if techBiz && s.cfg.RefuseTechBizList {
		writeMessage(w, http.StatusBadRequest, "unknown parameter "+s.param(techpass.RouteListGroups, techpass.ParamIncludeOnTechBiz))
		return
	}
	s.mu.Lock()
	groups := ns.wireGroups(techBiz)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, techpass.GroupList{Groups: groups})
}

func (s *Simulator) createGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	var req techpass.CreateGroupRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if p := groupProblem(req.Name, req.Description); p != "" {
		writeMessage(w, http.StatusBadRequest, p)
		return
	}

	s.mu.Lock()
	g, err := s.newGroup(ns, req.Name, req.Description, false)
	switch {
	case errors.Is(err, ErrGroupExists):
		ns.stats.DuplicateCreates++
	case err == nil:
		ns.stats.createsByName[g.Name]++
	}
	var out techpass.Group
	if g != nil {
		out = g.Group
	}
	s.mu.Unlock()
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// updateGroup is PATCH .../groups/{groupId} with {"description"}: the
// description is required (assumed: a PATCH without it is refused rather
// than taken as a no-op, so a client that forgets it finds out).
func (s *Simulator) updateGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	var req struct {
		Description *string `json:"description"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Description == nil {
		writeMessage(w, http.StatusBadRequest, "group description is required")
		return
	}
	if p := descriptionProblem(*req.Description); p != "" {
		writeMessage(w, http.StatusBadRequest, p)
		return
	}
	s.withGroup(w, r, ns, http.StatusOK, func(g *group) (any, error) {
		g.Description = *req.Description
		return g.Group, nil
	})
}

func (s *Simulator) deleteGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	s.withGroup(w, r, ns, http.StatusNoContent, func(g *group) (any, error) {
		ns.groups = slices.DeleteFunc(ns.groups, func(o *group) bool { return o == g })
		return nil, nil
	})
}

// getUser is GET /iam/users/{identifier}: the identifier is an object id,
// matched exactly, or an e-mail, matched case-insensitively. The directory
// is TechPass's, not the namespace's.
func (s *Simulator) getUser(w http.ResponseWriter, r *http.Request, _ *namespace) {
	s.mu.Lock()
	u, ok := s.users.lookup(r.PathValue("identifier"))
	s.mu.Unlock()
	if !ok {
		// Since Aug 2024 an unknown user gets an error body (RN).
		writeTechPassError(w, http.StatusNotFound, CodeUserNotFound, "user not found")
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// listMembers is GET .../groups/{groupId}/members?cursor=...: one page of
// Config.MemberPageSize members ordered by object id; see memberPage.
func (s *Simulator) listMembers(w http.ResponseWriter, r *http.Request, ns *namespace) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	after, ok := parseCursor(q.Get("cursor"))
	if err != nil || len(q["cursor"]) > 1 || !ok {
		writeMessage(w, http.StatusBadRequest, "invalid cursor")
		return
	}
	s.withGroup(w, r, ns, http.StatusOK, func(g *group) (any, error) {
		return s.memberPage(g, after, s.cfg.MemberPageSize), nil
	})
}

func (s *Simulator) addMemberAPI(w http.ResponseWriter, r *http.Request, ns *namespace) {
	var req techpass.AddMemberRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.withGroup(w, r, ns, http.StatusNoContent, func(g *group) (any, error) {
		return nil, s.addMember(g, req.UserID, true)
	})
}

func (s *Simulator) removeMemberAPI(w http.ResponseWriter, r *http.Request, ns *namespace) {
	s.withGroup(w, r, ns, http.StatusNoContent, func(g *group) (any, error) {
		return nil, s.removeMember(g, r.PathValue("userId"), true)
	})
}

// withGroup runs f with s.mu held on the group of ns that the path's
// {groupId} names, answering 404 "group not found" when there is none, f's
// error as writeError words it, or status with f's value (no body for 204).
func (s *Simulator) withGroup(w http.ResponseWriter, r *http.Request, ns *namespace, status int, f func(g *group) (any, error)) {
	s.mu.Lock()
	var v any
	var err error
	if g := ns.groupByID(r.PathValue("groupId")); g == nil {
		err = ErrUnknownGroup
	} else if g.techBiz {
		err = ErrTechBizGroup
	} else {
		v, err = f(g)
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.writeError(w, err)
	case status == http.StatusNoContent:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, v)
	}
}

// decodeBody decodes a JSON request body into v, answering 400 and
// returning false when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(v); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid request body")
		return false
	}
	return true
}

// writeError answers err, an error of the simulator's group, member and
// user logic, the way the Automation API is assumed to word it. The admin
// endpoints use it too; only they meet the errors of invalid input, whose
// answer carries err's text (it holds no credential).
func (s *Simulator) writeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownNamespace):
		writeMessage(w, http.StatusNotFound, "namespace not found")
	case errors.Is(err, ErrUnknownGroup):
		writeMessage(w, http.StatusNotFound, "group not found")
	case errors.Is(err, ErrUnknownUser):
		writeMessage(w, http.StatusNotFound, "user not found")
	case errors.Is(err, ErrNotMember):
		writeMessage(w, http.StatusNotFound, "user is not a member of the group")
	case errors.Is(err, ErrTechBizGroup):
		writeTechPassError(w, http.StatusForbidden, CodeTechBizGroup, "the group is managed by TechBiz")
	case errors.Is(err, ErrDynamicGroup):
		writeMessage(w, http.StatusForbidden, "members of a dynamic group cannot be changed")
	case errors.Is(err, ErrAlreadyMember):
		writeMessage(w, http.StatusConflict, "user is already a member of the group")
	case errors.Is(err, ErrGroupExists):
		writeMessage(w, http.StatusConflict, "group already exists")
	case errors.Is(err, ErrGroupLimit):
		var le *groupLimitError
		limit := 0
		if errors.As(err, &le) {
			limit = le.limit
		}
		writeMessage(w, http.StatusBadRequest, fmt.Sprintf("group limit of %d reached for namespace", limit))
	case errors.Is(err, ErrUserExists):
		writeMessage(w, http.StatusConflict, "user already exists")
	case errors.Is(err, ErrInvalidUser), errors.Is(err, ErrInvalidGroup):
		writeMessage(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Error("techpass-sim: unexpected error", "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
	}
}

// newObjectID returns a random UUID (version 4), the shape of an Azure AD
// object id.
func newObjectID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to do
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, techpass.ErrorBody{Message: msg})
}
