package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/names"
	"github.com/groupgate/groupgate/tenants"
)

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
	Settled *dispatch.Settled
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
	// Backups writes hot backups of the store; nil answers
	// ErrBackupsNotServed (a PostgreSQL store).
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

// authorize checks the path's tenant and project and that the caller's
// credential may act in them with scope (tenants.RequireProject). It returns
// them upper-cased.
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
