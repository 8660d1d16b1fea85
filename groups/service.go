package groups

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/groupgate/groupgate/queue"
)

// Quotas says how many groups a tenant and each of its projects may have.
type Quotas interface {
	// GroupLimits returns the tenant's namespace group limit and the
	// project's quota (0: none).
	GroupLimits(ctx context.Context, tenant, project string) (tenantLimit, projectQuota int, err error)
}

// Scheduler is what the service needs of the queue: to wake a tenant's
// dispatcher, to signal a settled operation, and each tenant's queue limits
// and upstream pace.
type Scheduler interface {
	Wake(tenant string)
	Notify(opID string)
	Limits(tenant string) queue.Limits
	Interval(tenant string) time.Duration
}

// Service manages project groups: it validates requests, records them in the
// mirror and queues the upstream operations. It is safe for concurrent use.
type Service struct {
	store    *Ledger
	queue    Scheduler
	quotas   Quotas
	validate *validator.Validate
	now      func() time.Time
	idemTTL  time.Duration
}

// ServiceConfig holds a Service's dependencies.
type ServiceConfig struct {
	// Store keeps the mirror and the queue; the service writes it through
	// a Ledger.
	Store Store
	Queue Scheduler
	// Quotas gives each tenant's group limit and project's quota.
	Quotas Quotas
	// IdempotencyTTL is how long an Idempotency-Key is remembered; default 24h.
	IdempotencyTTL time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewService returns a service over cfg's store.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	return &Service{store: NewLedger(cfg.Store), queue: cfg.Queue, quotas: cfg.Quotas, validate: NewValidator(),
		now: cfg.Now, idemTTL: cfg.IdempotencyTTL}
}

// Validator returns the service's validator with the naming rules.
func (s *Service) Validator() *validator.Validate { return s.validate }

// Name builds and validates a group name from request parts.
func (s *Service) Name(tenant, project, group string) (Name, error) {
	return NewName(s.validate, tenant, project, group)
}

// Request says who asks for a write and how to recognise a retry of it.
type Request struct {
	// Actor identifies the caller's credential.
	Actor string
	// IdempotencyKey, if not empty, makes a repeat of the request return
	// the original operation.
	IdempotencyKey string
	// Fingerprint identifies the request's meaning, to tell a repeat from a
	// different request reusing the key.
	Fingerprint string
}

