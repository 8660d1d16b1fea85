package groups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/queue"
	"github.com/groupgate/groupgate/techpass"
)

// Upstream is the part of the TechPass client the executor and the
// reconciler need, bound to one tenant's namespace. Each method is one
// upstream request.
type Upstream interface {
	ListGroups(ctx context.Context) ([]techpass.Group, error)
	// ListGroupsWithTechBiz lists TechBiz-managed groups too.
	ListGroupsWithTechBiz(ctx context.Context) ([]techpass.Group, error)
	CreateGroup(ctx context.Context, name, description string) (techpass.Group, error)
	DeleteGroup(ctx context.Context, id string) error
	UpdateGroup(ctx context.Context, id, description string) (techpass.Group, error)
	GetUser(ctx context.Context, identifier string) (techpass.User, error)
	ListMembers(ctx context.Context, groupID, cursor string) (techpass.MemberPage, error)
	AddMember(ctx context.Context, groupID, userID string) error
	RemoveMember(ctx context.Context, groupID, userID string) error
}

// Mirror is what the executor reads of the group mirror: a group's upstream
// id, its members, and the users already resolved.
type Mirror interface {
	Group(ctx context.Context, name Name) (Group, error)
	ListMembers(ctx context.Context, name Name, q PageQuery) ([]User, bool, error)
	KnownUsers(ctx context.Context, tenant string, ids []string) (map[string]User, error)
	// DeletedUsers returns the users among ids (lower-cased e-mails or
	// object ids) that TechPass reported deleted (by a user-deleted or
	// user-terminated webhook), keyed by the id asked for.
	DeletedUsers(ctx context.Context, tenant string, ids []string) (map[string]DeletedUser, error)
}

// DeletedUser is a user TechPass reported deleted: adding it to a group
// fails without a request (see RemoveDeletedUser).
type DeletedUser struct {
	ID, Email string
	DeletedAt time.Time
	// Expires is when the mark may be forgotten.
	Expires time.Time
}

// Executor carries out one tenant's group operations against TechPass. It is
// the dispatch.Handler[Effect] of the tenant's dispatcher, and its
// dispatch.Endings: it words the failures the dispatcher decides itself.
// Every outcome is interpreted so that executing an operation twice equals
// executing it once: a create that finds its group already there adopts
// it, and a delete that finds it gone succeeds.
type Executor struct {
	upstream Upstream
	mirror   Mirror
	validate *validator.Validate
	now      func() time.Time
	logger   *slog.Logger
}

// NewExecutor returns an executor over upstream that reads the mirror. A nil
// now uses time.Now.
func NewExecutor(upstream Upstream, mirror Mirror, now func() time.Time, logger *slog.Logger) *Executor {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{upstream: upstream, mirror: mirror, validate: NewValidator(), now: now, logger: logger}
}

var (
	_ dispatch.Handler[Effect] = (*Executor)(nil)
	_ dispatch.Endings         = (*Executor)(nil)
)

// Execute carries out op once and reports the outcome. The operation's
// payload is decoded once, by its kind (decodeOperation), and the work
// chosen by the decoded type; an operation that does not decode fails at
// once. A Retry outcome carries the effects that undo the operation's
// pending state in the mirror, for the dispatcher to commit if it gives up.
func (e *Executor) Execute(ctx context.Context, op queue.Operation) Outcome {
	name, p, err := decodeOperation(e.validate, op)
	if err != nil {
		return e.unreadable(op, err)
	}
	var out Outcome
	switch p := p.(type) {
	case createPayload:
		out = e.create(ctx, op, name, p)
	case deletePayload:
		out = e.delete(ctx, name, p)
	case updatePayload:
		out = e.update(ctx, op, name, p)
	case membersPayload:
		out = e.members(ctx, op, name, p)
		if out.Kind == dispatch.Done || out.Kind == dispatch.Fail {
			out.Effects = append(out.Effects, MembersSettled{Name: name, QueuedAt: op.CreatedAt})
		}
	default: // a kind registered in decodePayload but not here
		return e.unreadable(op, fmt.Errorf("%w %q", errUnknownKind, op.Kind))
	}
	if out.Kind == dispatch.Retry {
		out.Effects = Undo(op, e.now())
	}
	return out
}

