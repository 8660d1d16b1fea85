package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/tenants"
)

// Authenticator finds the principal behind a presented API key.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (tenants.Principal, error)
}

const principalKey = "groupgate.principal"

// Authenticate returns middleware that requires "Authorization: Bearer
// <key>" and stores the principal for the handlers. Failures are
// tenants.ErrUnauthenticated, answered 401 by the error handler.
func Authenticate(a Authenticator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			scheme, key, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
				return fmt.Errorf("%w: no bearer credential", tenants.ErrUnauthenticated)
			}
			p, err := a.Authenticate(c.Request().Context(), strings.TrimSpace(key))
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// principal returns the caller authenticated by Authenticate. A handler of
// a secured route only runs after it, so a missing principal is a zero one,
// which every tenants.Require* check refuses (it has no role).
func principal(c echo.Context) tenants.Principal {
	p, _ := c.Get(principalKey).(tenants.Principal)
	return p
}

// PrincipalActor returns the authenticated caller's identity (key id or JWT
// subject), for rate limits and audit; "" before authentication.
func PrincipalActor(c echo.Context) string { return principal(c).Actor() }

// Principal returns the authenticated caller, for audit; the zero
// Principal before authentication.
func Principal(c echo.Context) tenants.Principal { return principal(c) }

// AuditNote is what a handler tells the audit log about its call, beyond
// what the path says.
type AuditNote struct {
	// Actor names a caller authenticated otherwise than by a credential
	// (TechPass, by a webhook's signature); empty otherwise.
	Actor           string
	Tenant, Project string
	Target          string
	OperationID     string
}

const auditNoteKey = "groupgate.audit"

func noteAudit(c echo.Context, n AuditNote) { c.Set(auditNoteKey, n) }

// AuditNoteOf returns what the handler noted for the audit log.
func AuditNoteOf(c echo.Context) AuditNote {
	n, _ := c.Get(auditNoteKey).(AuditNote)
	return n
}
