package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/audit"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/queue"
)

// auditedReads are the reads audited like writes, with their action: a
// backup reads everything.
var auditedReads = map[string]string{"getBackup": "store.backup"}

// signedActions are the audited actions of calls that anyone may send,
// authenticated by a signature instead of a credential (TechPass's webhook
// deliveries): only the calls that verify are audited. Refusals are counted
// (groupgate_webhook_deliveries_total{kind="refused"}, the HTTP metrics) and
// logged at most once a minute, so unsigned requests cannot grow the audit
// log.
var signedActions = map[string]bool{"webhook.receive": true}

// auditedRoutes maps "METHOD /echo/route/:param" to the audit action of
// every operation of the spec that is audited: each one that is not a GET
// (so no mutating operation can be forgotten), and the auditedReads.
func auditedRoutes(doc *openapi3.T) map[string]string {
	out := map[string]string{}
	for route, id := range routeOperations(doc) {
		method, _, _ := strings.Cut(route, " ")
		if action, ok := auditedReads[id]; ok {
			out[route] = action
		} else if method != http.MethodGet {
			out[route] = auditAction(id)
		}
	}
	return out
}

// auditAction names the action of an operationId, "<object>.<verb>":
// createGroup is group.create, addMembers members.add, syncMirror
// mirror.sync.
func auditAction(operationID string) string {
	i := strings.IndexFunc(operationID, unicode.IsUpper)
	if i <= 0 {
		return strings.ToLower(operationID)
	}
	return strings.ToLower(operationID[i:]) + "." + operationID[:i]
}

// routeOperations maps "METHOD /echo/route/:param" to the spec's operationId.
func routeOperations(doc *openapi3.T) map[string]string {
	out := map[string]string{}
	for path, item := range doc.Paths.Map() {
		route := path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				route = strings.Replace(route, seg, ":"+strings.Trim(seg, "{}"), 1)
			}
		}
		for method, op := range item.Operations() {
			out[method+" "+route] = op.OperationID
		}
	}
	return out
}

// auditCalls records every mutating call (and every backup, which reads
// everything) after it is answered: who, in
// which tenant and project, what, on what, and how it ended (including
// calls refused before or after authentication, for too large headers or
// body, and calls whose handling panicked, recorded as failed before the
// panic goes on). It never records a body.
func (s *Server) auditCalls(actions map[string]string) echo.MiddlewareFunc {
	// By method, then route: the lookup on every request builds no string.
	byMethod := map[string]map[string]string{}
	for route, action := range actions {
		method, path, _ := strings.Cut(route, " ")
		if byMethod[method] == nil {
			byMethod[method] = map[string]string{}
		}
		byMethod[method][path] = action
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			action, ok := byMethod[c.Request().Method][c.Path()]
			if !ok {
				return next(c)
			}
			recorded := false
			defer func() {
				if recorded {
					return
				}
				v := recover()
				s.recordCall(c, action, http.StatusInternalServerError, errors.New("panic"))
				if v != nil {
					panic(v)
				}
			}()
			err := next(c)
			if err != nil {
				c.Error(err) // answer now, so the status is known
			}
			recorded = true
			s.recordCall(c, action, c.Response().Status, err)
			return nil
		}
	}
}

// recordCall audits a call answered with status (err is what the handler
// returned, if anything).
func (s *Server) recordCall(c echo.Context, action string, status int, err error) {
	p := api.Principal(c)
	note := api.AuditNoteOf(c)
	e := audit.Entry{
		Actor: p.Actor(), Role: string(p.Role), Action: action,
		Tenant: names.Upper(c.Param("tenant")), Project: names.Upper(c.Param("project")),
		Target: note.Target, OperationID: note.OperationID,
		Status:    status,
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
	}
	if e.Actor == "" {
		e.Actor = note.Actor
	}
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	if note.Tenant != "" {
		e.Tenant, e.Project = note.Tenant, note.Project
	}
	if e.Tenant == "" && p.Tenant != "" {
		e.Tenant, e.Project = p.Tenant, p.Project
	}
	if e.Target == "" {
		e.Target = auditTarget(c)
	}
	if signedActions[action] && status >= 300 {
		return // refusals of calls authenticated by signature are counted, not audited
	}
	switch st := e.Status; {
	case st == http.StatusAccepted:
		e.Outcome = audit.Accepted
	case st < 300:
		e.Outcome = audit.Succeeded
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		e.Outcome = audit.Denied
	default:
		e.Outcome = audit.Failed
	}
	if err != nil {
		e.Detail = problemFor(err).Title
	}
	s.audit.Record(context.WithoutCancel(c.Request().Context()), e)
}

