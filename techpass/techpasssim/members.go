package techpasssim

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/groupgate/groupgate/techpass"
)

// group is a namespace's group with what the wire Group does not show.
// Guarded by Simulator.mu.
type group struct {
	techpass.Group
	// dynamic marks a group whose members a rule decides: the Automation
	// API refuses to change them (403). Only CreateGroupDirect makes one.
	dynamic bool
	// members are the members' object ids, sorted, so that a page cursor
	// (the last id of a page) stays meaningful while members come and go.
	members []string
	// owners are the owners' object ids, sorted (see SetOwners).
	owners []string
	// techBiz marks a group managed by TechBiz (see SetTechBiz).
	techBiz bool
}

// groupByID returns the group with TechPass id id, or nil. Call with
// Simulator.mu held.
func (ns *namespace) groupByID(id string) *group {
	i := slices.IndexFunc(ns.groups, func(g *group) bool { return g.ID == id })
	if i < 0 {
		return nil
	}
	return ns.groups[i]
}

// groupByName returns the group named name, compared case-insensitively as
// TechPass compares group names, or nil. Call with Simulator.mu held.
func (ns *namespace) groupByName(name string) *group {
	i := slices.IndexFunc(ns.groups, func(g *group) bool { return strings.EqualFold(g.Name, name) })
	if i < 0 {
		return nil
	}
	return ns.groups[i]
}

// wireGroups returns the namespace's groups as the API shows them, in
// creation order (non-nil), those TechBiz manages only with techBiz. Call
// with Simulator.mu held.
func (ns *namespace) wireGroups(techBiz bool) []techpass.Group {
	out := make([]techpass.Group, 0, len(ns.groups))
	for _, g := range ns.groups {
		if !g.techBiz || techBiz {
			out = append(out, g.Group)
		}
	}
	return out
}

// groupProblem returns why name and description cannot make a group, as
// the Automation API words it (assumed), or "" when they can.
func groupProblem(name, description string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "group name is required"
	case utf8.RuneCountInString(name) > MaxGroupNameLength:
		return fmt.Sprintf("group name must be at most %d characters", MaxGroupNameLength)
	}
	return descriptionProblem(description)
}

// descriptionProblem returns why description cannot be a group's, or "".
func descriptionProblem(description string) string {
	if utf8.RuneCountInString(description) > MaxGroupDescriptionLength {
		return fmt.Sprintf("group description must be at most %d characters", MaxGroupDescriptionLength)
	}
	return ""
}

// newGroup adds a group to ns after the checks TechPass makes (name and
// description already checked): the name must be free and the namespace
// under its group limit. It returns an error wrapping ErrGroupExists or
// ErrGroupLimit. Call with s.mu held.
func (s *Simulator) newGroup(ns *namespace, name, description string, dynamic bool) (*group, error) {
	if ns.groupByName(name) != nil {
		return nil, fmt.Errorf("%w: %q in %s", ErrGroupExists, name, ns.Name)
	}
	if limit := s.groupLimit(ns); len(ns.groups) >= limit {
		return nil, &groupLimitError{namespace: ns.Name, limit: limit}
	}
	g := &group{
		Group: techpass.Group{
			ID:          newObjectID(),
			Name:        name,
			GRN:         techpass.GRN(ns.Name, name),
			Description: description,
			Created:     s.cfg.Now().UTC().Truncate(time.Second),
		},
		dynamic: dynamic,
	}
	ns.groups = append(ns.groups, g)
	return g, nil
}

// groupLimitError is ErrGroupLimit with the limit, which the API's answer
// names.
type groupLimitError struct {
	namespace string
	limit     int
}

func (e *groupLimitError) Error() string {
	return fmt.Sprintf("%s: %d groups in %s", ErrGroupLimit, e.limit, e.namespace)
}

func (e *groupLimitError) Is(target error) bool { return target == ErrGroupLimit }

// addMember makes the user with object id userID a member of g. Through
// the Automation API (viaAPI) a dynamic group refuses; a direct change
// models the portal or a membership rule and does not. It returns an error
// wrapping ErrUnknownUser, ErrDynamicGroup or ErrAlreadyMember. Call with
// s.mu held.
func (s *Simulator) addMember(g *group, userID string, viaAPI bool) error {
	if _, ok := s.users.byID[userID]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownUser, userID)
	}
	if viaAPI && g.dynamic {
		return fmt.Errorf("%w: %q", ErrDynamicGroup, g.Name)
	}
	i, found := slices.BinarySearch(g.members, userID)
	if found {
		return fmt.Errorf("%w: %q in %q", ErrAlreadyMember, userID, g.Name)
	}
	g.members = slices.Insert(g.members, i, userID)
	return nil
}

// removeMember removes the user with object id userID from g; viaAPI as
// for addMember. It returns an error wrapping ErrDynamicGroup or
// ErrNotMember. Call with s.mu held.
func (s *Simulator) removeMember(g *group, userID string, viaAPI bool) error {
	if viaAPI && g.dynamic {
		return fmt.Errorf("%w: %q", ErrDynamicGroup, g.Name)
	}
	i, found := slices.BinarySearch(g.members, userID)
	if !found {
		return fmt.Errorf("%w: %q in %q", ErrNotMember, userID, g.Name)
	}
	g.members = slices.Delete(g.members, i, i+1)
	return nil
}

