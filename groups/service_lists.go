package groups

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Page limits of the group and member lists.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

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
