package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/tenants"
	"github.com/groupgate/groupgate/throttle"
)

// Operations reads stored operations.
type Operations interface {
	Operation(ctx context.Context, id string) (throttle.Operation, error)
}

// Queue answers questions about the tenants' queues.
type Queue interface {
	Estimate(ctx context.Context, op throttle.Operation) (position int, startAt time.Time, ok bool, err error)
	Status(ctx context.Context, tenant, project string) (throttle.Status, error)
}

// ReadinessCheck runs the service's readiness checks; a nil error in the
// map means the check passed.
type ReadinessCheck func(ctx context.Context) map[string]error

// Handlers implements ServerInterface over the domain services. Every field
// is required unless marked optional.
type Handlers struct {
	Groups     *groups.Service
	Operations Operations
	Queue      Queue
	// Admin manages tenants, projects and keys; Directory reads them.
	Admin     *tenants.Admin
	Directory Directory
	// KeyStatus flags keys due for rotation and knows their last use.
	KeyStatus KeyStatus
	// Audit reads the audit log.
	Audit AuditLog
	// Mirrors reports on the tenants' reconcile passes; optional.
	Mirrors Mirrors
	// OnTenantChange, if set, is called after a tenant is created or
	// updated, to rebuild its upstream client and dispatcher.
	OnTenantChange func(ctx context.Context, tenant string) error
	// Settled signals finished operations, for Prefer: wait.
	Settled *throttle.Settled
	// MaxWait caps Prefer: wait; zero disables waiting.
	MaxWait time.Duration
	// Stopping, if set, is closed when the server shuts down: held answers
	// are then sent as they are.
	Stopping <-chan struct{}
	Ready    ReadinessCheck
	// Spec is the OpenAPI document served at /openapi.yaml.
	Spec []byte
	// Docs serves the interactive documentation page and its assets.
	Docs http.Handler
	// Metrics serves the Prometheus metrics.
	Metrics http.Handler
	// Backups writes hot backups of the store.
	Backups Backup
	// Webhooks receives TechPass's webhook deliveries; optional (404
	// without).
	Webhooks Webhooks
	// Now defaults to time.Now.
	Now func() time.Time

	lists listCache
}

var _ ServerInterface = (*Handlers)(nil)

// Error is a problem detected at the HTTP edge (a malformed body, a bad path
// parameter), already worded for the caller.
type Error struct {
	Status int
	Title  string
	Detail string
	Fields []groups.FieldError
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail) }

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 64 << 10

// GetHealth answers the liveness probe.
func (h *Handlers) GetHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, Health{Status: HealthStatusOk})
}

// Notice is what a readiness check returns to pass with a detail: a
// problem that does not stop the service yet (a refused credential while a
// valid token remains). It must hold no secret.
type Notice string

func (n Notice) Error() string { return string(n) }

// GetReadiness answers the readiness probe.
func (h *Handlers) GetReadiness(c echo.Context) error {
	res := Readiness{Status: Ready, Checks: map[string]Check{}}
	for name, err := range h.Ready(c.Request().Context()) {
		chk := Check{Status: CheckStatusOk}
		var notice Notice
		if errors.As(err, &notice) {
			detail := string(notice)
			chk.Detail = &detail
		} else if err != nil {
			detail := err.Error()
			chk = Check{Status: CheckStatusFailing, Detail: &detail}
			res.Status = Unavailable
		}
		res.Checks[name] = chk
	}
	status := http.StatusOK
	if res.Status != Ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, res)
}

// GetOpenAPISpec serves the contract.
func (h *Handlers) GetOpenAPISpec(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", h.Spec)
}

// GetMetrics serves the Prometheus metrics (operators).
func (h *Handlers) GetMetrics(c echo.Context) error {
	if err := tenants.RequireOperator(principal(c)); err != nil {
		return err
	}
	h.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}

// GetDocs serves the interactive documentation page.
func (h *Handlers) GetDocs(c echo.Context) error {
	h.Docs.ServeHTTP(c.Response(), c.Request())
	return nil
}

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
func (h *Handlers) ownOperation(c echo.Context, id string, scope tenants.Scope) (throttle.Operation, error) {
	op, err := h.Operations.Operation(c.Request().Context(), id)
	if err != nil {
		return throttle.Operation{}, err
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
			return throttle.Operation{}, err // own project's operation, missing scope
		}
		return throttle.Operation{}, fmt.Errorf("operation %s of another project: %w", id, throttle.ErrNotFound)
	}
	return op, nil
}

