package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/throttle"
)

// Mirrors reports on and starts the tenants' reconcile passes.
type Mirrors interface {
	// Status returns the tenant's reconciler state; ok is false for a
	// tenant without one (unknown or disabled).
	Status(tenant string) (st groups.Status, ok bool)
	// Request asks for a pass of the tenant now; false if it has no
	// reconciler.
	Request(tenant string) bool
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

// ListMembers lists one page of a group's members from the mirror.
func (h *Handlers) ListMembers(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam, params ListMembersParams) error {
	name, err := h.groupPath(c, tenant, project, group, tenants.MembersRead)
	if err != nil {
		return err
	}
	page, err := h.Groups.Members(c.Request().Context(), name, listQuery(params.LimitParam, params.CursorParam, params.PrefixParam))
	if err != nil {
		return queryError(err)
	}
	out := MemberList{Members: make([]Member, 0, len(page.Members)), SyncedAt: optionalTime(page.SyncedAt)}
	for _, u := range page.Members {
		out.Members = append(out.Members, memberOut(u.ID, u.Email, u.DisplayName))
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	return c.JSON(http.StatusOK, out)
}

// AddMembers queues adding users to a group of the caller's project.
func (h *Handlers) AddMembers(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam, params AddMembersParams) error {
	var req MembersRequest
	return h.changeMembers(c, tenant, project, group, params.IdempotencyKeyParam, params.Prefer, func() ([]string, []string, error) {
		if err := decodeJSON(c, &req); err != nil {
			return nil, nil, err
		}
		return req.Users, nil, nil
	})
}

// RemoveMembers queues removing users from a group of the caller's project.
func (h *Handlers) RemoveMembers(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam, params RemoveMembersParams) error {
	var req MembersRequest
	return h.changeMembers(c, tenant, project, group, params.IdempotencyKeyParam, params.Prefer, func() ([]string, []string, error) {
		if err := decodeJSON(c, &req); err != nil {
			return nil, nil, err
		}
		return nil, req.Users, nil
	})
}

// RemoveMember queues removing one user from a group of the caller's
// project.
func (h *Handlers) RemoveMember(c echo.Context, tenant TenantParam, project ProjectParam, group GroupParam, user UserParam, params RemoveMemberParams) error {
	return h.changeMembers(c, tenant, project, group, params.IdempotencyKeyParam, params.Prefer, func() ([]string, []string, error) {
		return nil, []string{user}, nil
	})
}

// changeMembers is the common path of the member writes: authorize, read
// the change, queue it, answer.
func (h *Handlers) changeMembers(c echo.Context, tenant, project, group string, idemKey *IdempotencyKeyParam, prefer *string, read func() (add, remove []string, err error)) error {
	name, err := h.groupPath(c, tenant, project, group, tenants.MembersWrite)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(idemKey)
	if err != nil {
		return err
	}
	add, remove, err := read()
	if err != nil {
		return err
	}
	fp := append([]string{name.Tenant + ":" + name.Project + ":" + name.Key(), "add"}, add...)
	fp = append(append(fp, "remove"), remove...)
	op, _, err := h.Groups.ChangeMembers(c.Request().Context(), groups.Request{
		Actor: principal(c).Actor(), IdempotencyKey: key, Fingerprint: fingerprint("MEMBERS", fp...),
	}, name, add, remove)
	if err != nil {
		return err
	}
	return h.accepted(c, op, prefer)
}

// GetMirror shows the tenant's reconcile passes (tenant-admins, operators).
func (h *Handlers) GetMirror(c echo.Context, tenant TenantParam) error {
	t, err := h.mirrorTenant(c, tenant)
	if err != nil {
		return err
	}
	out, err := h.mirrorOut(c.Request().Context(), t)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// SyncMirror asks for a reconcile pass of the tenant now.
func (h *Handlers) SyncMirror(c echo.Context, tenant TenantParam) error {
	t, err := h.mirrorTenant(c, tenant)
	if err != nil {
		return err
	}
	noteAudit(c, AuditNote{Tenant: t, Target: t})
	if h.Mirrors == nil || !h.Mirrors.Request(t) {
		return &Error{Status: http.StatusConflict, Title: "No reconciler", Detail: "The tenant has no running upstream client, so its mirror cannot be reconciled."}
	}
	out, err := h.mirrorOut(c.Request().Context(), t)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tenants/"+t+"/mirror")
	return c.JSON(http.StatusAccepted, out)
}

func (h *Handlers) mirrorTenant(c echo.Context, tenant string) (string, error) {
	t := names.Upper(tenant)
	if err := tenants.RequireTenantAdmin(principal(c), t); err != nil {
		return "", err
	}
	if _, err := h.Directory.Tenant(c.Request().Context(), t); err != nil {
		return "", err
	}
	return t, nil
}

func (h *Handlers) mirrorOut(ctx context.Context, tenant string) (MirrorStatus, error) {
	out := MirrorStatus{Tenant: tenant}
	synced, err := h.Groups.GroupsSyncedAt(ctx, tenant)
	if err != nil {
		return MirrorStatus{}, err
	}
	out.GroupsSyncedAt = optionalTime(synced)
	if h.Mirrors == nil {
		return out, nil
	}
	st, ok := h.Mirrors.Status(tenant)
	if !ok {
		return out, nil
	}
	out.Running, out.Passes, out.NextPassAt = st.Running, int32(st.Passes), optionalTime(st.Next)
	if st.Running {
		out.Current = passOut(st.Current)
	}
	if st.Passes > 0 {
		out.Last = passOut(st.Last)
	}
	return out, nil
}

func passOut(p groups.Pass) *MirrorPass {
	return &MirrorPass{
		StartedAt: p.Started.UTC(), FinishedAt: optionalTime(p.Finished), Groups: int32(p.Groups),
		Drift: int32(p.Drift), Skipped: int32(p.Skipped), Requests: int32(p.Requests),
	}
}

// optionalTime is t in UTC, or nil for the zero time.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func memberOut(id, email, displayName string) Member {
	m := Member{Id: id, Email: email}
	if displayName != "" {
		m.DisplayName = &displayName
	}
	return m
}

// operationResult renders an operation's stored result by its kind.
func operationResult(op throttle.Operation, short string) *OperationResult {
	switch op.Kind {
	case groups.KindMembers:
		r, ok, err := groups.DecodeMembersResult(op.Result)
		if err != nil || !ok {
			return nil
		}
		mr := MembersResult{Added: make([]Member, 0, len(r.Added)), Removed: make([]Member, 0, len(r.Removed)), Unchanged: r.Unchanged}
		for _, u := range r.Added {
			mr.Added = append(mr.Added, memberOut(u.ID, u.Email, u.DisplayName))
		}
		for _, u := range r.Removed {
			mr.Removed = append(mr.Removed, memberOut(u.ID, u.Email, u.DisplayName))
		}
		if mr.Unchanged == nil {
			mr.Unchanged = []string{}
		}
		return &OperationResult{Members: &mr}
	default:
		r, ok, err := groups.DecodeResult(op.Result)
		if err != nil || !ok {
			return nil
		}
		g := Group{
			Name: short, FullName: r.FullName, Description: r.Description, State: GroupStateActive,
			CreatedAt: r.CreatedAt, UpdatedAt: op.FinishedAt.UTC(), Project: &op.Project,
		}
		if r.UpstreamID != "" {
			g.UpstreamId = &r.UpstreamID
		}
		return &OperationResult{Group: &g}
	}
}
