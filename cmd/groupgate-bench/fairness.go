package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The fairness tenant: one project floods the queue, then another submits
// a few operations.
const (
	fairTenant = "FAIR"
	fairBig    = "FAIR/BIG"
	fairSmall  = "FAIR/SMALL"
)

// FairnessResult is how long a small project waited behind a flood.
type FairnessResult struct {
	IntervalMs float64 `json:"intervalMs"`
	BigOps     int     `json:"bigOps"`
	SmallOps   int     `json:"smallOps"`
	// BigEnqueueMs is how long queueing the flood took.
	BigEnqueueMs float64 `json:"bigEnqueueMs"`
	// SmallPositions are the positions the gateway gave the small
	// project's operations when it accepted them (1 = next).
	SmallPositions []int `json:"smallPositions"`
	// SmallDoneIntervals are, per small operation in submission order, the
	// intervals from the small project's first submission until the client
	// saw the operation finish.
	SmallDoneIntervals []float64 `json:"smallDoneIntervals"`
	// AllDoneIntervals is the largest of SmallDoneIntervals.
	AllDoneIntervals float64 `json:"allDoneIntervals"`
	AllDoneS         float64 `json:"allDoneS"`
	// BigServedMeanwhile is how many of the flood's operations went
	// upstream while the small project waited.
	BigServedMeanwhile int     `json:"bigServedMeanwhile"`
	Checks             []Check `json:"checks"`
}

// runFairness queues o.FairBig creates in one project, then o.FairSmall in
// another, and measures how many intervals pass until the small project's
// operations have all finished.
func runFairness(ctx context.Context, h *harness, o Options, progress func(string, ...any)) (*FairnessResult, error) {
	r := &FairnessResult{IntervalMs: ms(o.FairnessInterval), BigOps: o.FairBig, SmallOps: o.FairSmall}

	// The flood: queued as fast as 8 clients can.
	start := time.Now()
	bigIDs := make([]string, o.FairBig)
	err := parallel(ctx, 8, o.FairBig, func(ctx context.Context, i int) error {
		op, err := h.create(ctx, fairBig, fmt.Sprintf("big-%05d", i))
		bigIDs[i] = op.Id
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fairness: flood: %w", err)
	}
	r.BigEnqueueMs = ms(time.Since(start))

	// The small project: its operations are submitted one after another,
	// and each is watched by a long poll so its end is seen at once.
	before := h.stats(fairTenant).Requests
	submit := time.Now()
	var mu sync.Mutex
	done := make([]time.Duration, o.FairSmall)
	var w group
	for i := range o.FairSmall {
		op, err := h.create(ctx, fairSmall, fmt.Sprintf("small-%03d", i))
		if err != nil {
			return nil, fmt.Errorf("fairness: small project: %w", err)
		}
		pos := 0
		if op.Position != nil {
			pos = int(*op.Position)
		}
		r.SmallPositions = append(r.SmallPositions, pos)
		w.Go(func() error {
			fin, err := h.await(ctx, fairSmall, op.Id)
			if err != nil {
				return err
			}
			if fin.State != "succeeded" {
				return fmt.Errorf("small operation %s ended %s", op.Id, fin.State)
			}
			mu.Lock()
			done[i] = time.Since(submit)
			mu.Unlock()
			return nil
		})
	}
	if err := w.Wait(); err != nil {
		return nil, fmt.Errorf("fairness: %w", err)
	}
	served := h.stats(fairTenant).Requests - before
	r.BigServedMeanwhile = served - o.FairSmall
	var last time.Duration
	for _, d := range done {
		r.SmallDoneIntervals = append(r.SmallDoneIntervals, round2(d.Seconds()/o.FairnessInterval.Seconds()))
		last = max(last, d)
	}
	r.AllDoneS = last.Seconds()
	r.AllDoneIntervals = round2(last.Seconds() / o.FairnessInterval.Seconds())
	progress("fairness: the small project's %d operations finished within %.1f intervals", o.FairSmall, r.AllDoneIntervals)
	r.Checks = []Check{
		check(r.AllDoneIntervals <= 15, "small project's operations all finish within 15 intervals of its submission (%.1f)", r.AllDoneIntervals),
	}
	if err := h.cancelQueued(context.WithoutCancel(ctx), fairBig, bigIDs); err != nil {
		return nil, fmt.Errorf("fairness: cancel the rest of the flood: %w", err)
	}
	return r, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