// wait holds the request until op is final or the Prefer: wait time passes,
// and sets Preference-Applied when it waited. It returns op as it is then.
func (h *Handlers) wait(c echo.Context, op throttle.Operation, prefer *string) (throttle.Operation, error) {
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

// authorize checks the path's tenant and project and that the caller's key
// belongs to them with scope. It returns them upper-cased.
func (h *Handlers) authorize(c echo.Context, tenant, project string, scope tenants.Scope) (string, string, error) {
	t, p := names.Upper(tenant), names.Upper(project)
	// A path naming the caller's own tenant and project is well-formed by
	// construction (they were validated when stored); any other is checked,
	// so a malformed one is a 400 rather than a 403.
	if pr := principal(c); pr.Tenant != t || pr.Project != p {
		if _, err := h.Groups.Name(tenant, project, "x"); err != nil {
			return "", "", pathError(err)
		}
	}
	if err := tenants.RequireProject(principal(c), t, p, scope); err != nil {
		return "", "", err
	}
	return t, p, nil
}

func (h *Handlers) groupPath(c echo.Context, tenant, project, group string, scope tenants.Scope) (groups.Name, error) {
	t, p, err := h.authorize(c, tenant, project, scope)
	if err != nil {
		return groups.Name{}, err
	}
	name, err := h.Groups.Name(t, p, group)
	if err != nil {
		return groups.Name{}, pathError(err)
	}
	return name, nil
}

// pathError turns a naming error about a path parameter into a 400.
func pathError(err error) error {
	var ve *groups.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	fields := make([]groups.FieldError, len(ve.Fields))
	for i, f := range ve.Fields {
		if f.Field == "name" {
			f.Field = "group"
		}
		fields[i] = f
	}
	return &Error{Status: http.StatusBadRequest, Title: "Invalid path parameter", Detail: "The request path names an invalid tenant, project or group.", Fields: fields}
}

// accepted answers a write: 202 with the operation to poll, or, when the
// operation finished (at once, or while the caller waited), 201 for a
// created group (Location: the group) or 200 for anything else (Location:
// the operation, for a member change).
func (h *Handlers) accepted(c echo.Context, op throttle.Operation, prefer *string) error {
	noteAudit(c, AuditNote{Tenant: op.Tenant, Project: op.Project, Target: op.Target, OperationID: op.ID})
	op, err := h.wait(c, op, prefer)
	if err != nil {
		return err
	}
	out := h.operationOut(c.Request().Context(), op)
	switch {
	case op.State == throttle.Succeeded && op.Kind == groups.KindCreate:
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

// groupLocation is the path of the group an operation acts on.
func groupLocation(op throttle.Operation) string {
	short := op.Target[strings.LastIndexByte(op.Target, ':')+1:]
	return "/v1/tenants/" + op.Tenant + "/projects/" + op.Project + "/groups/" + short
}

// decodeJSON reads a JSON body strictly: the right media type, one object,
// no unknown fields.
func decodeJSON(c echo.Context, dst any) error {
	_, err := decodeJSONRaw(c, dst)
	return err
}

// decodeJSONRaw is decodeJSON that also returns the body, for fields whose
// explicit null means something.
func decodeJSONRaw(c echo.Context, dst any) ([]byte, error) {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type", Detail: "The request body must be application/json."}
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, maxBodyBytes+1))
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Title: "Malformed body", Detail: "The body could not be read."}
	}
	if len(raw) > maxBodyBytes {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Title: "Request too large", Detail: "The request body exceeds the size limit."}
	}
	return raw, decodeStrict(raw, dst)
}

func decodeStrict(raw []byte, dst any) error {
	if _, err := checkBody(raw); err != nil {
		return &Error{Status: http.StatusBadRequest, Title: "Malformed body", Detail: bodyProblem(err)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return &Error{Status: http.StatusBadRequest, Title: "Malformed body", Detail: bodyProblem(err)}
	}
	if dec.More() {
		return &Error{Status: http.StatusBadRequest, Title: "Malformed body", Detail: "The body must hold exactly one JSON object."}
	}
	if err := exactNames(raw, reflect.TypeOf(dst), ""); err != nil {
		return &Error{Status: http.StatusBadRequest, Title: "Malformed body", Detail: bodyProblem(err)}
	}
	return nil
}

// bodyProblem words a JSON decoding error without echoing the body.
func bodyProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var de *DuplicateKeyError
	var ce *MemberCaseError
	switch {
	case errors.As(err, &ce) && ce.Path == "":
		return fmt.Sprintf("The body has an unknown member %q: member names are case-sensitive (did you mean %q?).", ce.Key, ce.Want)
	case errors.As(err, &ce):
		return fmt.Sprintf("The object %s has an unknown member %q: member names are case-sensitive (did you mean %q?).", ce.Path, ce.Key, ce.Want)
	case errors.Is(err, errNotObject):
		return "The body must be a JSON object."
	case errors.As(err, &de):
		if de.Path == "" {
			return fmt.Sprintf("The body has the member %q twice.", de.Key)
		}
		return fmt.Sprintf("The object %s has the member %q twice.", de.Path, de.Key)
	case errors.As(err, &se):
		return fmt.Sprintf("The body is not valid JSON (at byte %d).", se.Offset)
	case errors.As(err, &te) && te.Field == "":
		return "The body must be a JSON object."
	case errors.As(err, &te):
		return fmt.Sprintf("Field %q must be a JSON %s.", te.Field, jsonType(te.Type))
	case errors.Is(err, io.EOF):
		return "The body is empty."
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The body ends too early or exceeds the size limit."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "The body has an unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "."
	default:
		return "The body could not be read as JSON."
	}
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

func (h *Handlers) operationOut(ctx context.Context, op throttle.Operation) Operation {
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
	if op.State == throttle.Queued && op.NotBefore.After(now()) {
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
func (h *Handlers) resultGroup(ctx context.Context, op throttle.Operation, left Group) (groups.Group, bool) {
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
