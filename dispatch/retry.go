package dispatch

import (
	"math/rand/v2"
	"time"
)

// DefaultMaxDuration is how long RetryPolicy keeps retrying an operation
// whose MaxDuration is zero.
const DefaultMaxDuration = 30 * time.Minute

// RetryPolicy decides when a retryable operation is tried again and when it
// is given up. Like a task queue's retry window (Cloud Tasks' maximum retry
// duration), transient failures are retried for a time, not a handful of
// tries: at a steady rate of transient faults, a bound on the count fails
// some operations by chance alone. The zero value uses the defaults
// documented on each field.
type RetryPolicy struct {
	// MaxDuration is how long an operation may keep meeting transient
	// failures and throttling answers, from the first of a run of them, before
	// it fails for good. Only time its tenant's dispatcher ran counts: a
	// run that began before the dispatcher started counts from its start.
	// Default DefaultMaxDuration.
	MaxDuration time.Duration
	// MaxFailures, if positive, also fails an operation at this many counted
	// failures: retryable failures of its attempts, not throttling answers
	// nor failed checks (see Outcome.Check). Zero, the default, sets no
	// bound on the count.
	MaxFailures int
	// BaseDelay is the backoff ceiling after the first failure; it doubles
	// with each further failure. Default 1s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff ceiling. Default 1m.
	MaxDelay time.Duration
	// Rand returns a number in [0,1); default math/rand/v2.Float64.
	Rand func() float64
}

func (p RetryPolicy) maxDuration() time.Duration {
	if p.MaxDuration <= 0 {
		return DefaultMaxDuration
	}
	return p.MaxDuration
}

// Backoff returns the wait before the next try after failures retryable
// failures: "full jitter", a uniform draw from [0, min(MaxDelay,
// BaseDelay*2^(failures-1))).
func (p RetryPolicy) Backoff(failures int) time.Duration {
	base, maxD := p.BaseDelay, p.MaxDelay
	if base <= 0 {
		base = time.Second
	}
	if maxD <= 0 {
		maxD = time.Minute
	}
	ceiling := base
	for i := 1; i < failures && ceiling < maxD; i++ {
		ceiling *= 2
	}
	if ceiling > maxD {
		ceiling = maxD
	}
	r := p.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(ceiling))
}

// GiveUp reports whether an operation has used up its retries: at now, it
// has met transient failures or throttling since failingSince, with
// failures counted failures.
func (p RetryPolicy) GiveUp(failures int, failingSince, now time.Time) bool {
	if p.MaxFailures > 0 && failures >= p.MaxFailures {
		return true
	}
	return !failingSince.IsZero() && now.Sub(failingSince) >= p.maxDuration()
}

// Deadline is when an operation that has met transient failures since
// failingSince is given up.
func (p RetryPolicy) Deadline(failingSince time.Time) time.Time {
	return failingSince.Add(p.maxDuration())
}
