package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/tenants"
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
