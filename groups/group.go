package groups

import (
	"context"
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
	// transaction. It returns ErrExists if the project already has a group
	// with g's key, and ErrLimit if the tenant already has limit groups
	// (pending creates included).
	CreatePending(ctx context.Context, g Group, op throttle.Operation, limit int) (throttle.Operation, error)
	// DeletePending marks the group Deleting and enqueues op, in one
	// transaction. It returns ErrNotFound if there is no such group and
	// ErrPending if the group is not Active.
	DeletePending(ctx context.Context, name Name, op throttle.Operation) (throttle.Operation, error)
	// Group returns the group with name's key in name's project, or
	// ErrNotFound.
	Group(ctx context.Context, name Name) (Group, error)
	// Groups returns the project's groups ordered by key.
	Groups(ctx context.Context, tenant, project string) ([]Group, error)
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
