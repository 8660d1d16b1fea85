package groups

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"github.com/groupgate/groupgate/throttle"
)

// MaxUsersPerChange bounds how many users one member change may name.
const MaxUsersPerChange = 100

// Page limits of the group and member lists.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// NormalizeUser checks a user identifier, a TechPass login e-mail or an
// Azure AD object id (a UUID), and returns it lower-cased, the form the
// mirror and the operations keep. It returns a *ValidationError naming
// field otherwise.
func (s *Service) NormalizeUser(field, id string) (string, error) {
	id = strings.TrimSpace(id)
	// The length is checked after lower-casing, which can lengthen a letter
	// (U+023A, 2 bytes, becomes U+2C65, 3 bytes).
	if lower := strings.ToLower(id); len(lower) <= 254 && (IsEmail(id) || IsObjectID(id)) {
		return lower, nil
	}
	return "", &ValidationError{Fields: []FieldError{{Field: field, Message: fmt.Sprintf("%q is neither an e-mail address nor an object id", clip(id, 64))}}}
}

// userIDs checks user identifiers for NormalizeUser and for callers
// without a Service (webhook deliveries): one check for both. A validator
// is safe for concurrent use and holds nothing that changes.
var userIDs = validator.New()

// IsEmail reports whether s is an e-mail address as the API accepts one
// (at most 254 bytes, no display name).
func IsEmail(s string) bool { return len(s) <= 254 && userIDs.Var(s, "email") == nil }

// IsObjectID reports whether s is an Azure AD object id (a UUID, any case).
func IsObjectID(s string) bool { return userIDs.Var(s, "uuid") == nil }

// clip shortens s to at most n bytes for an error message, without
// cutting a character in two.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// MembersResult is the stored output of a member change.
type MembersResult struct {
	FullName string `json:"fullName"`
	// Added and Removed are the users whose membership changed (or that
	// TechPass reported as already so).
	Added   []UserResult `json:"added"`
	Removed []UserResult `json:"removed"`
	// Unchanged are the identifiers that needed no change.
	Unchanged []string `json:"unchanged"`
}

// UserResult is a user in a MembersResult.
type UserResult struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
}

// DecodeMembersResult reads a group.members operation's stored result; ok is
// false when there is none.
func DecodeMembersResult(b []byte) (r MembersResult, ok bool, err error) {
	if len(b) == 0 {
		return MembersResult{}, false, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return MembersResult{}, false, fmt.Errorf("decode members result: %w", err)
	}
	return r, true, nil
}

// ChangeMembers queues adding the users named in add to group name and
// removing those in remove. Identifiers are normalized (NormalizeUser) and
// folded; naming a user on both sides is invalid. Users the mirror already
// shows as wanted (a member to add, an absent one to remove) need no
// upstream call: when that is all of them, the operation is recorded as
// succeeded at once. It returns the operation, whether it is a replay, and
// ErrInvalid, ErrNotFound, ErrPending, throttle.ErrQueueFull or
// throttle.ErrIdempotencyMismatch (wrapped).
func (s *Service) ChangeMembers(ctx context.Context, req Request, name Name, add, remove []string) (op throttle.Operation, replayed bool, err error) {
	if op, ok, err := s.Replayed(ctx, req); ok || err != nil {
		return op, ok, err
	}
	add, remove, err = s.foldUsers(add, remove)
	if err != nil {
		return throttle.Operation{}, false, err
	}
	limits := s.queue.Limits(name.Tenant)
	for attempt := 0; ; attempt++ {
		g, err := s.store.Group(ctx, name)
		if err != nil {
			return throttle.Operation{}, false, fmt.Errorf("change members of %s: %w", name, err)
		}
		if g.State == Deleting {
			return throttle.Operation{}, false, fmt.Errorf("change members of %s: %w: the group is being deleted", name, ErrPending)
		}
		p := membersPayload{FullName: g.Name.String(), Add: add, Remove: remove}
		var idle *Idle
		// The mirror can show a change done only if it knows the member
		// list and no other change is queued that could undo it; a change
		// worked out from it is stored only if the list is still as read.
		if !g.MembersSyncedAt.IsZero() && g.PendingMembers == 0 && attempt < 3 {
			if p.Add, p.Remove, p.Unchanged, err = s.filterByMirror(ctx, g.Name, add, remove); err != nil {
				return throttle.Operation{}, false, fmt.Errorf("change members of %s: %w", name, err)
			}
			idle = &Idle{Version: g.MembersVersion}
		}
		op, err = s.newOperation(req, g.Name, p)
		if err != nil {
			return throttle.Operation{}, false, err
		}
		var stored throttle.Operation
		if len(p.Add) == 0 && len(p.Remove) == 0 {
			res, err := json.Marshal(MembersResult{FullName: p.FullName, Added: []UserResult{}, Removed: []UserResult{}, Unchanged: p.Unchanged})
			if err != nil {
				return throttle.Operation{}, false, fmt.Errorf("encode members result: %w", err)
			}
			op.State, op.Result, op.FinishedAt = throttle.Succeeded, res, op.CreatedAt
			if idle == nil { // unreachable: only filtering empties a change, and it sets idle
				return throttle.Operation{}, false, fmt.Errorf("change members of %s: nothing to change without the mirror", name)
			}
			stored, err = s.store.RecordMembers(ctx, g.Name, op, *idle)
		} else {
			stored, err = s.store.QueueMembers(ctx, g.Name, op, limits, idle)
		}
		if errors.Is(err, ErrStale) {
			continue // the member list moved since it was read: work it out again
		}
		return s.queued(ctx, stored, err, "member change", name)
	}
}