// memberPage returns the page of g's members that follows the member with
// object id after ("" for the first page), at most size of them, ordered
// by object id. Since the cursor names a position in that order rather than
// an offset, members added or removed between pages neither repeat nor
// hide the members that stayed. Call with s.mu held.
func (s *Simulator) memberPage(g *group, after string, size int) techpass.MemberPage {
	i, found := slices.BinarySearch(g.members, after)
	if found {
		i++
	}
	end := min(i+size, len(g.members))
	page := techpass.MemberPage{Members: make([]techpass.User, 0, end-i)}
	for _, id := range g.members[i:end] {
		if u, ok := s.users.byID[id]; ok {
			page.Members = append(page.Members, u)
		}
	}
	if end < len(g.members) {
		page.Next = encodeCursor(g.members[end-1])
	}
	return page
}

// cursorPrefix starts every decoded cursor, so that a cursor is recognisably
// ours and could change shape later under another prefix.
const cursorPrefix = "after:"

// cursorEncoding is strict so that each cursor has exactly one spelling.
func cursorEncoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// encodeCursor returns the opaque cursor of the page that follows the
// member with object id lastID.
func encodeCursor(lastID string) string {
	return cursorEncoding().EncodeToString([]byte(cursorPrefix + lastID))
}

// parseCursor returns the object id a cursor continues after; "" (the
// first page) for an empty cursor. ok is false for anything encodeCursor
// could not have produced.
func parseCursor(c string) (after string, ok bool) {
	if c == "" {
		return "", true
	}
	if len(c) > 64 {
		return "", false
	}
	b, err := cursorEncoding().DecodeString(c)
	if err != nil {
		return "", false
	}
	id, found := strings.CutPrefix(string(b), cursorPrefix)
	// The decoder skips line breaks: only the canonical spelling is ours.
	if !found || !isObjectID(id) || encodeCursor(id) != c {
		return "", false
	}
	return id, true
}

// findGroup returns the namespace named namespace and its group named
// groupName (case-insensitively), or an error wrapping ErrUnknownNamespace
// or ErrUnknownGroup. Call with s.mu held.
func (s *Simulator) findGroup(namespace, groupName string) (*namespace, *group, error) {
	ns, ok := s.namespaces[namespace]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	g := ns.groupByName(groupName)
	if g == nil {
		return nil, nil, fmt.Errorf("%w: %q in %s", ErrUnknownGroup, groupName, namespace)
	}
	return ns, g, nil
}

// CreateGroupDirect creates a group as the TechPass portal would: not an
// Automation API request, so it is neither rate limited nor counted in
// Stats (CreatesByName included). A dynamic group's members are decided by
// a rule: the Automation API refuses to change them (403), while
// AddMemberDirect and RemoveMemberDirect, which stand for the rule, may. It
// returns an error wrapping ErrUnknownNamespace, ErrInvalidGroup,
// ErrGroupExists (names compare case-insensitively) or ErrGroupLimit.
func (s *Simulator) CreateGroupDirect(namespace, name, description string, dynamic bool) (techpass.Group, error) {
	if p := groupProblem(name, description); p != "" {
		return techpass.Group{}, fmt.Errorf("%w: %s", ErrInvalidGroup, p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[namespace]
	if !ok {
		return techpass.Group{}, fmt.Errorf("%w: %q", ErrUnknownNamespace, namespace)
	}
	g, err := s.newGroup(ns, name, description, dynamic)
	if err != nil {
		return techpass.Group{}, err
	}
	return g.Group, nil
}

// DeleteGroupDirect deletes the group named name (case-insensitively) and
// its member list, as the portal would, without counting a request. It
// returns an error wrapping ErrUnknownNamespace or ErrUnknownGroup.
func (s *Simulator) DeleteGroupDirect(namespace, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, g, err := s.findGroup(namespace, name)
	if err != nil {
		return err
	}
	ns.groups = slices.DeleteFunc(ns.groups, func(o *group) bool { return o == g })
	return nil
}

// AddMemberDirect makes the user with object id userID a member of the
// group named groupName (case-insensitively), as the portal or a dynamic
// group's rule would, without counting a request. It returns an error
// wrapping ErrUnknownNamespace, ErrUnknownGroup, ErrUnknownUser or
// ErrAlreadyMember.
func (s *Simulator) AddMemberDirect(namespace, groupName, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, g, err := s.findGroup(namespace, groupName)
	if err != nil {
		return err
	}
	return s.addMember(g, userID, false)
}

// RemoveMemberDirect removes the user with object id userID from the group
// named groupName (case-insensitively), as the portal or a dynamic group's
// rule would, without counting a request. It returns an error wrapping
// ErrUnknownNamespace, ErrUnknownGroup or ErrNotMember.
func (s *Simulator) RemoveMemberDirect(namespace, groupName, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, g, err := s.findGroup(namespace, groupName)
	if err != nil {
		return err
	}
	return s.removeMember(g, userID, false)
}

// Members returns the members of the group named groupName
// (case-insensitively) sorted by e-mail (a non-nil, possibly empty slice),
// or nil when the namespace or the group does not exist. Reading them does
// not count as a request.
func (s *Simulator) Members(namespace, groupName string) []techpass.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, g, err := s.findGroup(namespace, groupName)
	if err != nil {
		return nil
	}
	return s.users.sorted(g.members)
}
