package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/webhooks"
)

// Webhooks receives TechPass's webhook deliveries, per tenant.
type Webhooks interface {
	// Receive verifies and applies one delivery for tenant. It returns an
	// error wrapping tenants.ErrNotFound for a tenant without a receiver,
	// and the errors of webhooks.Receiver.Receive.
	Receive(ctx context.Context, tenant, signature string, body []byte) (webhooks.Outcome, error)
	// Has reports whether tenant has a receiver.
	Has(tenant string) bool
}

// ConfirmWebhook answers TechPass's registration check: GET
// ?challengeToken= is answered with the same token.
func (h *Handlers) ConfirmWebhook(c echo.Context, tenant TenantParam, params ConfirmWebhookParams) error {
	name := strings.ToUpper(string(tenant))
	if h.Webhooks == nil || !h.Webhooks.Has(name) {
		return &Error{Status: http.StatusNotFound, Title: "Not found", Detail: fmt.Sprintf("no webhook for tenant %s", name)}
	}
	tok := params.ChallengeToken
	if tok == "" || len(tok) > 512 || strings.ContainsFunc(tok, unicode.IsControl) {
		return &Error{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "challengeToken must be 1 to 512 printable characters"}
	}
	return c.JSON(http.StatusOK, WebhookChallenge{ChallengeToken: tok})
}

// ReceiveWebhook verifies and applies one TechPass delivery. It
// needs no API key: the signature authenticates it.
func (h *Handlers) ReceiveWebhook(c echo.Context, tenant TenantParam, _ ReceiveWebhookParams) error {
	name := strings.ToUpper(string(tenant))
	noteAudit(c, AuditNote{Tenant: name, Target: "webhook"})
	if h.Webhooks == nil || !h.Webhooks.Has(name) {
		return &Error{Status: http.StatusNotFound, Title: "Not found", Detail: fmt.Sprintf("no webhook for tenant %s", name)}
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, webhooks.MaxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Title: "Payload too large", Detail: fmt.Sprintf("a delivery may hold at most %d bytes", webhooks.MaxBody)}
		}
		return &Error{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "the body could not be read"}
	}
	if len(body) > webhooks.MaxBody {
		return &Error{Status: http.StatusRequestEntityTooLarge, Title: "Payload too large", Detail: fmt.Sprintf("a delivery may hold at most %d bytes", webhooks.MaxBody)}
	}
	out, err := h.Webhooks.Receive(c.Request().Context(), name, c.Request().Header.Get(webhooks.SignatureHeader), body)
	switch {
	case errors.Is(err, webhooks.ErrStale):
		return &Error{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "the webhook signature's timestamp is more than 5 minutes from now"}
	case errors.Is(err, webhooks.ErrBadSignature):
		return &Error{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "the webhook signature does not verify"}
	case errors.Is(err, webhooks.ErrMalformed):
		return &Error{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "the delivery is not a JSON object with an event type"}
	case err != nil:
		return err
	}
	noteAudit(c, AuditNote{Actor: "techpass", Tenant: name, Target: "webhook:" + out.Event.Type})
	return c.JSON(http.StatusOK, WebhookReceipt{Status: WebhookReceiptStatus(out.Status), Event: out.Event.Type})
}
