package records

import (
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Operation is a stored operation. An operation's Idempotency is not kept
// with it (each store keeps idempotency keys apart).
type Operation struct {
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant"`
	Project    string    `json:"project"`
	Kind       string    `json:"kind"`
	Target     string    `json:"target"`
	Payload    []byte    `json:"payload,omitempty"`
	Progress   []byte    `json:"progress,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	State      string    `json:"state"`
	Seq        uint64    `json:"seq"`
	Attempts   int       `json:"attempts"`
	Failures   int       `json:"failures,omitempty"`
	NotBefore  time.Time `json:"notBefore,omitzero"`
	LastError  string    `json:"lastError,omitempty"`
	Result     []byte    `json:"result,omitempty"`
	Failure    *Failure  `json:"failure,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`

	// FailingSince was added after the first release; absent is zero.
	FailingSince time.Time `json:"failingSince,omitzero"`
}

// Failure is a stored operation's final failure.
type Failure struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

// NewOperation is op as it is stored.
func NewOperation(op queue.Operation) Operation {
	r := Operation{
		ID: op.ID, Tenant: op.Tenant, Project: op.Project, Kind: op.Kind, Target: op.Target,
		Payload: op.Payload, Progress: op.Progress, Actor: op.Actor, State: string(op.State), Seq: op.Seq,
		Attempts: op.Attempts, Failures: op.Failures, NotBefore: op.NotBefore, LastError: op.LastError,
		Result: op.Result, CreatedAt: op.CreatedAt, UpdatedAt: op.UpdatedAt,
		StartedAt: op.StartedAt, FinishedAt: op.FinishedAt, FailingSince: op.FailingSince,
	}
	if op.Failure != nil {
		r.Failure = &Failure{Status: op.Failure.Status, Title: op.Failure.Title, Detail: op.Failure.Detail}
	}
	return r
}

// ToOperation converts the record.
func (r Operation) ToOperation() queue.Operation {
	op := queue.Operation{
		ID: r.ID, Tenant: r.Tenant, Project: r.Project, Kind: r.Kind, Target: r.Target,
		Payload: r.Payload, Progress: r.Progress, Actor: r.Actor, State: queue.State(r.State), Seq: r.Seq,
		Attempts: r.Attempts, Failures: r.Failures, NotBefore: r.NotBefore, LastError: r.LastError,
		Result: r.Result, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, FailingSince: r.FailingSince,
	}
	if r.Failure != nil {
		op.Failure = &queue.Failure{Status: r.Failure.Status, Title: r.Failure.Title, Detail: r.Failure.Detail}
	}
	return op
}
