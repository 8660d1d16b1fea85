package queue

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"time"
)

// State is where an operation is in its life.
type State string

// The states of an operation. Queued and Running are pending; Succeeded,
// Failed and Cancelled are final.
const (
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Final reports whether s is a final state.
func (s State) Final() bool { return s == Succeeded || s == Failed || s == Cancelled }

// Errors returned by Store implementations, wrapped with context.
var (
	// ErrNotFound means no operation has the given id.
	ErrNotFound = errors.New("operation not found")
	// ErrEmpty means the tenant has no queued operation.
	ErrEmpty = errors.New("queue empty")
	// ErrFenced means a write of a tenant's dispatcher was refused because
	// its lease moved to another epoch or lapsed (see Tx.Fence): a deposed
	// dispatcher must stop, and nothing was written.
	ErrFenced = errors.New("fenced: the tenant's lease moved to another epoch or lapsed")
	// ErrQueueFull means the tenant's or the project's queue is at its
	// limit; the error is a *QueueFullError.
	ErrQueueFull = errors.New("queue full")
	// ErrNotCancellable means the operation is running, was already sent
	// upstream, or is finished.
	ErrNotCancellable = errors.New("operation cannot be cancelled")
	// ErrNotRetryable means only a failed operation can be retried.
	ErrNotRetryable = errors.New("only a failed operation can be retried")
	// ErrIdempotencyMismatch means an idempotency key was reused for a
	// different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused for a different request")
	// ErrReplay means an idempotency key was reused for the same request;
	// the error is a *ReplayError naming the original operation.
	ErrReplay = errors.New("idempotent replay")
)

// QueueFullError reports a full queue with the depths that made it full.
type QueueFullError struct {
	Depth Depth
	// RetryAfter estimates when there will be room; set by the caller that
	// knows the tenant's pace (see RetryAfter).
	RetryAfter time.Duration
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("queue full: %d operations pending", e.Depth.Total)
}

// Unwrap makes errors.Is(err, ErrQueueFull) hold.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

// ReplayError reports that a request repeats an earlier one with the same
// idempotency key; OperationID is the earlier request's operation.
type ReplayError struct{ OperationID string }

func (e *ReplayError) Error() string { return "idempotent replay of operation " + e.OperationID }

// Unwrap makes errors.Is(err, ErrReplay) hold.
func (e *ReplayError) Unwrap() error { return ErrReplay }

// Idempotency ties an operation to the idempotency key of the request that
// created it, so a retry of the request finds the operation again.
type Idempotency struct {
	// Scope is whose key it is (the caller's credential); keys of
	// different callers never collide.
	Scope string
	Key   string
	// Fingerprint identifies the request's meaning.
	Fingerprint string
	// Expires is when the key may be used for another request.
	Expires time.Time
}

// Operation is one unit of upstream work, persisted before the client is
// answered. The Kind and the Payload, Progress and Result bytes belong to
// the domain that carries it out (a dispatch.Handler); the queue only keeps
// the operation and moves it through its states.
type Operation struct {
	ID      string
	Tenant  string
	Project string
	// Kind names what to do, for example "group.create".
	Kind string
	// Target is what the operation acts on, for example a group's full name.
	Target string
	// Payload is the handler's input, opaque here.
	Payload []byte
	// Progress is what the handler has done so far of an operation carried
	// out in several steps (see dispatch.Continue), opaque here; empty before the
	// first step.
	Progress []byte
	// Actor identifies the credential that submitted the operation.
	Actor string
	// Idempotency, if set, is recorded with the operation on enqueue.
	Idempotency *Idempotency
	State       State
	// Seq orders the tenant's queue; the store assigns it on enqueue.
	Seq uint64
	// Attempts counts how many times the operation was started upstream:
	// each try is counted when it is marked running, except a try that
	// sent nothing but checks (see dispatch.Outcome.CheckOnly), which is uncounted
	// when its outcome is committed.
	Attempts int
	// Failures counts retryable failures (5xx, timeouts, connection errors)
	// of the current step; throttling answers (429) and failed checks (see
	// dispatch.Outcome.Check) are not counted.
	Failures int
	// FailingSince is when the current run of retry outcomes (transient
	// failures and throttling answers) of the current step began, or when
	// the tenant's dispatcher started if that is later (the window counts
	// no time the queue was not running); zero if its last try did not end
	// in one. The retry window (see dispatch.RetryPolicy) runs from it.
	FailingSince time.Time
	// NotBefore is the earliest time the operation may start again.
	NotBefore time.Time
	// LastError is a sanitized reason for the last retryable failure.
	LastError string
	// Result is the handler's output on success, opaque here.
	Result []byte
	// Failure says why the operation failed, when State is Failed.
	Failure *Failure

	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Failure is a final, caller-facing reason why an operation failed. It never
// holds an upstream body verbatim, a credential or a token.
type Failure struct {
	// Status is the HTTP status that best describes the failure.
	Status int
	Title  string
	Detail string
}

// idEncoding is lower-case base32hex ("0"-"9" then "a"-"v"), whose
// characters sort in the order of the values they stand for, so encoded
// timestamps sort as strings in time order.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewID returns a new operation id made now; see NewIDAt.
func NewID() string { return NewIDAt(time.Now()) }

// NewIDAt returns a new operation id made at t: "op_" and 26 lower-case
// base32hex characters encoding 48 bits of Unix milliseconds and 80 random
// bits (crypto/rand), like a ULID. Ids are unguessable, and ids sort as
// strings in the order of the milliseconds they were made in, so a batch of
// inserts touches few pages of the store.
//
// Ids made before this encoding used lower-case standard base32 ("a"-"z"
// then "2"-"7"), which does not sort in time order. They stay valid: an id
// is an opaque key, and nothing orders operations by it.
func NewIDAt(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return "op_" + idEncoding.EncodeToString(b[:])
}