// foldUsers normalizes and de-duplicates the identifiers of a change.
func (s *Service) foldUsers(add, remove []string) ([]string, []string, error) {
	verr := &ValidationError{}
	fold := func(field string, ids []string) []string {
		var out []string
		for i, id := range ids {
			n, err := s.NormalizeUser(fmt.Sprintf("%s[%d]", field, i), id)
			if err != nil {
				verr.Fields = append(verr.Fields, err.(*ValidationError).Fields...)
				continue
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	add, remove = fold("users", add), fold("users", remove)
	switch {
	case len(verr.Fields) > 0:
		return nil, nil, verr
	case len(add)+len(remove) == 0:
		return nil, nil, &ValidationError{Fields: []FieldError{{Field: "users", Message: "name at least one user"}}}
	case len(add)+len(remove) > MaxUsersPerChange:
		return nil, nil, &ValidationError{Fields: []FieldError{{Field: "users", Message: fmt.Sprintf("name at most %d users in one change", MaxUsersPerChange)}}}
	}
	for _, id := range add {
		if slices.Contains(remove, id) {
			return nil, nil, &ValidationError{Fields: []FieldError{{Field: "users", Message: fmt.Sprintf("%q is both added and removed", id)}}}
		}
	}
	return add, remove, nil
}

// filterByMirror splits a change into what still needs TechPass and what the
// mirror shows is already so.
func (s *Service) filterByMirror(ctx context.Context, name Name, add, remove []string) (needAdd, needRemove, unchanged []string, err error) {
	members, err := memberIDs(ctx, s.store, name)
	if err != nil {
		return nil, nil, nil, err
	}
	known, err := s.store.KnownUsers(ctx, name.Tenant, append(slices.Clone(add), remove...))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("look up known users: %w", err)
	}
	for _, id := range add {
		if u, ok := known[id]; ok && members[u.ID] {
			unchanged = append(unchanged, id)
			continue
		}
		needAdd = append(needAdd, id)
	}
	for _, id := range remove {
		// An identifier the mirror cannot resolve (an alias, an e-mail
		// changed in TechPass) may still name a member: TechPass decides.
		if u, ok := known[id]; ok && !members[u.ID] {
			unchanged = append(unchanged, id)
			continue
		}
		needRemove = append(needRemove, id)
	}
	return needAdd, needRemove, unchanged, nil
}

// memberReader is the part of Store that memberIDs needs.
type memberReader interface {
	ListMembers(ctx context.Context, name Name, q PageQuery) ([]User, bool, error)
}

// memberIDs returns the ids of the group's members in the mirror.
func memberIDs(ctx context.Context, store memberReader, name Name) (map[string]bool, error) {
	users, _, err := store.ListMembers(ctx, name, PageQuery{})
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	ids := make(map[string]bool, len(users))
	for _, u := range users {
		ids[u.ID] = true
	}
	return ids, nil
}

// Update queues setting group name's description. With ifRevision not 0 it
// applies only if the group is still at that revision (If-Match), and
// returns ErrRevision otherwise. The mirror shows the new description at
// once (a new Revision); a failed update restores the old one. It returns
// the group as now stored and the operation; on a replay the group is read
// again.
func (s *Service) Update(ctx context.Context, req Request, name Name, description string, ifRevision uint64) (Group, throttle.Operation, bool, error) {
	if op, ok, err := s.Replayed(ctx, req); ok || err != nil {
		if err != nil {
			return Group{}, throttle.Operation{}, false, err
		}
		g, err := s.Get(ctx, name)
		return g, op, true, err
	}
	if err := ValidateDescription(description); err != nil {
		return Group{}, throttle.Operation{}, false, err
	}
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return Group{}, throttle.Operation{}, false, fmt.Errorf("update %s: %w", name, err)
	}
	op, err := s.newOperation(req, g.Name, updatePayload{FullName: g.Name.String(), Description: description, Previous: g.Description})
	if err != nil {
		return Group{}, throttle.Operation{}, false, err
	}
	stored, op, err := s.store.UpdatePending(ctx, g.Name, description, ifRevision, op, s.queue.Limits(name.Tenant))
	op, replayed, err := s.queued(ctx, op, err, "update", name)
	if replayed && err == nil {
		stored, err = s.Get(ctx, name)
	}
	return stored, op, replayed, err
}

// ListQuery asks for one page of a list.
type ListQuery struct {
	// Prefix keeps the entries whose name (a group's name, a member's
	// e-mail) starts with it, case-insensitively.
	Prefix string
	// Cursor is a previous page's Next, or empty for the first page.
	Cursor string
	// Limit is the most entries on the page: 0 means DefaultPageLimit.
	Limit int
}

// GroupPage is one page of groups.
type GroupPage struct {
	Groups []Group
	// Next is the cursor of the following page; empty on the last.
	Next string
	// SyncedAt is when a reconcile pass last read the tenant's group list
	// from TechPass; zero if never.
	SyncedAt time.Time
}

// MemberPage is one page of a group's members.
type MemberPage struct {
	Members []User
	Next    string
	// SyncedAt is when the mirror last knew the whole member list from
	// TechPass; zero if never.
	SyncedAt time.Time
}

// A cursor carries where the page ended and the filters it was made for,
// so that it cannot be used with other filters: four fields (after,
// prefix, project, group), each a uvarint length and its bytes, in
// unpadded base64url. Unlike JSON this never escapes, so its size is
// bounded by the fields' own limits.
const maxCursorBytes = 1536 // decoded; 2048 characters encoded, the contract's limit

// pageQuery checks q and turns it into a store query for a list scoped to
// project and group (each possibly empty).
func pageQuery(q ListQuery, project, group string) (PageQuery, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultPageLimit
	case limit < 1 || limit > MaxPageLimit:
		return PageQuery{}, &ValidationError{Fields: []FieldError{{Field: "limit", Message: fmt.Sprintf("must be 1-%d", MaxPageLimit)}}}
	}
	prefix := strings.ToLower(q.Prefix)
	if len(prefix) > 254 {
		return PageQuery{}, &ValidationError{Fields: []FieldError{{Field: "prefix", Message: "must be at most 254 bytes"}}}
	}
	pq := PageQuery{Project: project, Prefix: prefix, Limit: limit}
	if q.Cursor == "" {
		return pq, nil
	}
	bad := &ValidationError{Fields: []FieldError{{Field: "cursor", Message: "is not a cursor of this list with these filters"}}}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(q.Cursor)
	if err != nil || len(raw) > maxCursorBytes {
		return PageQuery{}, bad
	}
	fields, ok := splitCursor(raw)
	if !ok || fields[0] == "" || fields[1] != prefix || fields[2] != project || fields[3] != strings.ToLower(group) {
		return PageQuery{}, bad
	}
	pq.After = fields[0]
	return pq, nil
}

