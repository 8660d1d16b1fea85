package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/tenants"
)

// Operations reads stored operations.
type Operations interface {
	Operation(ctx context.Context, id string) (queue.Operation, error)
}

// Queue answers questions about the tenants' queues.
type Queue interface {
	Estimate(ctx context.Context, op queue.Operation) (position int, startAt time.Time, ok bool, err error)
	Status(ctx context.Context, tenant, project string) (dispatch.Status, error)
}

// CancelOperation cancels a queued operation of the caller's project.
func (h *Handlers) CancelOperation(c echo.Context, id OperationIDParam) error {
	op, err := h.ownOperation(c, id, tenants.GroupsWrite)
	if err != nil {
		return err
	}
	noteAudit(c, AuditNote{Tenant: op.Tenant, Project: op.Project, Target: op.Target, OperationID: op.ID})
	op, err = h.Groups.Cancel(c.Request().Context(), op)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.operationOut(c.Request().Context(), op))
}

// RetryOperation queues the work of a failed operation of the caller's
// project again, as a new operation.
func (h *Handlers) RetryOperation(c echo.Context, id OperationIDParam, params RetryOperationParams) error {
	op, err := h.ownOperation(c, id, tenants.GroupsWrite)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(params.IdempotencyKeyParam)
	if err != nil {
		return err
	}
	next, _, err := h.Groups.Retry(c.Request().Context(), groups.Request{
		Actor: principal(c).Actor(), IdempotencyKey: key, Fingerprint: fingerprint(http.MethodPost, "retry", op.ID),
	}, op)
	if err != nil {
		return err
	}
	return h.accepted(c, next, params.Prefer)
}

// GetQueue shows the pending work of the caller's project and tenant.
func (h *Handlers) GetQueue(c echo.Context, tenant TenantParam, project ProjectParam) error {
	t, p, err := h.authorize(c, tenant, project, tenants.GroupsRead)
	if err != nil {
		return err
	}
	st, err := h.Queue.Status(c.Request().Context(), t, p)
	if err != nil {
		return err
	}
	orMax := func(n int) int32 {
		if n <= 0 {
			return math.MaxInt32
		}
		return int32(n)
	}
	return c.JSON(http.StatusOK, QueueStatus{
		Tenant:           QueueDepth{Pending: int32(st.Depth.Total), Max: orMax(st.Limits.Tenant)},
		Project:          QueueDepth{Pending: int32(st.Depth.Projects[p]), Max: orMax(st.Limits.Project)},
		ProjectsWaiting:  int32(len(st.Depth.Projects)),
		IntervalSeconds:  st.Interval.Seconds(),
		EstimatedStartAt: st.StartAt.UTC(),
	})
}

// GetOperation returns an operation of the caller's project. Operations of
// other projects are reported as not found, so ids reveal nothing.
func (h *Handlers) GetOperation(c echo.Context, id OperationIDParam, params GetOperationParams) error {
	op, err := h.ownOperation(c, id, tenants.GroupsRead)
	if err != nil {
		return err
	}
	op, err = h.wait(c, op, params.Prefer)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.operationOut(c.Request().Context(), op))
}

// ownOperation reads an operation of the caller's project with scope, a
// groups scope; a member change asks for the matching members scope
// instead, so a key that may only manage members can follow its own
// operations.
func (h *Handlers) ownOperation(c echo.Context, id string, scope tenants.Scope) (queue.Operation, error) {
	op, err := h.Operations.Operation(c.Request().Context(), id)
	if err != nil {
		return queue.Operation{}, err
	}
	if op.Kind == groups.KindMembers {
		if scope == tenants.GroupsWrite {
			scope = tenants.MembersWrite
		} else {
			scope = tenants.MembersRead
		}
	}
	if err := tenants.RequireProject(principal(c), op.Tenant, op.Project, scope); err != nil {
		own := tenants.RequireProject(principal(c), op.Tenant, op.Project, tenants.GroupsRead) == nil ||
			tenants.RequireProject(principal(c), op.Tenant, op.Project, tenants.MembersRead) == nil
		if errors.Is(err, tenants.ErrForbidden) && own {
			return queue.Operation{}, err // own project's operation, missing scope
		}
		return queue.Operation{}, fmt.Errorf("operation %s of another project: %w", id, queue.ErrNotFound)
	}
	return op, nil
}

