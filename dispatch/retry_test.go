package dispatch_test

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
)

func TestRetryPolicy(t *testing.T) {
	p := dispatch.RetryPolicy{BaseDelay: time.Second, MaxDelay: 10 * time.Second, MaxFailures: 3, Rand: func() float64 { return 0.999999 }}
	for _, tt := range []struct {
		failures int
		ceiling  time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {30, 10 * time.Second}} {
		got := p.Backoff(tt.failures)
		if got > tt.ceiling || got < tt.ceiling*99/100 {
			t.Errorf("Backoff(%d) = %v, want just under %v", tt.failures, got, tt.ceiling)
		}
	}
	p.Rand = func() float64 { return 0 }
	if got := p.Backoff(3); got != 0 {
		t.Errorf("full jitter must reach 0, got %v", got)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if p.GiveUp(2, t0, t0) || !p.GiveUp(3, t0, t0) {
		t.Errorf("GiveUp must trip at MaxFailures when it is set")
	}
	// By default the count is not bounded; the retry window is.
	var d dispatch.RetryPolicy
	if d.GiveUp(1000, t0, t0.Add(dispatch.DefaultMaxDuration-time.Millisecond)) || !d.GiveUp(1, t0, t0.Add(dispatch.DefaultMaxDuration)) {
		t.Errorf("the default policy must give up at DefaultMaxDuration after the first failure, whatever the count")
	}
	w := dispatch.RetryPolicy{MaxDuration: time.Minute}
	if w.GiveUp(50, t0, t0.Add(59*time.Second)) || !w.GiveUp(0, t0, t0.Add(time.Minute)) || w.GiveUp(50, time.Time{}, t0) {
		t.Errorf("GiveUp must trip at MaxDuration after the first failure, and never before a failure")
	}
	if got := w.Deadline(t0); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Deadline = %v", got)
	}
}
