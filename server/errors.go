package server

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/tenants"
)

// problemType is the RFC 9457 "type" of each problem: a stable identifier
// clients may switch on.
const problemBase = "urn:groupgate:problem:"

// problems maps domain errors (of packages tenants, groups, queue and dispatch) to
// what the caller is told; handleError answers every error through it.
// Details are fixed texts: an error's own message may hold internals and is
// only logged.
//
// It is not the only place a status is chosen. Errors raised at the edge
// carry their own as an *api.Error, answered as they say: request checks in
// package api (handlers.go, idempotency.go, members.go, admin.go,
// webhooks.go), the spec's parameter rules (params.go), the header limit
// (middleware.go) and the ingress rate limit (package ratelimit). Echo's
// own errors (no route, a wrong method, a body over the limit) are worded
// in problemFor. And an operation that fails upstream records its status in
// the operation itself, not in an HTTP answer: groups/executor.go derives it
// from TechPass's answer.
var problems = []struct {
	err    error
	status int
	slug   string
	title  string
	detail string
}{
	{tenants.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", "Unauthenticated",
		"A valid project API key is required: send Authorization: Bearer gk_<keyid>_<secret>."},
	{tenants.ErrForbidden, http.StatusForbidden, "forbidden", "Forbidden",
		"The API key may not act in this tenant and project, or lacks the scope for this request."},
	{tenants.ErrDisabled, http.StatusForbidden, "disabled", "Disabled",
		"The credential's tenant or project is disabled."},
	{tenants.ErrInvalid, http.StatusUnprocessableEntity, "invalid-definition", "Invalid definition",
		"The definition breaks a rule; see errors."},
	{tenants.ErrNotFound, http.StatusNotFound, "not-found", "Not found",
		"No such tenant, project or key."},
	{tenants.ErrConflict, http.StatusConflict, "exists", "Already exists",
		"A tenant, project or key with that name or id exists."},
	{tenants.ErrQuota, http.StatusConflict, "quota-exceeds-limit", "Quotas exceed the group limit",
		"The projects' group quotas may not add up to more than the tenant's group limit."},
	{groups.ErrQuota, http.StatusConflict, "group-quota", "Group quota reached",
		"The project has as many groups as its quota allows (pending creates included); ask the tenant-admin to raise it."},
	{groups.ErrInvalid, http.StatusUnprocessableEntity, "invalid", "Invalid request",
		"The request breaks a naming or content rule; see errors."},
	{groups.ErrNotFound, http.StatusNotFound, "group-not-found", "Group not found",
		"The project has no group of that name."},
	{groups.ErrExists, http.StatusConflict, "group-exists", "Group already exists",
		"The project already has a group of that name (names are compared case-insensitively), or one is being created."},
	{groups.ErrLimit, http.StatusConflict, "group-limit", "Group limit reached",
		"The tenant's TechPass namespace has reached its group limit; delete a group or ask the platform team to raise the limit."},
	{groups.ErrPending, http.StatusConflict, "operation-pending", "Operation pending",
		"Another operation on the group is queued or running (or the group is being deleted); wait for it to finish."},
	{groups.ErrRevision, http.StatusPreconditionFailed, "precondition-failed", "Precondition Failed",
		"The group has changed since it was read (If-Match names another ETag); nothing was changed. Read it again and retry."},
	{queue.ErrNotFound, http.StatusNotFound, "operation-not-found", "Operation not found",
		"There is no operation with that id in your project."},
	{queue.ErrQueueFull, http.StatusTooManyRequests, "queue-full", "Queue full",
		"The tenant's or the project's queue holds its maximum of pending operations; nothing was recorded. Retry after the time in Retry-After."},
	{queue.ErrNotCancellable, http.StatusConflict, "not-cancellable", "Operation cannot be cancelled",
		"The operation is running, was already sent to TechPass, or is finished."},
	{queue.ErrNotRetryable, http.StatusConflict, "not-retryable", "Operation cannot be retried",
		"Only a failed operation can be retried."},
	{pgstore.ErrAmbiguousCommit, http.StatusServiceUnavailable, "commit-unknown", "Outcome unknown",
		"The database's answer to the commit was lost: the request may or may not be recorded. Retry after the time in Retry-After (with the same Idempotency-Key where the request takes one); the retry settles it."},
	{api.ErrBackupsNotServed, http.StatusNotImplemented, "backup-not-served", "Backups not served here",
		"The store is PostgreSQL: back it up with pg_dump or the database's own backups, not through the API."},
	{queue.ErrIdempotencyMismatch, http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
		"This Idempotency-Key was used for a different request; use a new key for a new request."},
}

// ambiguousRetryAfter is the Retry-After (seconds) of an ambiguous commit:
// long enough for a lost connection to be replaced, or a failover.
const ambiguousRetryAfter = 2

// handleError is Echo's error handler: every error becomes an RFC 9457
// problem. Unknown errors are a 500 that says only "internal error"; the
// detail goes to the log.
func handleError(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := problemFor(err)
		if p.Status >= 500 {
			logger.Error("request failed", "err", err, "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		if p.Status == http.StatusUnauthorized {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="groupgate"`)
		}
		var full *queue.QueueFullError
		if errors.As(err, &full) {
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(full.RetryAfter.Seconds()))))
		}
		if errors.Is(err, pgstore.ErrAmbiguousCommit) {
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(ambiguousRetryAfter))
		}
		instance := c.Request().URL.Path
		p.Instance = &instance
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(int(p.Status))
			return
		}
		_ = c.JSON(int(p.Status), p)
	}
}

func problemFor(err error) api.Problem {
	var ae *api.Error
	if errors.As(err, &ae) {
		return problem(ae.Status, "request", ae.Title, ae.Detail, ae.Fields)
	}
	for _, m := range problems {
		if errors.Is(err, m.err) {
			var fields []groups.FieldError
			var ve *groups.ValidationError
			var ie *tenants.InvalidError
			switch {
			case errors.As(err, &ve):
				fields = ve.Fields
			case errors.As(err, &ie):
				for _, f := range ie.Fields {
					fields = append(fields, groups.FieldError{Field: f.Field, Message: f.Message})
				}
			}
			return problem(m.status, m.slug, m.title, m.detail, fields)
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code < 500 {
		switch he.Code {
		case http.StatusNotFound:
			return problem(he.Code, "not-found", "Not found", "No such endpoint; see /openapi.yaml.", nil)
		case http.StatusMethodNotAllowed:
			return problem(he.Code, "method-not-allowed", "Method not allowed", "The endpoint does not support this method.", nil)
		case http.StatusRequestEntityTooLarge:
			return problem(he.Code, "too-large", "Request too large", "The request body exceeds the size limit.", nil)
		default:
			return problem(he.Code, "bad-request", http.StatusText(he.Code), "The request could not be understood.", nil)
		}
	}
	return problem(http.StatusInternalServerError, "internal", "Internal error", "internal error", nil)
}

func problem(status int, slug, title, detail string, fields []groups.FieldError) api.Problem {
	typ := problemBase + slug
	p := api.Problem{Type: &typ, Title: title, Status: int32(status)}
	if detail != "" {
		p.Detail = &detail
	}
	if len(fields) > 0 {
		fe := make([]api.FieldError, len(fields))
		for i, f := range fields {
			fe[i] = api.FieldError{Field: f.Field, Message: f.Message}
		}
		p.Errors = &fe
	}
	return p
}
