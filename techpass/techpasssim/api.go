package techpasssim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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

// automation wraps h in what sits in front of TechPass's Automation API, in
// the order AWS API Gateway and TechPass apply it: API key, rate
// enforcement, bearer token, then injected faults and latency.
func (s *Simulator) automation(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ns := s.namespaces[r.PathValue("namespace")]
		if ns == nil || !ns.acceptsKey(r.Header.Get("x-api-key")) {
			s.other.forbidden++
			s.mu.Unlock()
			writeMessage(w, http.StatusForbidden, "Forbidden")
			return
		}
		wait, ok := s.arrive(ns, s.cfg.Now())
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

// arrive records the arrival of a request at now and enforces TechPass's
// rule: start no sooner than the interval after the previous start, and
// never while another request is in flight. It returns false, with how long
// the client should have waited, for a violation. Either way the request is
// in flight until leave. Call with s.mu held.
func (s *Simulator) arrive(ns *namespace, now time.Time) (time.Duration, bool) {
	rs, c := &ns.rate, &ns.stats
	c.Requests++
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

func (s *Simulator) listGroups(w http.ResponseWriter, _ *http.Request, ns *namespace) {
	s.mu.Lock()
	groups := append([]techpass.Group{}, ns.groups...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, techpass.GroupList{Groups: groups})
}

func (s *Simulator) createGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	var req techpass.CreateGroupRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&req); err != nil {
		writeMessage(w, http.StatusBadRequest, "Invalid request body")
		return
	}
	switch n := utf8.RuneCountInString(req.Name); {
	case strings.TrimSpace(req.Name) == "":
		writeMessage(w, http.StatusBadRequest, "group name is required")
		return
	case n > MaxGroupNameLength:
		writeMessage(w, http.StatusBadRequest, fmt.Sprintf("group name must be at most %d characters", MaxGroupNameLength))
		return
	}

	s.mu.Lock()
	if slices.ContainsFunc(ns.groups, func(g techpass.Group) bool { return strings.EqualFold(g.Name, req.Name) }) {
		ns.stats.DuplicateCreates++
		s.mu.Unlock()
		writeMessage(w, http.StatusConflict, "group already exists")
		return
	}
	if limit := s.groupLimit(ns); len(ns.groups) >= limit {
		s.mu.Unlock()
		writeMessage(w, http.StatusBadRequest, fmt.Sprintf("group limit of %d reached for namespace", limit))
		return
	}
	g := techpass.Group{
		ID:          newObjectID(),
		Name:        req.Name,
		GRN:         techpass.GRN(ns.Name, req.Name),
		Description: req.Description,
		Created:     s.cfg.Now().UTC().Truncate(time.Second),
	}
	ns.groups = append(ns.groups, g)
	ns.stats.createsByName[g.Name]++
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, g)
}

func (s *Simulator) getGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	id := r.PathValue("groupId")
	s.mu.Lock()
	i := slices.IndexFunc(ns.groups, func(g techpass.Group) bool { return g.ID == id })
	var g techpass.Group
	if i >= 0 {
		g = ns.groups[i]
	}
	s.mu.Unlock()
	if i < 0 {
		writeMessage(w, http.StatusNotFound, "group not found")
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Simulator) deleteGroup(w http.ResponseWriter, r *http.Request, ns *namespace) {
	id := r.PathValue("groupId")
	s.mu.Lock()
	n := len(ns.groups)
	ns.groups = slices.DeleteFunc(ns.groups, func(g techpass.Group) bool { return g.ID == id })
	deleted := len(ns.groups) < n
	s.mu.Unlock()
	if !deleted {
		writeMessage(w, http.StatusNotFound, "group not found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
