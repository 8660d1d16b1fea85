package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/tenants"
)

// CreateGroup queues the creation of a group in the caller's project.
func (h *Handlers) CreateGroup(c echo.Context, tenant TenantParam, project ProjectParam, params CreateGroupParams) error {
	t, p, err := h.authorize(c, tenant, project, tenants.GroupsWrite)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(params.IdempotencyKeyParam)
	if err != nil {
		return err
	}
	var req CreateGroupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	name, err := h.Groups.Name(t, p, req.Name)
	if err != nil {
		return err
	}
	desc := ""
	if req.Description != nil {
		desc = *req.Description
	}
	op, _, err := h.Groups.Create(c.Request().Context(), groups.Request{
		Actor: principal(c).Actor(), IdempotencyKey: key,
		Fingerprint: fingerprint(http.MethodPost, name.String(), desc),
	}, name, desc)
	if err != nil {
		return err
	}
	return h.accepted(c, op, params.Prefer)
}

// listCache keeps each project's encoded group list with the mirror version
// it was read at. The zero value is ready; safe for concurrent use.
type listCache struct {
	mu      sync.RWMutex
	entries map[string]cachedList
}

type cachedList struct {
	version uint64
	body    []byte
}

func (l *listCache) get(key string, version uint64) ([]byte, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.entries[key]
	return e.body, ok && e.version == version
}

func (l *listCache) put(key string, version uint64, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string]cachedList{}
	}
	l.entries[key] = cachedList{version: version, body: body}
}

// GetGroup returns one of the caller's project's groups from the mirror.
func (h *Handlers) GetGroup(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam) error {
	name, err := h.groupPath(c, tenant, project, group, tenants.GroupsRead)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	g, err := h.Groups.Get(ctx, name)
	if err != nil {
		return err
	}
	owners, err := h.Groups.Owners(ctx, name)
	if err != nil {
		return err
	}
	out := groupOut(g)
	if owners != nil {
		list := make([]Member, 0, len(owners))
		for _, u := range owners {
			list = append(list, memberOut(u.ID, u.Email, u.DisplayName))
		}
		out.Owners = &list
	}
	c.Response().Header().Set("ETag", etag(g.Revision))
	return c.JSON(http.StatusOK, out)
}

// DeleteGroup queues the deletion of one of the caller's project's groups.
func (h *Handlers) DeleteGroup(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam, params DeleteGroupParams) error {
	name, err := h.groupPath(c, tenant, project, group, tenants.GroupsWrite)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(params.IdempotencyKeyParam)
	if err != nil {
		return err
	}
	op, _, err := h.Groups.Delete(c.Request().Context(), groups.Request{
		Actor: principal(c).Actor(), IdempotencyKey: key,
		Fingerprint: fingerprint(http.MethodDelete, name.Tenant+":"+name.Project+":"+name.Key()),
	}, name)
	if err != nil {
		return err
	}
	return h.accepted(c, op, params.Prefer)
}

// groupLocation is the path of the group an operation acts on.
func groupLocation(op queue.Operation) string {
	short := op.Target[strings.LastIndexByte(op.Target, ':')+1:]
	return "/v1/tenants/" + op.Tenant + "/projects/" + op.Project + "/groups/" + short
}

// groupOut renders a group of the mirror.
func groupOut(g groups.Group) Group {
	project, tag, count := g.Name.Project, etag(g.Revision), int32(g.MemberCount)
	out := Group{
		Name: g.Name.Group, FullName: g.Name.String(), Description: g.Description,
		State: GroupState(g.State), CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC(),
		Project: &project, Etag: &tag, MemberCount: &count,
		SyncedAt: optionalTime(g.SyncedAt), MembersSyncedAt: optionalTime(g.MembersSyncedAt),
	}
	if g.UpstreamID != "" {
		out.UpstreamId = &g.UpstreamID
	}
	if g.PendingOperation != "" {
		out.PendingOperationId = &g.PendingOperation
	}
	return out
}

