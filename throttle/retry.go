package throttle

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides when a retryable operation is tried again. The zero
// value uses the defaults documented on each field.
type RetryPolicy struct {
	// MaxFailures is how many retryable failures (not throttling answers)
	// an operation may have before it fails for good. Default 6.
	MaxFailures int
	// BaseDelay is the backoff ceiling after the first failure; it doubles
	// with each further failure. Default 1s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff ceiling. Default 1m.
	MaxDelay time.Duration
	// Rand returns a number in [0,1); default math/rand/v2.Float64.
	Rand func() float64
}

func (p RetryPolicy) maxFailures() int {
	if p.MaxFailures <= 0 {
		return 6
	}
	return p.MaxFailures
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

// GiveUp reports whether an operation with failures retryable failures has
// used up its tries.
func (p RetryPolicy) GiveUp(failures int) bool { return failures >= p.maxFailures() }
