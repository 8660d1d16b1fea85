package testkit

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually asks its condition again.
const pollEvery = time.Millisecond

// Eventually asks cond every millisecond until it holds, and fails tb (with
// Fatalf, naming what was awaited) if it still does not hold within the
// given time. what completes the sentence "timed out waiting for ...".
// It must be called from the test's goroutine.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}