// ListGroups lists one page of the caller's project's groups from the
// mirror. The encoded first page without filters, the common read, is
// cached per project and reused while the mirror's version for the project
// is unchanged.
func (h *Handlers) ListGroups(c echo.Context, tenant TenantParam, project ProjectParam, params ListGroupsParams) error {
	t, p, err := h.authorize(c, tenant, project, tenants.GroupsRead)
	if err != nil {
		return err
	}
	q := listQuery(params.LimitParam, params.CursorParam, params.PrefixParam)
	if q != (groups.ListQuery{}) {
		return h.groupPage(c, t, p, q)
	}
	ctx := c.Request().Context()
	version, err := h.Groups.Version(ctx, t, p)
	if err != nil {
		return err
	}
	key := t + ":" + p
	if body, ok := h.lists.get(key, version); ok {
		return listBlob(c, body)
	}
	body, err := h.encodeGroupPage(ctx, t, p, q)
	if err != nil {
		return err
	}
	// The list was read after the version: if it changed in between, the
	// cached body is newer than its version says, and is replaced on the
	// next read. It is never older.
	h.lists.put(key, version, body)
	return listBlob(c, body)
}

// listBlob answers with a JSON list. Its length is known: saying so spares
// chunked encoding (and a write per chunk) for a body past net/http's
// 4 KiB buffer, which most lists are.
func listBlob(c echo.Context, body []byte) error {
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	return c.JSONBlob(http.StatusOK, body)
}

// ListTenantGroups lists one page of a tenant's groups across projects
// (tenant-admins, operators).
func (h *Handlers) ListTenantGroups(c echo.Context, tenant TenantParam, params ListTenantGroupsParams) error {
	t := names.Upper(tenant)
	if err := tenants.RequireTenantAdmin(principal(c), t); err != nil {
		return err
	}
	if _, err := h.Directory.Tenant(c.Request().Context(), t); err != nil {
		return err
	}
	p := ""
	if params.Project != nil {
		p = names.Upper(*params.Project)
	}
	return h.groupPage(c, t, p, listQuery(params.LimitParam, params.CursorParam, params.PrefixParam))
}

func (h *Handlers) groupPage(c echo.Context, tenant, project string, q groups.ListQuery) error {
	body, err := h.encodeGroupPage(c.Request().Context(), tenant, project, q)
	if err != nil {
		return err
	}
	return listBlob(c, body)
}

func (h *Handlers) encodeGroupPage(ctx context.Context, tenant, project string, q groups.ListQuery) ([]byte, error) {
	page, err := h.Groups.ListGroups(ctx, tenant, project, q)
	if err != nil {
		return nil, queryError(err)
	}
	out := GroupList{Groups: make([]Group, 0, len(page.Groups)), SyncedAt: optionalTime(page.SyncedAt)}
	for _, g := range page.Groups {
		out.Groups = append(out.Groups, groupOut(g))
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode group list: %w", err)
	}
	return body, nil
}

// queryError turns a list's complaint about its query (a cursor that is not
// one of this list's, with these filters) into a 400, as for any parameter
// that breaks its rule.
func queryError(err error) error {
	var ve *groups.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return &Error{Status: http.StatusBadRequest, Title: "Invalid parameter", Detail: "A query parameter is not valid for this list; see errors.", Fields: ve.Fields}
}

func listQuery(limit *LimitParam, cursor *CursorParam, prefix *PrefixParam) groups.ListQuery {
	var q groups.ListQuery
	if limit != nil {
		q.Limit = int(*limit)
		if q.Limit == 0 {
			q.Limit = -1 // explicit 0 is out of range, not the default
		}
	}
	if cursor != nil {
		q.Cursor = *cursor
	}
	if prefix != nil {
		q.Prefix = *prefix
	}
	return q
}

