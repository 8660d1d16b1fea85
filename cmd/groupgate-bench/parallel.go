package main

import (
	"context"
	"errors"
	"sync"
)

// group runs functions in goroutines and collects their errors.
type group struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// Go runs fn in a new goroutine.
func (g *group) Go(fn func() error) {
	g.wg.Go(func() {
		if err := fn(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	})
}

// Wait waits for every function and returns their errors joined.
func (g *group) Wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}

// parallel calls fn(ctx, i) for i in [0, n) from workers goroutines. The
// first error cancels the ctx the others see.
func parallel(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var g group
	for range workers {
		g.Go(func() error {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return err
				}
			}
			return nil
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	return g.Wait()
}
