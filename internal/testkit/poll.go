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
	if !Poll(within, pollEvery, cond) {
		tb.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// Poll asks cond every interval until it holds, and reports whether it did
// within the given time. Use it where a timeout needs a message built from
// what was last seen; otherwise Eventually says it in one line.
func Poll(within, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