// wait holds the request until op is final or the Prefer: wait time passes,
// and sets Preference-Applied when it waited. It returns op as it is then.
func (h *Handlers) wait(c echo.Context, op queue.Operation, prefer *string) (queue.Operation, error) {
	d := preferWait(prefer, h.MaxWait)
	if d == 0 || h.Settled == nil {
		return op, nil
	}
	c.Response().Header().Set("Preference-Applied", fmt.Sprintf("wait=%d", int(d/time.Second)))
	if op.State.Final() {
		return op, nil
	}
	ctx := c.Request().Context()
	done, stop := h.Settled.Wait(op.ID)
	defer stop()
	// Read again after registering, so a finish in between is not missed.
	cur, err := h.Operations.Operation(ctx, op.ID)
	if err != nil || cur.State.Final() {
		return cur, err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		return cur, nil
	case <-ctx.Done():
		return cur, nil
	case <-h.Stopping:
		return cur, nil
	}
	return h.Operations.Operation(ctx, op.ID)
}

// accepted answers a write: 202 with the operation to poll, or, when the
// operation finished (at once, or while the caller waited), 201 for a
// created group (Location: the group) or 200 for anything else (Location:
// the operation, for a member change).
func (h *Handlers) accepted(c echo.Context, op queue.Operation, prefer *string) error {
	noteAudit(c, AuditNote{Tenant: op.Tenant, Project: op.Project, Target: op.Target, OperationID: op.ID})
	op, err := h.wait(c, op, prefer)
	if err != nil {
		return err
	}
	out := h.operationOut(c.Request().Context(), op)
	switch {
	case op.State == queue.Succeeded && op.Kind == groups.KindCreate:
		c.Response().Header().Set(echo.HeaderLocation, groupLocation(op))
		return c.JSON(http.StatusCreated, out)
	case op.State.Final():
		if op.Kind == groups.KindMembers {
			// MembersFinished names the operation, whose result says
			// what changed.
			c.Response().Header().Set(echo.HeaderLocation, "/v1/operations/"+op.ID)
		}
		return c.JSON(http.StatusOK, out)
	default:
		c.Response().Header().Set(echo.HeaderLocation, "/v1/operations/"+op.ID)
		return c.JSON(http.StatusAccepted, out)
	}
}

func (h *Handlers) operationOut(ctx context.Context, op queue.Operation) Operation {
	short := op.Target
	if i := strings.LastIndexByte(short, ':'); i >= 0 {
		short = short[i+1:]
	}
	out := Operation{
		Id: op.ID, Kind: OperationKind(op.Kind), State: OperationState(op.State),
		Tenant: op.Tenant, Project: op.Project, Group: short, FullName: op.Target,
		Attempts: int32(op.Attempts), CreatedAt: op.CreatedAt.UTC(), UpdatedAt: op.UpdatedAt.UTC(),
	}
	if !op.StartedAt.IsZero() {
		t := op.StartedAt.UTC()
		out.StartedAt = &t
	}
	if !op.FinishedAt.IsZero() {
		t := op.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if op.State == queue.Queued && op.NotBefore.After(now()) {
		t := op.NotBefore.UTC()
		out.NextAttemptAt = &t
	}
	if op.LastError != "" && !op.State.Final() {
		out.LastError = &op.LastError
	}
	if h.Queue != nil {
		// An estimate is best effort: without one the operation is still
		// worth returning.
		if pos, at, ok, err := h.Queue.Estimate(ctx, op); err == nil && ok {
			p, t := int32(pos), at.UTC()
			out.Position, out.EstimatedStartAt = &p, &t
		}
	}
	if op.Failure != nil {
		detail := op.Failure.Detail
		out.Error = &Problem{Title: op.Failure.Title, Status: int32(op.Failure.Status), Detail: &detail}
	}
	out.Result = operationResult(op, short)
	if out.Result != nil && out.Result.Group != nil {
		if g, ok := h.resultGroup(ctx, op, *out.Result.Group); ok {
			current := groupOut(g)
			out.Result.Group = &current
		}
	}
	return out
}

// resultGroup returns the group a succeeded create or update acted on, as
// the mirror holds it now, so that the operation's result reads exactly as
// GET of the group (with its ETag). ok is false once the group is gone or
// replaced by another of the same name; the result then shows the group as
// the operation left it.
func (h *Handlers) resultGroup(ctx context.Context, op queue.Operation, left Group) (groups.Group, bool) {
	parts := strings.Split(op.Target, ":")
	if h.Groups == nil || len(parts) != 3 || left.UpstreamId == nil {
		return groups.Group{}, false
	}
	g, err := h.Groups.Get(ctx, groups.Name{Tenant: parts[0], Project: parts[1], Group: parts[2]})
	if err != nil || g.UpstreamID != *left.UpstreamId {
		return groups.Group{}, false
	}
	return g, true
}

// operationResult renders an operation's stored result by its kind.
func operationResult(op queue.Operation, short string) *OperationResult {
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