// Create queues the creation of group name with description. It returns the
// queued operation (replayed is true when an earlier identical request with
// the same idempotency key queued it), or ErrInvalid, ErrExists, ErrQuota,
// ErrLimit, queue.ErrQueueFull or queue.ErrIdempotencyMismatch
// (wrapped).
func (s *Service) Create(ctx context.Context, req Request, name Name, description string) (op queue.Operation, replayed bool, err error) {
	if op, ok, err := s.Replayed(ctx, req); ok || err != nil {
		return op, ok, err
	}
	if err := ValidateDescription(description); err != nil {
		return queue.Operation{}, false, err
	}
	op, err = s.newOperation(req, name, createPayload{FullName: name.String(), Description: description})
	if err != nil {
		return queue.Operation{}, false, err
	}
	g := Group{Name: name, Description: description, State: Creating, PendingOperation: op.ID, CreatedAt: op.CreatedAt, UpdatedAt: op.CreatedAt}
	tenantLimit, quota, err := s.quotas.GroupLimits(ctx, name.Tenant, name.Project)
	if err != nil {
		return queue.Operation{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	limits := Limits{Groups: tenantLimit, ProjectQuota: quota, Queue: s.queue.Limits(name.Tenant)}
	stored, err := s.store.CreatePending(ctx, g, op, limits)
	return s.queued(ctx, stored, err, "create", name)
}

// Delete queues the deletion of group name, with the same replay and error
// rules as Create but ErrNotFound and ErrPending instead of ErrExists and
// ErrLimit.
func (s *Service) Delete(ctx context.Context, req Request, name Name) (op queue.Operation, replayed bool, err error) {
	if op, ok, err := s.Replayed(ctx, req); ok || err != nil {
		return op, ok, err
	}
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return queue.Operation{}, false, fmt.Errorf("delete %s: %w", name, err)
	}
	op, err = s.newOperation(req, g.Name, deletePayload{FullName: g.Name.String(), UpstreamID: g.UpstreamID})
	if err != nil {
		return queue.Operation{}, false, err
	}
	stored, err := s.store.DeletePending(ctx, g.Name, op, s.queue.Limits(name.Tenant))
	return s.queued(ctx, stored, err, "delete", name)
}

// newOperation returns the queued operation of p's kind on group name, its
// payload encoded (see payload).
func (s *Service) newOperation(req Request, name Name, p payload) (queue.Operation, error) {
	b, err := encodePayload(p)
	if err != nil {
		return queue.Operation{}, err
	}
	now := s.now()
	op := queue.Operation{
		ID: queue.NewID(), Tenant: name.Tenant, Project: name.Project, Kind: p.kind(),
		Target: name.String(), Payload: b, Actor: req.Actor, State: queue.Queued,
		CreatedAt: now, UpdatedAt: now,
	}
	if req.IdempotencyKey != "" {
		op.Idempotency = &queue.Idempotency{Scope: req.Actor, Key: req.IdempotencyKey, Fingerprint: req.Fingerprint, Expires: now.Add(s.idemTTL)}
	}
	return op, nil
}

// Replayed returns the operation an earlier request with req's
// idempotency key queued, if there is one (ok), or
// queue.ErrIdempotencyMismatch if that request was another. The write
// methods check this first themselves; a caller that must evaluate
// preconditions before calling them checks it earlier, so that a replay is
// answered as the original was.
func (s *Service) Replayed(ctx context.Context, req Request) (queue.Operation, bool, error) {
	if req.IdempotencyKey == "" {
		return queue.Operation{}, false, nil
	}
	id, fp, ok, err := s.store.Idempotent(ctx, req.Actor, req.IdempotencyKey, s.now())
	if err != nil || !ok {
		return queue.Operation{}, false, err
	}
	if fp != req.Fingerprint {
		return queue.Operation{}, false, fmt.Errorf("idempotency key: %w", queue.ErrIdempotencyMismatch)
	}
	op, err := s.store.Operation(ctx, id)
	if err != nil {
		return queue.Operation{}, false, fmt.Errorf("replay of %s: %w", id, err)
	}
	return op, true, nil
}

// queued finishes a create or delete: a replay found inside the enqueue
// transaction (a concurrent twin) returns the original operation; a full
// queue gets its Retry-After; success wakes the dispatcher.
func (s *Service) queued(ctx context.Context, op queue.Operation, err error, what string, name Name) (queue.Operation, bool, error) {
	var replay *queue.ReplayError
	var full *queue.QueueFullError
	switch {
	case errors.As(err, &replay):
		orig, err := s.store.Operation(ctx, replay.OperationID)
		return orig, err == nil, err
	case errors.As(err, &full):
		full.RetryAfter = queue.RetryAfter(full.Depth, s.queue.Limits(name.Tenant), name.Project, s.queue.Interval(name.Tenant))
		return queue.Operation{}, false, fmt.Errorf("queue %s of %s: %w", what, name, full)
	case err != nil:
		return queue.Operation{}, false, fmt.Errorf("queue %s of %s: %w", what, name, err)
	}
	s.queue.Wake(name.Tenant)
	return op, false, nil
}

// Retry queues again the work of a failed operation, as a new operation
// with the same checks as a fresh request (the failed one stays as it was,
// for the record). It returns queue.ErrNotRetryable unless op failed.
func (s *Service) Retry(ctx context.Context, req Request, op queue.Operation) (queue.Operation, bool, error) {
	if op.State != queue.Failed {
		return queue.Operation{}, false, fmt.Errorf("operation %s is %s: %w", op.ID, op.State, queue.ErrNotRetryable)
	}
	name, err := ParseFullName(s.validate, op.Target)
	if err != nil {
		return queue.Operation{}, false, fmt.Errorf("retry %s: %w", op.ID, err)
	}
	p, err := decodePayload(op.Kind, op.Payload)
	switch {
	case errors.Is(err, errUnknownKind):
		return queue.Operation{}, false, fmt.Errorf("retry %s: kind %q: %w", op.ID, op.Kind, queue.ErrNotRetryable)
	case err != nil:
		return queue.Operation{}, false, fmt.Errorf("retry %s: %w", op.ID, err)
	}
	switch p := p.(type) {
	case createPayload:
		return s.Create(ctx, req, name, p.Description)
	case deletePayload:
		return s.Delete(ctx, req, name)
	case updatePayload:
		_, next, replayed, err := s.Update(ctx, req, name, p.Description, 0)
		return next, replayed, err
	case membersPayload:
		return s.ChangeMembers(ctx, req, name, p.Add, p.Remove)
	default:
		return queue.Operation{}, false, fmt.Errorf("retry %s: kind %q: %w", op.ID, op.Kind, queue.ErrNotRetryable)
	}
}

// errAlreadyCancelled stops a cancel that finds its work done already.
var errAlreadyCancelled = errors.New("already cancelled")

// Cancel cancels op if it has not been sent upstream yet, reverting its
// mirror change, and returns it. Cancelling a cancelled operation returns
// it unchanged. It returns queue.ErrNotCancellable otherwise.
func (s *Service) Cancel(ctx context.Context, op queue.Operation) (queue.Operation, error) {
	now := s.now()
	done, err := s.store.Finish(ctx, op.ID, func(o *queue.Operation) ([]Effect, error) {
		switch {
		case o.State == queue.Cancelled:
			return nil, errAlreadyCancelled
		case o.State != queue.Queued || o.Attempts > 0:
			return nil, fmt.Errorf("operation %s is %s after %d attempts: %w", o.ID, o.State, o.Attempts, queue.ErrNotCancellable)
		}
		o.State, o.UpdatedAt, o.FinishedAt, o.NotBefore = queue.Cancelled, now, now, time.Time{}
		return Undo(*o, now), nil
	})
	if errors.Is(err, errAlreadyCancelled) {
		return s.store.Operation(ctx, op.ID)
	}
	if err != nil {
		return queue.Operation{}, fmt.Errorf("cancel %s: %w", op.ID, err)
	}
	s.queue.Notify(op.ID)
	s.queue.Wake(op.Tenant)
	return done, nil
}

// Get returns the group from the mirror, or ErrNotFound.
func (s *Service) Get(ctx context.Context, name Name) (Group, error) {
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return Group{}, fmt.Errorf("get %s: %w", name, err)
	}
	return g, nil
}

