package dispatch

import (
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Outcome is what a Handler reports after trying an operation once. E is
// the type of the domain changes committed with it (see queue.Store): the domain
// that executes operations defines it, so a store is never handed a change
// it cannot apply.
type Outcome[E any] struct {
	// Kind says whether the operation is done, failed, or should be retried.
	Kind OutcomeKind
	// Result is stored on success.
	Result []byte
	// Failure is stored when Kind is Fail.
	Failure *queue.Failure
	// Effects are committed atomically with a Done, Fail or Continue
	// outcome. On a
	// Retry outcome they are what to commit if the dispatcher gives up on
	// the operation (its retries are used up), so a failed operation always
	// leaves the domain state consistent.
	Effects []E
	// RetryAfter is the wait the upstream asked for (429 Retry-After); zero
	// lets the retry policy choose.
	RetryAfter time.Duration
	// Throttled marks a 429: the retry does not count as a failure.
	Throttled bool
	// Check marks a transient failure of a request made only to decide what
	// to do, not an attempt at the work itself (such as looking for a group
	// that an earlier, unclear attempt may have created): the retry does not
	// count as a failure either.
	Check bool
	// CheckOnly marks a try that sent nothing but checks, no request for
	// the work itself (such as the adoption check of a create that an
	// earlier, unclear attempt may have made): it is not counted in
	// queue.Operation.Attempts, whatever its outcome.
	CheckOnly bool
	// Reason is a sanitized description of a retryable failure.
	Reason string
	// Progress replaces the operation's Progress on a Continue outcome.
	Progress []byte
}

// OutcomeKind classifies an Outcome.
type OutcomeKind int

// The kinds of outcome.
const (
	// Done: the operation succeeded.
	Done OutcomeKind = iota + 1
	// Fail: the operation failed for good.
	Fail
	// Retry: try the operation again later.
	Retry
	// Continue: one step of the operation is done and more remain. Its
	// Progress and Effects are committed, and the operation keeps its place
	// at the head of its project's queue; the next step runs when the
	// project's turn comes again, so one long operation shares the upstream
	// with other projects' work instead of holding it.
	Continue
)
