package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/groupgate/groupgate/throttle"
)

// Waker is told when a tenant has new queued work.
type Waker interface {
	Wake(tenant string)
}

// Service manages project groups: it validates requests, records them in the
// mirror and queues the upstream operations. It is safe for concurrent use.
type Service struct {
	store    Store
	waker    Waker
	validate *validator.Validate
	now      func() time.Time
	limit    func(tenant string) int
}

// ServiceConfig holds a Service's dependencies.
type ServiceConfig struct {
	Store Store
	Waker Waker
	// GroupLimit returns the namespace group limit of a tenant.
	GroupLimit func(tenant string) int
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewService returns a service over cfg's store.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.GroupLimit == nil {
		cfg.GroupLimit = func(string) int { return 50 }
	}
	return &Service{store: cfg.Store, waker: cfg.Waker, validate: NewValidator(), now: cfg.Now, limit: cfg.GroupLimit}
}

// Validator returns the service's validator with the naming rules.
func (s *Service) Validator() *validator.Validate { return s.validate }

// Name builds and validates a group name from request parts.
func (s *Service) Name(tenant, project, group string) (Name, error) {
	return NewName(s.validate, tenant, project, group)
}

// createPayload is the stored input of a group.create operation.
type createPayload struct {
	FullName    string `json:"fullName"`
	Description string `json:"description"`
}

// deletePayload is the stored input of a group.delete operation.
type deletePayload struct {
	FullName   string `json:"fullName"`
	UpstreamID string `json:"upstreamId,omitempty"`
}

// Result is the stored output of a successful group operation.
type Result struct {
	FullName    string    `json:"fullName"`
	Description string    `json:"description"`
	UpstreamID  string    `json:"upstreamId,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// DecodeResult reads an operation's stored Result; ok is false when there is
// none.
func DecodeResult(b []byte) (r Result, ok bool, err error) {
	if len(b) == 0 {
		return Result{}, false, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, false, fmt.Errorf("decode group result: %w", err)
	}
	return r, true, nil
}

// Create queues the creation of group name with description on behalf of
// actor. It returns the queued operation, or ErrInvalid, ErrExists or
// ErrLimit (wrapped).
func (s *Service) Create(ctx context.Context, actor string, name Name, description string) (throttle.Operation, error) {
	if err := ValidateDescription(description); err != nil {
		return throttle.Operation{}, err
	}
	payload, err := json.Marshal(createPayload{FullName: name.String(), Description: description})
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("encode create payload: %w", err)
	}
	now := s.now()
	op := throttle.Operation{
		ID: throttle.NewID(), Tenant: name.Tenant, Project: name.Project, Kind: KindCreate,
		Target: name.String(), Payload: payload, Actor: actor, State: throttle.Queued,
		CreatedAt: now, UpdatedAt: now,
	}
	g := Group{Name: name, Description: description, State: Creating, PendingOperation: op.ID, CreatedAt: now, UpdatedAt: now}
	op, err = s.store.CreatePending(ctx, g, op, s.limit(name.Tenant))
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("queue create of %s: %w", name, err)
	}
	s.waker.Wake(name.Tenant)
	return op, nil
}

// Delete queues the deletion of group name. It returns the queued operation,
// or ErrNotFound or ErrPending (wrapped).
func (s *Service) Delete(ctx context.Context, actor string, name Name) (throttle.Operation, error) {
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("delete %s: %w", name, err)
	}
	payload, err := json.Marshal(deletePayload{FullName: g.Name.String(), UpstreamID: g.UpstreamID})
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("encode delete payload: %w", err)
	}
	now := s.now()
	op := throttle.Operation{
		ID: throttle.NewID(), Tenant: name.Tenant, Project: name.Project, Kind: KindDelete,
		Target: g.Name.String(), Payload: payload, Actor: actor, State: throttle.Queued,
		CreatedAt: now, UpdatedAt: now,
	}
	op, err = s.store.DeletePending(ctx, g.Name, op)
	if err != nil {
		return throttle.Operation{}, fmt.Errorf("queue delete of %s: %w", name, err)
	}
	s.waker.Wake(name.Tenant)
	return op, nil
}

// Get returns the group from the mirror, or ErrNotFound.
func (s *Service) Get(ctx context.Context, name Name) (Group, error) {
	g, err := s.store.Group(ctx, name)
	if err != nil {
		return Group{}, fmt.Errorf("get %s: %w", name, err)
	}
	return g, nil
}

// List returns the project's groups from the mirror.
func (s *Service) List(ctx context.Context, tenant, project string) ([]Group, error) {
	gs, err := s.store.Groups(ctx, tenant, project)
	if err != nil {
		return nil, fmt.Errorf("list groups of %s:%s: %w", tenant, project, err)
	}
	return gs, nil
}
