package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/tenants"
)

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

func memberOut(id, email, displayName string) Member {
	m := Member{Id: id, Email: email}
	if displayName != "" {
		m.DisplayName = &displayName
	}
	return m
}