// UpdateGroup queues a new description for one of the caller's project's
// groups, optionally only if its ETag still matches If-Match.
func (h *Handlers) UpdateGroup(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam, params UpdateGroupParams) error {
	name, err := h.groupPath(c, tenant, project, group, tenants.GroupsWrite)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(params.IdempotencyKeyParam)
	if err != nil {
		return err
	}
	var req UpdateGroupRequest
	raw, err := decodeJSONRaw(c, &req)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields["description"] == nil {
		return &Error{Status: http.StatusUnprocessableEntity, Title: "Invalid request", Detail: "The request has invalid fields.",
			Fields: []groups.FieldError{{Field: "description", Message: "is required"}}}
	}
	ctx := c.Request().Context()
	greq := groups.Request{
		Actor: principal(c).Actor(), IdempotencyKey: key,
		Fingerprint: fingerprint(http.MethodPatch, name.Tenant+":"+name.Project+":"+name.Key(), req.Description, ifMatchText(params.IfMatchParam)),
	}
	// A replay is answered as the original was, whatever the group's ETag
	// is now.
	if op, ok, err := h.Groups.Replayed(ctx, greq); err != nil || ok {
		if err != nil {
			return err
		}
		if g, err := h.Groups.Get(ctx, name); err == nil {
			c.Response().Header().Set("ETag", etag(g.Revision))
		}
		return h.accepted(c, op, params.Prefer)
	}
	rev, err := h.ifMatch(ctx, name, params.IfMatchParam)
	if err != nil {
		return err
	}
	g, op, _, err := h.Groups.Update(ctx, greq, name, req.Description, rev)
	if errors.Is(err, groups.ErrNotFound) && params.IfMatchParam != nil && strings.TrimSpace(*params.IfMatchParam) == "*" {
		// "*" asks for an existing group (RFC 9110, 13.1.1).
		return fmt.Errorf("If-Match *: %w", groups.ErrRevision)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(g.Revision))
	return h.accepted(c, op, params.Prefer)
}

// ifMatch turns an If-Match header into the revision the update requires:
// 0 for none or "*" (any existing group). A list of tags matches if any
// names the group's current revision. A tag that is malformed, weak, or
// not the group's is a 412.
func (h *Handlers) ifMatch(ctx context.Context, name groups.Name, header *IfMatchParam) (uint64, error) {
	if header == nil || strings.TrimSpace(*header) == "" {
		return 0, nil
	}
	if strings.TrimSpace(*header) == "*" {
		return 0, nil
	}
	var revs []uint64
	for _, tag := range strings.Split(*header, ",") {
		if rev, ok := parseETag(strings.TrimSpace(tag)); ok {
			revs = append(revs, rev)
		}
	}
	switch len(revs) {
	case 0:
		return 0, fmt.Errorf("If-Match %q: %w", clip(*header), groups.ErrRevision)
	case 1:
		return revs[0], nil
	}
	g, err := h.Groups.Get(ctx, name)
	if err != nil {
		return 0, err
	}
	for _, r := range revs {
		if r == g.Revision {
			return r, nil
		}
	}
	return 0, fmt.Errorf("If-Match: %w", groups.ErrRevision)
}

func ifMatchText(header *IfMatchParam) string {
	if header == nil {
		return ""
	}
	return *header
}

// clip shortens a header value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// etag is the entity tag of a group revision: a strong tag, "r<revision>".
func etag(rev uint64) string { return `"r` + strconv.FormatUint(rev, 10) + `"` }

// parseETag reads a strong tag made by etag.
func parseETag(tag string) (uint64, bool) {
	if len(tag) < 4 || !strings.HasPrefix(tag, `"r`) || !strings.HasSuffix(tag, `"`) {
		return 0, false
	}
	rev, err := strconv.ParseUint(tag[2:len(tag)-1], 10, 64)
	// Entity tags compare character by character (RFC 9110, 8.8.3.2):
	// "r01" is not "r1".
	return rev, err == nil && rev > 0 && tag == etag(rev)
}