// auditTarget names what a call acted on from its path.
func auditTarget(c echo.Context) string {
	switch {
	case c.Param("group") != "":
		return names.Upper(c.Param("tenant")) + ":" + names.Upper(c.Param("project")) + ":" + c.Param("group")
	case c.Param("id") != "":
		return c.Param("id")
	case c.Param("keyId") != "":
		return "key:" + c.Param("keyId")
	case c.Param("project") != "":
		return names.Upper(c.Param("tenant")) + ":" + names.Upper(c.Param("project"))
	default:
		return names.Upper(c.Param("tenant"))
	}
}

// recordOutcome audits an operation's upstream outcome.
func (s *Server) recordOutcome(op queue.Operation) {
	e := audit.Entry{
		Actor: audit.System, Role: audit.System, Tenant: op.Tenant, Project: op.Project,
		Action: "operation." + string(op.State), Target: op.Target, OperationID: op.ID, Outcome: audit.Succeeded,
	}
	if op.State == queue.Failed {
		e.Outcome = audit.Failed
		if op.Failure != nil {
			e.Detail = op.Failure.Title
		}
	}
	s.audit.Record(context.Background(), e)
}

// auditReader answers GET /v1/audit from the audit log.
type auditReader struct{ log *audit.Log }

func (r auditReader) Query(ctx context.Context, q api.AuditQuery) ([]api.AuditEntry, string, error) {
	page, err := r.log.Query(ctx, audit.Query{
		Filter: audit.Filter{Tenant: q.Tenant, Project: q.Project, Actor: q.Actor, Action: q.Action, Since: q.Since, Until: q.Until},
		Cursor: q.Cursor, Limit: q.Limit,
	})
	if errors.Is(err, audit.ErrInvalidFilter) {
		return nil, "", errors.Join(api.ErrBadQuery, err)
	}
	if err != nil {
		return nil, "", err
	}
	out := make([]api.AuditEntry, len(page.Entries))
	for i, e := range page.Entries {
		out[i] = api.AuditEntry{
			Id: e.ID, Time: e.Time, Actor: e.Actor, Role: e.Role, Action: e.Action, Outcome: e.Outcome,
			Tenant: optional(e.Tenant), Project: optional(e.Project), Target: optional(e.Target),
			RequestId: optional(e.RequestID), OperationId: optional(e.OperationID), Detail: optional(e.Detail),
		}
		if e.Status != 0 {
			st := int32(e.Status)
			out[i].Status = &st
		}
	}
	return out, page.Next, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// recordDrift audits a difference a reconcile pass found between the mirror
// and TechPass: a change made outside the gateway.
func (s *Server) recordDrift(ctx context.Context, d groups.Drift) {
	e := audit.Entry{
		Actor: audit.System, Role: audit.System, Tenant: d.Group.Tenant, Project: d.Group.Project,
		Action: "drift." + d.Kind, Target: d.Group.String(), Outcome: audit.Succeeded,
		Detail: "changed outside the gateway; the mirror now follows TechPass",
	}
	switch d.Kind {
	case "member.appeared":
		e.Detail = "member " + d.User.Email + " (" + d.User.ID + ") added outside the gateway"
	case "member.vanished":
		e.Detail = "member " + d.User.Email + " (" + d.User.ID + ") removed outside the gateway"
	}
	s.metrics.Drift(d.Group.Tenant, d.Kind)
	s.audit.Record(ctx, e)
}