// splitCursor reads the four fields of a decoded cursor; ok is false
// unless raw is exactly four well-formed fields.
func splitCursor(raw []byte) (fields [4]string, ok bool) {
	for i := range fields {
		n, w := binary.Uvarint(raw)
		if w <= 0 || n > uint64(len(raw)-w) {
			return fields, false
		}
		fields[i] = string(raw[w : w+int(n)])
		raw = raw[w+int(n):]
	}
	return fields, len(raw) == 0
}

// nextCursor encodes the cursor that continues after the entry at after.
func nextCursor(after string, pq PageQuery, group string) string {
	var raw []byte
	for _, f := range []string{after, pq.Prefix, pq.Project, strings.ToLower(group)} {
		raw = binary.AppendUvarint(raw, uint64(len(f)))
		raw = append(raw, f...)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// ListGroups returns one page of the tenant's groups from the mirror: of
// one project, or of all of them when project is empty (for a tenant
// admin). It returns ErrInvalid for a bad limit, prefix or cursor.
func (s *Service) ListGroups(ctx context.Context, tenant, project string, q ListQuery) (GroupPage, error) {
	pq, err := pageQuery(q, project, "")
	if err != nil {
		return GroupPage{}, err
	}
	gs, more, err := s.store.ListGroups(ctx, tenant, pq)
	if err != nil {
		return GroupPage{}, fmt.Errorf("list groups of %s: %w", tenant, err)
	}
	synced, err := s.store.GroupsSyncedAt(ctx, tenant)
	if err != nil {
		return GroupPage{}, fmt.Errorf("list groups of %s: %w", tenant, err)
	}
	page := GroupPage{Groups: gs, SyncedAt: synced}
	if more && len(gs) > 0 {
		page.Next = nextCursor(Cursor(gs[len(gs)-1].Name), pq, "")
	}
	return page, nil
}

// Members returns one page of the group's members from the mirror, or
// ErrNotFound, or ErrInvalid for a bad limit, prefix or cursor.
func (s *Service) Members(ctx context.Context, name Name, q ListQuery) (MemberPage, error) {
	pq, err := pageQuery(q, name.Project, name.Group)
	if err != nil {
		return MemberPage{}, err
	}
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return MemberPage{}, fmt.Errorf("members of %s: %w", name, err)
	}
	users, more, err := s.store.ListMembers(ctx, name, pq)
	if err != nil {
		return MemberPage{}, fmt.Errorf("members of %s: %w", name, err)
	}
	page := MemberPage{Members: users, SyncedAt: g.MembersSyncedAt}
	if more && len(users) > 0 {
		page.Next = nextCursor(MemberCursor(users[len(users)-1]), pq, name.Group)
	}
	return page, nil
}