// unreadable is the failure of an operation that cannot be decoded: of a
// kind this version does not know, or with a payload that does not decode
// as its kind's. It is not retried; an operation of a known kind releases
// its pending state in the mirror (Undo).
func (e *Executor) unreadable(op queue.Operation, err error) Outcome {
	e.logger.Error("operation cannot be decoded; failing it", "operation_id", op.ID, "kind", op.Kind, "err", err)
	if errors.Is(err, errUnknownKind) {
		return fail(http.StatusInternalServerError, "Unknown operation", fmt.Sprintf("operation kind %q is not supported", op.Kind))
	}
	out := fail(http.StatusInternalServerError, "Corrupt operation", "the stored operation could not be read")
	out.Effects = Undo(op, e.now())
	return out
}

// RetriesSpent words the failure of an operation the dispatcher gave up
// on because its retries are spent: TechPass was unavailable (502).
func (e *Executor) RetriesSpent(_ queue.Operation, retried time.Duration, lastError string) *queue.Failure {
	detail := fmt.Sprintf("TechPass did not succeed within %v of retries", retried.Round(time.Second))
	if lastError != "" {
		detail += "; last error: " + lastError
	}
	return &queue.Failure{Status: http.StatusBadGateway, Title: "Upstream unavailable", Detail: detail}
}

// Unworkable words the failure of an operation whose outcome the
// dispatcher could not use (a defect of this package): an internal error.
func (e *Executor) Unworkable(queue.Operation) *queue.Failure {
	return &queue.Failure{Status: http.StatusInternalServerError, Title: "Internal error"}
}

// checked marks the retry of a check whose own request met a transient
// fault (a 5xx, 408 or 429, a timeout, a refused connection) as a failed
// check (see Outcome.Check). A failure to authenticate (a token or
// credential failure, a 401) fails every request alike, so it is counted as
// the attempt's failure.
func checked(out Outcome, err error) Outcome {
	var te *techpass.TokenError
	var ce *techpass.CredentialError
	auth := errors.As(err, &te) || errors.As(err, &ce) || techpass.StatusOf(err) == http.StatusUnauthorized
	out.Check = out.Kind == dispatch.Retry && !auth
	return out
}

// classify maps an upstream error that has no operation-specific meaning:
// temporary ones are retried, the rest fail with onFail applied.
func (e *Executor) classify(err error, what string, onFail ...Effect) Outcome {
	if retry, after, throttled := techpass.Temporary(err); retry {
		return Outcome{Kind: dispatch.Retry, RetryAfter: after, Throttled: throttled, Reason: retryReason(err)}
	}
	return Outcome{Kind: dispatch.Fail, Effects: onFail, Failure: &queue.Failure{
		Status: http.StatusBadGateway, Title: "TechPass error", Detail: reason(err, "TechPass could not "+what),
	}}
}

func done(result []byte, effects ...Effect) Outcome {
	return Outcome{Kind: dispatch.Done, Result: result, Effects: effects}
}

func fail(status int, title, detail string) Outcome {
	return Outcome{Kind: dispatch.Fail, Failure: &queue.Failure{Status: status, Title: title, Detail: detail}}
}

// reason words an upstream error for the caller: the status and TechPass's
// own sanitized message, never a body verbatim.
func reason(err error, fallback string) string {
	var ae *techpass.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s (TechPass answered HTTP %d%s)", fallback, ae.Status, upstreamDetail(ae))
	}
	return fallback
}

// upstreamDetail words TechPass's message and trace id (both sanitized by
// the client; TechPass support asks for the trace id): ": msg; traceId x".
func upstreamDetail(ae *techpass.Error) string {
	s := ""
	if ae.Message != "" {
		s += ": " + ae.Message
	}
	if ae.TraceID != "" {
		s += "; traceId " + ae.TraceID
	}
	return s
}

// retryReason words a temporary failure for the operation's lastError.
func retryReason(err error) string {
	var ae *techpass.Error
	var te *techpass.TokenError
	var ce *techpass.CredentialError
	switch {
	case errors.As(err, &ae) && ae.TraceID != "":
		return fmt.Sprintf("TechPass answered HTTP %d (traceId %s)", ae.Status, ae.TraceID)
	case errors.As(err, &ae):
		return fmt.Sprintf("TechPass answered HTTP %d", ae.Status)
	case errors.As(err, &te):
		return te.Error()
	case errors.As(err, &ce):
		// Where the credential lives is for the platform team (logs,
		// /readyz), not for the project that submitted the operation.
		return "the gateway's TechPass " + ce.What + " could not be used"
	case errors.Is(err, context.DeadlineExceeded):
		return "TechPass did not answer in time"
	default:
		return "TechPass could not be reached"
	}
}