// Owners returns the group's owners as TechPass last showed them (see
// Store.Owners): nil when not read yet.
func (s *Service) Owners(ctx context.Context, name Name) ([]User, error) {
	us, err := s.store.Owners(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("owners of %s: %w", name, err)
	}
	return us, nil
}

// Version returns the project's mirror version (see Store.GroupsVersion).
func (s *Service) Version(ctx context.Context, tenant, project string) (uint64, error) {
	v, err := s.store.GroupsVersion(ctx, tenant, project)
	if err != nil {
		return 0, fmt.Errorf("groups version of %s:%s: %w", tenant, project, err)
	}
	return v, nil
}

// List returns the project's groups from the mirror.
func (s *Service) List(ctx context.Context, tenant, project string) ([]Group, error) {
	gs, err := s.store.Groups(ctx, tenant, project)
	if err != nil {
		return nil, fmt.Errorf("list groups of %s:%s: %w", tenant, project, err)
	}
	return gs, nil
}

// GroupsSyncedAt returns when a reconcile pass last read the tenant's group
// list from TechPass; zero if never.
func (s *Service) GroupsSyncedAt(ctx context.Context, tenant string) (time.Time, error) {
	t, err := s.store.GroupsSyncedAt(ctx, tenant)
	if err != nil {
		return time.Time{}, fmt.Errorf("groups synced at of %s: %w", tenant, err)
	}
	return t, nil
}
