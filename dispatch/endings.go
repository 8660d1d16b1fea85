package dispatch

import (
	"fmt"
	"time"

	"github.com/groupgate/groupgate/queue"
)

// Endings words the failure of an operation that the dispatcher ends
// itself, rather than by a handler's final outcome. What a caller reads
// (the status, the title, the upstream's name) belongs to the handler's
// domain: this package knows neither HTTP nor the upstream. The
// groups.Executor implements it.
type Endings interface {
	// RetriesSpent is the failure of op given up because its retries are
	// spent (see RetryPolicy.GiveUp): it met retry outcomes for retried,
	// the last one's Reason being lastError (possibly empty).
	RetriesSpent(op queue.Operation, retried time.Duration, lastError string) *queue.Failure
	// Unworkable is the failure of op whose handler's outcome cannot be
	// used: it has no kind, or its effects cannot be applied
	// (ErrUnusableEffect).
	Unworkable(op queue.Operation) *queue.Failure
}

// endings returns the dispatcher's Endings: the configured ones, else the
// Handler's if it implements Endings, else plainEndings.
func endings[E any](cfg Config[E]) Endings {
	if cfg.Endings != nil {
		return cfg.Endings
	}
	if e, ok := cfg.Handler.(Endings); ok {
		return e
	}
	return plainEndings{}
}

// plainEndings words failures without a domain: no Status, and only what
// happened.
type plainEndings struct{}

func (plainEndings) RetriesSpent(_ queue.Operation, retried time.Duration, lastError string) *queue.Failure {
	return &queue.Failure{Title: "Retries spent", Detail: fmt.Sprintf("retried for %v; the last retry's reason: %q", retried.Round(time.Second), lastError)}
}

func (plainEndings) Unworkable(queue.Operation) *queue.Failure {
	return &queue.Failure{Title: "Operation not carried out", Detail: "the handler's outcome could not be used"}
}
