package groups

import (
	"context"
	"strings"
	"time"

	"github.com/groupgate/groupgate/throttle"
)

// State is where a group is in its life, as the mirror knows it.
type State string

// The states of a group in the mirror.
const (
	// Creating: a create operation is queued or running.
	Creating State = "creating"
	// Active: the group exists in TechPass.
	Active State = "active"
	// Deleting: a delete operation is queued or running.
	Deleting State = "deleting"
)

// Group is a project's group as the local mirror knows it.
type Group struct {
	Name        Name
	Description string
	State       State
	// UpstreamID is TechPass's id for the group, empty until it is created.
	UpstreamID string
	// PendingOperation is the id of the queued or running operation on the
	// group, if any.
	PendingOperation string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Operation kinds carried out by the Executor.
const (
	KindCreate = "group.create"
	KindDelete = "group.delete"
)

// Store keeps the group mirror and enqueues operations atomically with the
// mirror change they imply. Implementations must be safe for concurrent use
// and durable before returning.
type Store interface {
	// CreatePending stores g (in state Creating) and enqueues op, in one
	// transaction. It first applies the enqueue checks of throttle.Store
	// (idempotent replay, queue limits), then returns ErrExists if the
	// project already has a group with g's key, ErrQuota if the project
	// already has limits.ProjectQuota groups and ErrLimit if the tenant
	// already has limits.Groups groups (pending creates included).
	CreatePending(ctx context.Context, g Group, op throttle.Operation, limits Limits) (throttle.Operation, error)
	// DeletePending marks the group Deleting and enqueues op, in one
	// transaction, after the enqueue checks of throttle.Store. It returns
	// ErrNotFound if there is no such group and ErrPending if the group is
	// not Active.
	DeletePending(ctx context.Context, name Name, op throttle.Operation, limits throttle.Limits) (throttle.Operation, error)
	// Group returns the group with name's key in name's project, or
	// ErrNotFound.
	Group(ctx context.Context, name Name) (Group, error)
	// Groups returns the project's groups ordered by key.
	Groups(ctx context.Context, tenant, project string) ([]Group, error)
	// GroupsVersion returns a number that changes whenever the project's
	// groups change (0 before the first change), so a reader can keep what
	// it derived from Groups until then.
	GroupsVersion(ctx context.Context, tenant, project string) (uint64, error)
}

// Limits bound what a create may add.
type Limits struct {
	// Groups is the tenant's namespace group limit; 0 means none.
	Groups int
	// ProjectQuota is the project's group quota; 0 means none.
	ProjectQuota int
	// Queue bounds the tenant's and the project's pending operations.
	Queue throttle.Limits
}

// Undo returns the effect that reverts the mirror change an operation made
// when it was queued: a create's reservation is released, a deleting group
// is active again. It is committed when an operation is cancelled or given
// up.
func Undo(op throttle.Operation, at time.Time) throttle.Effect {
	n := targetName(op)
	if op.Kind == KindDelete {
		return DeleteFailed{Name: n, At: at}
	}
	return CreateFailed{Name: n}
}

// targetName splits an operation's stored full name without validating it
// (it was validated when the operation was queued).
func targetName(op throttle.Operation) Name {
	parts := strings.SplitN(op.Target, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return Name{Tenant: parts[0], Project: parts[1], Group: parts[2]}
}

// Effects committed with operation outcomes (see throttle.Effect). A Store
// implementation must apply each as documented; an effect on a group the
// mirror no longer holds changes nothing and is not an error, so that an
// outcome can always be committed.
type (
	// Created makes the group Active with its upstream id.
	Created struct {
		Name       Name
		UpstreamID string
		At         time.Time
	}
	// CreateFailed removes the group's reservation.
	CreateFailed struct{ Name Name }
	// Deleted removes the group.
	Deleted struct{ Name Name }
	// DeleteFailed makes the group Active again.
	DeleteFailed struct {
		Name Name
		At   time.Time
	}
)
