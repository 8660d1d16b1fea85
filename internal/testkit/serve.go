package testkit

import (
	"context"
	"testing"
)

// Serve runs run (a server's or a worker's Run) in the background with a
// context that is cancelled when the test ends. The clean-up then waits for
// run to return and fails tb if it returned an error, so no goroutine
// outlives the test and no failure on the way out goes unseen.
func Serve(tb testing.TB, run func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("run: %v", err)
		}
	})
}
